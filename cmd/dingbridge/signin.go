package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/sharedlimit"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
)

// dingTalkIdleConns is how many idle connections to each DingTalk host
// the sign-in keeps.
const dingTalkIdleConns = 64

// dingTalkLogin builds the provider's DingTalk sign-in from the
// configuration: one DingTalk client per corp, sharing app tokens with the
// other replicas through tokens (see appTokenCache), and the mapping's
// resolver with each corp's auto-link and JIT rules. With limits, the
// clients take their turns from the rate limit all replicas share. The
// clients report their calls and rate-limiter waits to m, when it is not nil.
func dingTalkLogin(cfg *Config, store mapping.ResolverStore, tokens idp.Store, limits *sharedlimit.Postgres, m *metrics, logger *slog.Logger) (*idp.DingTalkConfig, error) {
	secrets, err := decodeSecrets(cfg.Secrets)
	if err != nil {
		return nil, err
	}
	cache, err := newAppTokenCache(tokens, secrets.appTokenKey, logger)
	if err != nil {
		return nil, err
	}
	d := cfg.DingTalk
	login := &idp.DingTalkConfig{
		LoginBaseURL:      d.LoginBaseURL,
		QRScriptURL:       d.QRScriptURL,
		JSAPIScriptURL:    d.JSAPIScriptURL,
		ProfileMaxAge:     d.ProfileMaxAge,
		VerifyMembership:  d.VerifyMembership,
		WorkbenchStartURL: d.WorkbenchStartURL,
		// Within the server's write timeout, with room for the database.
		UpstreamBudget: writeTimeout - 5*time.Second,
	}
	// One connection pool for every corp's calls, keeping enough idle
	// connections that a burst of sign-ins reuses them: with the default
	// two per host, most calls of a burst would dial DingTalk afresh, which
	// adds latency and makes calls reach DingTalk in a less even rhythm
	// than the rate limiter let them go.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = dingTalkIdleConns
	httpClient := &http.Client{Transport: tr}
	var rules []mapping.Corp
	for i, corp := range cfg.Corps {
		dc := dingtalkConfig(cfg, corp, limits, logger)
		dc.TokenCache = cache
		dc.HTTPClient = httpClient
		if m != nil {
			dc.Observe, dc.ObserveWait = m.observeDingTalkCall, m.observeLimiterWait
			if dc.Limiter != nil {
				// The client observes only its own limiter.
				dc.Limiter = observedLimiter{dc.Limiter, m.observeLimiterWait}
			}
		}
		client, err := dingtalk.New(dc)
		if err != nil {
			return nil, fmt.Errorf("corps[%d]: %w", i, err)
		}
		login.Corps = append(login.Corps, idp.DingTalkCorp{
			ID: corp.ID, Name: corp.Name, Client: client, SNS: corp.SNS.AppID != "",
		})
		rules = append(rules, mapping.Corp{
			ID:       corp.ID,
			AutoLink: mapping.Attribute(corp.AutoLink),
			JIT: mapping.JIT{
				Username: corp.JIT.Username, Groups: corp.JIT.Groups, TrustOrgEmail: corp.JIT.TrustOrgEmail,
			},
		})
	}
	resolver, err := mapping.NewResolver(mapping.ResolverConfig{Store: store, Corps: rules, Logger: logger})
	if err != nil {
		return nil, err
	}
	login.Resolver = resolver
	return login, nil
}

// dingtalkConfig turns one configured corp into a DingTalk client config,
// without a shared token cache: dingTalkLogin adds one to the clients that
// sign people in. With limits (see dingTalkLimits), the client takes its
// turns from the limit all replicas share; otherwise it keeps rate_limit
// on its own.
func dingtalkConfig(cfg *Config, corp CorpConfig, limits *sharedlimit.Postgres, logger *slog.Logger) dingtalk.Config {
	var limiter dingtalk.Limiter
	if limits != nil {
		limiter = limits.App(corp.AppKey)
	}
	return dingtalk.Config{
		Limiter:             limiter,
		APIBaseURL:          cfg.DingTalk.APIBaseURL,
		OAPIBaseURL:         cfg.DingTalk.OAPIBaseURL,
		LoginBaseURL:        cfg.DingTalk.LoginBaseURL,
		CorpID:              corp.ID,
		AppKey:              corp.AppKey,
		AppSecret:           corp.AppSecret,
		AgentID:             corp.AgentID,
		SNSAppID:            corp.SNS.AppID,
		SNSAppSecret:        corp.SNS.AppSecret,
		LegacyTokenEndpoint: corp.LegacyTokenEndpoint,
		Timeout:             cfg.DingTalk.Timeout,
		RateLimit:           cfg.DingTalk.RateLimit,
		ThrottleBudget:      cfg.DingTalk.ThrottleBudget,
		Logger:              logger,
	}
}

// dingTalkLimitMargin is how much longer than dingtalk.timeout a call may
// stay unanswered in the shared limit before its turn is taken back: the
// client reports every answer within its timeout, so only a replica that
// died leaves a turn that long.
const dingTalkLimitMargin = 10 * time.Second

// dingTalkLimits returns the rate limit the replicas share, in the
// Postgres database the accounts are in, when dingtalk.shared_rate_limit
// is on; nil otherwise, and for the in-memory demo, which is one process:
// then each DingTalk client limits itself.
func dingTalkLimits(cfg *Config, accounts mapping.Store, logger *slog.Logger) (*sharedlimit.Postgres, error) {
	pool := accountsPool(accounts)
	if pool == nil || !*cfg.DingTalk.SharedRateLimit {
		return nil, nil
	}
	return sharedlimit.NewPostgres(sharedlimit.Config{
		Pool:          pool,
		Rate:          cfg.DingTalk.RateLimit,
		InFlightLimit: cfg.DingTalk.Timeout + dingTalkLimitMargin,
		Logger:        logger,
	})
}

// observedLimiter reports the waits of a limiter the DingTalk client does
// not observe itself (the shared one), as the client does for its own: a
// call let through at once is not reported.
type observedLimiter struct {
	dingtalk.Limiter
	observe func(dingtalk.Wait)
}

// Wait implements dingtalk.Limiter.
func (l observedLimiter) Wait(ctx context.Context, endpoint string) (func(), error) {
	start := time.Now()
	done, err := l.Limiter.Wait(ctx, endpoint)
	if waited := time.Since(start); err != nil || waited >= observedWaitFloor {
		l.observe(dingtalk.Wait{Endpoint: endpoint, Duration: waited, Refused: err != nil})
	}
	return done, err
}

// observedWaitFloor: a shared limiter's Wait always costs a database round
// trip; only a wait longer than that is the limit at work.
const observedWaitFloor = 5 * time.Millisecond
