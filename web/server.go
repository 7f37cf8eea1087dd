package web

import (
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

	mu      sync.Mutex
	disc    *discovery           // nil until discovery succeeds
	revoked map[string]time.Time // signed-out session ids → when their cookie would expire anyway
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
	pages, err := newRenderer()
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	return &Server{
		cfg:      cfg,
		base:     base,
		basePath: strings.TrimRight(base.Path, "/"),
		pages:    pages,
		cookies:  newCookieCodec(cfg.CookieHashKey, cfg.CookieBlockKey, cfg.Secure),
		log:      cfg.Logger,
		now:      cfg.Now,
		revoked:  map[string]time.Time{},
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
	r.Use(withRequestID, securityHeaders, cop.Handler, limitBody)
	r.Get("/static/admin.css", serveCSS)
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
		r.Get("/identities", s.identities)
		r.Get("/pending", s.pending)
		r.Post("/pending/{id}/approve", s.approve)
		r.Post("/pending/{id}/approve-new", s.approveNew)
		r.Post("/pending/{id}/reject", s.reject)
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

// securityHeaders sets the headers every console response carries (ADM-03, ADM-05).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// maxForm bounds a form body; the console's forms are small.
const maxForm = 64 << 10

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		next.ServeHTTP(w, r)
	})
}

// path returns the console's absolute path for p ("/accounts" → "/admin/accounts").
func (s *Server) path(p string) string { return s.basePath + p }
