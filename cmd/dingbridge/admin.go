package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/sharedlimit"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/web"
)

// The admin console is an OpenID Connect client of dingbridge itself: its
// administrators sign in with DingTalk like everyone else.
const (
	adminClientID = "dingbridge-admin"
	adminPath     = "/admin"
)

// adminClient is the console's client registration, added to the
// provider's clients when the console is on.
func adminClient(cfg *Config) (ClientConfig, error) {
	secret, err := deriveKey(cfg.Secrets, "dingbridge admin console client secret")
	if err != nil {
		return ClientConfig{}, err
	}
	c := ClientConfig{
		ID: adminClientID, Name: "dingbridge 管理后台 Admin console",
		Secret:       base64.RawURLEncoding.EncodeToString(secret),
		RedirectURIs: []string{cfg.Issuer + adminPath + "/callback"},
		Scopes:       []string{"openid", "profile", "groups"},
	}
	c.IDTokenSigningAlg, c.AccessTokenFormat = "RS256", "opaque"
	return c, nil
}

// providerClients are the configured clients plus, when the console is on,
// the console's own.
func providerClients(cfg *Config) ([]ClientConfig, error) {
	if !cfg.Admin.Enabled() {
		return cfg.Clients, nil
	}
	ac, err := adminClient(cfg)
	if err != nil {
		return nil, err
	}
	ac.IDTokenLifetime, ac.AccessTokenLifetime = cfg.Admin.SessionIdle, cfg.Admin.SessionIdle
	ac.RefreshTokenLifetime, ac.RefreshTokenAbsoluteLifetime = cfg.Admin.SessionIdle, cfg.Admin.SessionAbsolute
	return append(append([]ClientConfig(nil), cfg.Clients...), ac), nil
}

// mountAdmin serves the console at issuer + "/admin" on r, reaching the
// provider through r itself.
func mountAdmin(r chi.Router, cfg *Config, store mapping.Store, limits *sharedlimit.Postgres, provider *idp.Provider, logger *slog.Logger) (*web.Server, error) {
	if !cfg.Admin.Enabled() {
		logger.Info("admin console off: admin.groups and admin.usernames are empty")
		return nil, nil
	}
	ac, err := adminClient(cfg)
	if err != nil {
		return nil, err
	}
	hashKey, err := deriveKey(cfg.Secrets, "dingbridge admin console cookie hash")
	if err != nil {
		return nil, err
	}
	blockKey, err := deriveKey(cfg.Secrets, "dingbridge admin console cookie block")
	if err != nil {
		return nil, err
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	dingtalkCorps, err := consoleCorps(cfg, issuer, limits, logger)
	if err != nil {
		return nil, err
	}
	s, err := web.New(web.Config{
		Issuer: cfg.Issuer, ClientID: ac.ID, ClientSecret: ac.Secret,
		BaseURL:        cfg.Issuer + adminPath,
		HTTPClient:     &http.Client{Transport: inProcess{host: issuer.Host, h: r, next: http.DefaultTransport}},
		Store:          store,
		AdminGroups:    cfg.Admin.Groups,
		AdminUsernames: cfg.Admin.Usernames,
		CookieHashKey:  hashKey, CookieBlockKey: blockKey,
		Secure:            issuer.Scheme == "https",
		IdleTimeout:       cfg.Admin.SessionIdle,
		AbsoluteTimeout:   cfg.Admin.SessionAbsolute,
		Logger:            logger,
		Clients:           consoleClients(cfg, ac),
		DingTalkCorps:     dingtalkCorps,
		SelfCheckInterval: cfg.Admin.SelfCheckInterval,
		Sessions:          adminSessions(store),
		EndIdentitySessions: func(ctx context.Context, k mapping.Key) error {
			_, err := provider.EndDingTalkSessions(ctx, k.CorpID, k.UserID)
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	r.Mount(strings.TrimRight(issuer.Path, "/")+adminPath, s.Routes())
	return s, nil
}

// workbenchPath is where the provider serves a client's DingTalk workbench
// page (idp's pathWorkbench): issuer + workbenchPath + client id.
const workbenchPath = "/workbench/"

// consoleClients describes the provider's clients for the console's
// clients page: everything but the secrets, which it names by their
// configuration key instead. The console's own client comes last, marked
// internal.
func consoleClients(cfg *Config, admin ClientConfig) []web.ClientInfo {
	out := make([]web.ClientInfo, 0, len(cfg.Clients)+1)
	info := func(c ClientConfig) web.ClientInfo {
		return web.ClientInfo{
			ID: c.ID, Name: c.Name, Public: c.Public,
			RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			InitiateLoginURI: c.InitiateLoginURI, Scopes: c.Scopes, Corps: c.Corps,
			IDTokenSigningAlg: c.IDTokenSigningAlg, AccessTokenFormat: c.AccessTokenFormat,
			IDTokenLifetime: c.IDTokenLifetime, AccessTokenLifetime: c.AccessTokenLifetime,
			RefreshTokenLifetime: c.RefreshTokenLifetime, RefreshTokenAbsoluteLifetime: c.RefreshTokenAbsoluteLifetime,
		}
	}
	for i, c := range cfg.Clients {
		ci := info(c)
		if !c.Public {
			ci.SecretSource = fmt.Sprintf("clients[%d].secret", i)
		}
		ci.WorkbenchURL = cfg.Issuer + workbenchPath + url.PathEscape(c.ID) + "?corpId=$CORPID$"
		out = append(out, ci)
	}
	ci := info(admin)
	ci.Internal, ci.SecretSource = true, "secrets.key_encryption_key"
	ci.IDTokenLifetime, ci.AccessTokenLifetime = cfg.Admin.SessionIdle, cfg.Admin.SessionIdle
	ci.RefreshTokenLifetime, ci.RefreshTokenAbsoluteLifetime = cfg.Admin.SessionIdle, cfg.Admin.SessionAbsolute
	return append(out, ci)
}

// consoleCorps describes the configured corps for the console, each with a
// DingTalk client of its own for the self-check: it fetches a fresh app
// token on purpose, so it has no use for the sign-in's shared token cache.
// Its calls count against the app's rate limit like the sign-in's.
func consoleCorps(cfg *Config, issuer *url.URL, limits *sharedlimit.Postgres, logger *slog.Logger) ([]web.DingTalkCorp, error) {
	out := make([]web.DingTalkCorp, 0, len(cfg.Corps))
	for i, corp := range cfg.Corps {
		client, err := dingtalk.New(dingtalkConfig(cfg, corp, limits, logger))
		if err != nil {
			return nil, fmt.Errorf("corps[%d]: %w", i, err)
		}
		dc := web.DingTalkCorp{
			ID: corp.ID, Name: corp.Name, AppKey: corp.AppKey, AgentID: corp.AgentID,
			LegacyTokenEndpoint: corp.LegacyTokenEndpoint, SNS: corp.SNS.AppID != "", Checker: client,
		}
		if corp.Events.Token != "" {
			// mountEvents serves events on the root router, not under the
			// issuer's path.
			dc.EventsURL = issuer.Scheme + "://" + issuer.Host + strings.Replace(eventsPath, "{corpID}", url.PathEscape(corp.ID), 1)
		}
		out = append(out, dc)
	}
	return out, nil
}

// adminSessions keeps the console's sessions beside the accounts: in
// Postgres when the bridge runs on Postgres, so that every replica sees a
// sign-out at once (ADM-04); in memory for the in-memory demo, which is one
// process.
func adminSessions(accounts mapping.Store) web.SessionStore {
	if pool := accountsPool(accounts); pool != nil {
		return web.NewPostgresSessions(pool)
	}
	return web.NewMemorySessions()
}

// accountsPool is the Postgres pool the accounts are kept in, or nil for
// the in-memory store: the console's sessions and the shared DingTalk rate
// limit live beside the accounts.
func accountsPool(accounts mapping.Store) *pgxpool.Pool {
	if pg, ok := accounts.(*mapping.Postgres); ok {
		return pg.Pool()
	}
	return nil
}

// inProcess serves requests for the issuer's host with the router itself:
// the console's discovery, token and key requests never leave the process,
// so they work behind any proxy or split-horizon DNS.
type inProcess struct {
	host string
	h    http.Handler
	next http.RoundTripper
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.next.RoundTrip(req)
	}
	// A fresh context: the caller's carries the routing state of the
	// console's own request, which the router must not reuse. Cancellation
	// still flows through.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(req.Context(), cancel)()
	in := req.Clone(ctx)
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	in.Host = req.URL.Host
	if in.Body == nil {
		in.Body = http.NoBody
	}
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()), Request: req,
	}, nil
}

// bufferedResponse collects a response in memory.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
