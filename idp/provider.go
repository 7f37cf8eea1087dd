package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Config is what New needs to build a Provider.
type Config struct {
	// Issuer is the provider's public URL, exactly as clients configure it.
	// It never comes from request headers.
	Issuer  string
	Clients []ClientConfig

	Store    Store
	Keys     signer        // the signing-key manager (KeyManager)
	Accounts AccountSource // the mapping
	// Authenticator signs people in: a stand-in in tests. Nil (and no
	// DingTalk) means this server cannot sign anyone in yet; /login says so.
	Authenticator Authenticator
	// DingTalk, when set, makes the DingTalk login the Authenticator (which
	// must then be nil) and mounts its routes.
	DingTalk *DingTalkConfig

	// CryptoKey encrypts opaque access tokens (32 bytes; derive it from the
	// key-encryption key, the same on every replica).
	CryptoKey [32]byte
	// CookieHashKey (32 or 64 bytes) and CookieBlockKey (32 bytes) protect
	// the browser cookie, which holds only references.
	CookieHashKey  []byte
	CookieBlockKey []byte
	// SessionLifetime is how long an SSO session lasts (default 12h).
	SessionLifetime time.Duration
	// Observer, when set, is told how sign-ins and token requests end.
	Observer Observer

	Now    func() time.Time
	Logger *slog.Logger
}

// Authenticator signs a person in for a pending authorization request that
// no SSO session can satisfy. In production it is the DingTalk login; tests
// use a stand-in. It ends by calling Provider.Finish, or by rendering an
// error page.
type Authenticator interface {
	Authenticate(w http.ResponseWriter, r *http.Request, ar *AuthRequest)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(w http.ResponseWriter, r *http.Request, ar *AuthRequest)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
	f(w, r, ar)
}

// Provider is dingbridge's OpenID Connect provider.
type Provider struct {
	issuer   string
	store    Store
	storage  *storage
	clients  map[string]*client
	auth     Authenticator
	dingtalk *dingTalkLogin // nil unless DingTalk is configured
	cookies  *cookies
	pages    *pages
	op       *op.Provider
	zitadel  http.Handler
	sessLife time.Duration
	limiter  *failureLimiter
	observer Observer                 // nil: nobody is told
	jwks     atomic.Pointer[jwksBody] // the JWKS body of the current key set
	now      func() time.Time
	log      *slog.Logger
}

// Paths of the endpoints, relative to the issuer.
const (
	pathAuthorize  = "/authorize"
	pathLogin      = "/login"
	pathToken      = "/oauth/token"
	pathIntrospect = "/oauth/introspect"
	pathUserinfo   = "/userinfo"
	pathRevoke     = "/revoke"
	pathEndSession = "/end_session"
	pathKeys       = "/keys"
	pathLoggedOut  = "/logged_out"
)

// New validates cfg and builds the provider.
func New(cfg Config) (*Provider, error) {
	var errs []error
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || !iss.IsAbs() || iss.RawQuery != "" || iss.Fragment != "" || strings.HasSuffix(cfg.Issuer, "/") {
		errs = append(errs, fmt.Errorf("issuer %q must be an absolute URL without query, fragment or trailing slash", cfg.Issuer))
	}
	if cfg.Store == nil || cfg.Keys == nil || cfg.Accounts == nil {
		errs = append(errs, errors.New("store, keys and accounts are required"))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.SessionLifetime, 12*time.Hour)
	p := &Provider{
		issuer:   cfg.Issuer,
		store:    cfg.Store,
		auth:     cfg.Authenticator,
		sessLife: cfg.SessionLifetime,
		limiter:  newFailureLimiter(cfg.Now),
		observer: cfg.Observer,
		now:      cfg.Now,
		log:      cfg.Logger,
	}
	if p.auth == nil {
		p.auth = AuthenticatorFunc(func(w http.ResponseWriter, r *http.Request, _ *AuthRequest) {
			p.pages.error(w, r, http.StatusServiceUnavailable, msgSignInUnavailable)
		})
	}
	p.clients, err = newClients(cfg.Clients, p.loginURL)
	if err != nil {
		errs = append(errs, err)
	}
	if err == nil && iss != nil {
		p.cookies, err = newCookies(cfg.CookieHashKey, cfg.CookieBlockKey, iss.Scheme == "https", cfg.SessionLifetime)
		if err != nil {
			errs = append(errs, err)
		}
	}
	p.pages, err = newPages()
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.DingTalk != nil {
		if cfg.Authenticator != nil {
			errs = append(errs, errors.New("dingtalk and an authenticator are both configured"))
		}
		p.dingtalk, err = newDingTalkLogin(p, *cfg.DingTalk)
		if err != nil {
			errs = append(errs, err)
		} else {
			p.auth = p.dingtalk
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}

	p.storage = &storage{store: cfg.Store, keys: cfg.Keys, accounts: cfg.Accounts, clients: p.clients, now: cfg.Now, log: cfg.Logger}
	opts := []op.Option{}
	if iss.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // loopback only: config validation refuses other http issuers
	}
	p.op, err = op.NewProvider(&op.Config{
		CryptoKey:             cfg.CryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
	}, p.storage, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	endpoints := op.Endpoints{
		Token:         op.NewEndpoint(pathToken),
		Introspection: op.NewEndpoint(pathIntrospect),
		Userinfo:      op.NewEndpoint(pathUserinfo),
		Revocation:    op.NewEndpoint(pathRevoke),
		JwksURI:       op.NewEndpoint(pathKeys),
		// /authorize, /end_session and discovery are served by the
		// provider itself, not the library: see Handler.
	}
	srv := &server{LegacyServer: op.NewLegacyServer(p.op, endpoints), p: p}
	p.zitadel = op.RegisterServer(srv, endpoints, op.WithServerCORSOptions(nil))
	return p, nil
}

// Handler serves every endpoint of the provider.
func (p *Provider) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(p.securityHeaders, limitBody, p.withIssuer, p.cookies.memoize)
	r.Get("/.well-known/openid-configuration", p.discovery)
	r.Get(pathAuthorize, p.authorize)
	r.Post(pathAuthorize, p.authorize)
	r.Get(pathLogin, p.login)
	r.Get(pathEndSession, p.endSession)
	r.Post(pathEndSession, p.endSession)
	r.Get(pathLoggedOut, p.loggedOut)
	r.Get("/static/dingbridge.css", p.pages.css)
	r.Get("/static/login.js", p.pages.loginJS)
	r.Get("/static/workbench.js", p.pages.workbench)
	if p.dingtalk != nil {
		p.dingtalk.routes(r)
	}
	r.Handle(pathToken, p.observeTokens(withClientIP(noStore(noRepeatedParams(withAccountMemo(p.zitadel))))))
	r.Handle(pathIntrospect, noStore(noRepeatedParams(requireClientAuth(withAccountMemo(p.zitadel)))))
	r.Handle(pathUserinfo, bearerChallenge(withAccountMemo(p.zitadel)))
	r.Handle(pathRevoke, noStore(noRepeatedParams(requireClientAuth(p.zitadel))))
	r.Handle(pathKeys, p.zitadel)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		p.pages.error(w, r, http.StatusNotFound, msgNotFound)
	})
	return r
}

// withIssuer puts the configured issuer in every request's context, where
// the library reads it; Host and X-Forwarded-* headers play no part.
func (p *Provider) withIssuer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(op.ContextWithIssuer(r.Context(), p.issuer)))
	})
}

func (p *Provider) loginURL(authRequestID string) string {
	return p.issuer + pathLogin + "?authRequestID=" + url.QueryEscape(authRequestID)
}

// Ready reports whether the provider's store answers.
func (p *Provider) Ready(ctx context.Context) error { return p.store.Ping(ctx) }
