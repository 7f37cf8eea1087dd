package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
)

// dingTalkIdleConns is how many idle connections to each DingTalk host
// the sign-in keeps.
const dingTalkIdleConns = 64

// dingTalkLogin builds the provider's DingTalk sign-in from the
// configuration: one DingTalk client per corp, sharing app tokens with the
// other replicas through tokens (see appTokenCache), and the mapping's
// resolver with each corp's auto-link and JIT rules. The clients report
// their calls and rate-limiter waits to m, when it is not nil.
func dingTalkLogin(cfg *Config, store mapping.ResolverStore, tokens idp.Store, m *metrics, logger *slog.Logger) (*idp.DingTalkConfig, error) {
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
		dc := dingtalkConfig(cfg, corp, logger)
		dc.TokenCache = cache
		dc.HTTPClient = httpClient
		if m != nil {
			dc.Observe, dc.ObserveWait = m.observeDingTalkCall, m.observeLimiterWait
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
// sign people in.
func dingtalkConfig(cfg *Config, corp CorpConfig, logger *slog.Logger) dingtalk.Config {
	return dingtalk.Config{
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
