package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

// Config configures the admin console.
type Config struct {
	// Issuer is dingbridge's OpenID Connect issuer; the console signs in through it.
	Issuer       string
	ClientID     string
	ClientSecret string
	// BaseURL is where browsers reach the console (e.g. Issuer + "/admin"); its
	// redirect URI is BaseURL + "/callback".
	BaseURL string
	// HTTPClient reaches the issuer (discovery, token, keys); nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	Store      mapping.Store
	// AdminGroups: an account in any of these groups is an administrator.
	AdminGroups []string
	// AdminUsernames are administrators by username, for bootstrap.
	AdminUsernames []string
	// CookieHashKey (32 or 64 bytes) authenticates and CookieBlockKey (32
	// bytes) encrypts the console's cookies.
	CookieHashKey  []byte
	CookieBlockKey []byte
	// Secure marks cookies Secure and gives the session cookie the __Host-
	// prefix; false only for plain-http loopback (the demo).
	Secure bool
	// IdleTimeout ends a session nobody used for this long (default 30m);
	// AbsoluteTimeout ends any session this long after sign-in (default 8h).
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	Logger          *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// Clients are the OpenID Connect clients the clients page lists.
	Clients []ClientInfo
	// DingTalkCorps are the configured corps: the clients page's workbench
	// URLs and the DingTalk self-check.
	DingTalkCorps []DingTalkCorp
	// SelfCheckInterval is how long after a corp's DingTalk self-check the
	// next may run (default 1m): each run spends DingTalk quota.
	SelfCheckInterval time.Duration
	// Sessions keeps the console's sessions server-side (ADM-04); nil means
	// a MemorySessions, which only one replica can use: with several,
	// give them one PostgresSessions.
	Sessions SessionStore
	// EndIdentitySessions, when set, ends the provider's sign-in sessions of
	// a DingTalk identity and revokes the tokens issued under them. The
	// console calls it when it disables, unlinks or relinks an identity, or
	// an applied import moves one to another account, so that the person's
	// next sign-in anywhere goes through the mapping again instead of going
	// on as the account they were signed in as.
	EndIdentitySessions func(ctx context.Context, k mapping.Key) error
}

// Server is the admin console.
type Server struct {
	cfg      Config
	base     *url.URL
	basePath string // BaseURL's path, e.g. "/admin"
	pages    *renderer
	cookies  *cookieCodec
	log      *slog.Logger
	now      func() time.Time

	sessions SessionStore
	// Sign-in rate limits, per replica (see ratelimit.go).
	starts, completions, denials *windowLimiter

	mu   sync.Mutex
	disc *discovery // nil until discovery succeeds
	// lastCheck: corp id → start of its last DingTalk self-check (selfcheck.go).
	lastCheck map[string]time.Time

	// Dry runs and applies running in the background (import.go), and what
	// cancels them when Drain stops waiting.
	imports     sync.WaitGroup
	importsCtx  context.Context
	stopImports context.CancelFunc
}

// New checks cfg, applies defaults and builds the console. It does not
// contact the issuer: discovery happens on the first sign-in.
func New(cfg Config) (*Server, error) {
	var errs []error
	if u, err := url.Parse(cfg.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("issuer %q is not an absolute http(s) URL", cfg.Issuer))
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" || base.RawQuery != "" {
		errs = append(errs, fmt.Errorf("base URL %q is not an absolute http(s) URL without query", cfg.BaseURL))
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		errs = append(errs, errors.New("client id and secret are required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if len(cfg.AdminGroups) == 0 && len(cfg.AdminUsernames) == 0 {
		errs = append(errs, errors.New("no admin groups or usernames: nobody could sign in"))
	}
	if n := len(cfg.CookieHashKey); n != 32 && n != 64 {
		errs = append(errs, fmt.Errorf("cookie hash key must be 32 or 64 bytes, got %d", n))
	}
	if n := len(cfg.CookieBlockKey); n != 32 {
		errs = append(errs, fmt.Errorf("cookie block key must be 32 bytes, got %d", n))
	}
	if cfg.IdleTimeout < 0 || cfg.AbsoluteTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.AbsoluteTimeout == 0 {
		cfg.AbsoluteTimeout = 8 * time.Hour
	}
	if cfg.Sessions == nil {
		cfg.Sessions = NewMemorySessions()
	}
	pages, err := newRenderer()
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	importsCtx, stopImports := context.WithCancel(context.Background())
	return &Server{
		importsCtx:  importsCtx,
		stopImports: stopImports,
		cfg:         cfg,
		base:        base,
		basePath:    strings.TrimRight(base.Path, "/"),
		pages:       pages,
		cookies:     newCookieCodec(cfg.CookieHashKey, cfg.CookieBlockKey, cfg.Secure),
		log:         cfg.Logger,
		now:         cfg.Now,
		sessions:    cfg.Sessions,
		starts:      newWindowLimiter(maxSignInStarts, signInWindow, cfg.Now),
		completions: newWindowLimiter(maxSignInCompletions, signInWindow, cfg.Now),
		denials:     newWindowLimiter(maxDenials, denialWindow, cfg.Now),
	}, nil
}

// Routes returns the console's handler, to be mounted at BaseURL's path.
func (s *Server) Routes() chi.Router {
	r := chi.NewRouter()
	cop := http.NewCrossOriginProtection()
	_ = cop.AddTrustedOrigin(s.base.Scheme + "://" + s.base.Host)
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.WarnContext(r.Context(), "admin: cross-origin request refused", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		s.renderMessage(w, r, http.StatusForbidden, "err_cross_origin")
	}))
	r.Use(withRequestID, s.securityHeaders, cop.Handler, s.limitBody)
	r.Get("/static/admin.css", serveCSS)
	r.Get("/static/clients.js", serveClientsJS)
	r.Get("/static/import.js", serveImportJS)
	r.Get("/login", s.login)
	r.Get("/callback", s.callback)
	r.Post("/logout", s.logout)
	r.Group(func(r chi.Router) {
		r.Use(s.requireAdmin)
		r.Get("/", s.overview)
		r.Get("/accounts", s.accounts)
		r.Post("/accounts", s.createAccount)
		r.Get("/accounts/{id}", s.account)
		r.Post("/accounts/{id}/disabled", s.setDisabled)
		r.Post("/accounts/{id}/unlink", s.unlink)
		r.Post("/accounts/{id}/edit", s.editAccount)
		r.Post("/accounts/{id}/link", s.link)
		r.Post("/accounts/{id}/relink", s.relink)
		r.Post("/accounts/{id}/identity-disabled", s.setIdentityDisabled)
		r.Get("/identities", s.identities)
		r.Get("/pending", s.pending)
		r.Post("/pending/{id}/approve", s.approve)
		r.Post("/pending/{id}/approve-new", s.approveNew)
		r.Post("/pending/{id}/reject", s.reject)
		r.Post("/pending/bulk", s.bulkApprove)
		r.Get("/import", s.importPage)
		r.Post("/import", s.upload)
		r.Get("/import/{id}", s.importJob)
		r.Get("/import/{id}/status", s.importStatus)
		r.Post("/import/{id}/apply", s.applyImport)
		r.Get("/export.csv", s.export)
		r.Get("/clients", s.clients)
		r.Get("/dingtalk", s.selfCheckPage)
		r.Post("/dingtalk", s.runSelfCheck)
		r.Get("/audit", s.audit)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.renderMessage(w, r, http.StatusNotFound, "err_not_found")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.renderMessage(w, r, http.StatusMethodNotAllowed, "err_method")
	})
	return r
}

// csp allows nothing inline and nothing from elsewhere.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// hsts tells browsers to reach the console over https only, for a year
// (SEC-07). No preload: that is a commitment for the whole domain, which
// only its owner can make.
const hsts = "max-age=31536000"

// securityHeaders sets the headers every console response carries (ADM-03,
// ADM-05, BAD-78). HSTS only when the console is served over https: on the
// plain-http loopback demo browsers ignore it anyway.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if s.cfg.Secure {
			h.Set("Strict-Transport-Security", hsts)
		}
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// maxForm bounds a form body; the console's forms are small. An upload
// (import.go) may be larger.
const maxForm = 64 << 10

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := int64(maxForm)
		if s.isUpload(r) {
			if !s.prepareUpload(w, r) {
				return
			}
			limit = maxUpload
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// path returns the console's absolute path for p ("/accounts" → "/admin/accounts").
func (s *Server) path(p string) string { return s.basePath + p }
