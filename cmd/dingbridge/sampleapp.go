package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The sample app is a relying party built only from stock libraries
// (go-oidc and x/oauth2), so what works for it works for any standard
// OpenID Connect client. It keeps no server-side state: the pending sign-in
// and the session live in cookies sealed with a per-process key, so a
// restart simply signs everyone out of the sample app.

// Lifetimes of the sample app's cookies.
const (
	sampleFlowLifetime    = 10 * time.Minute // a sign-in or sign-out in progress
	sampleSessionLifetime = 12 * time.Hour
	// sampleMaxCookie keeps the session cookie under the 4096 bytes browsers
	// accept for one cookie, name and attributes included.
	sampleMaxCookie = 3800
)

// sampleScopes are what the sample app asks for; the provider grants the
// ones the client is allowed and drops the rest.
var sampleScopes = []string{oidc.ScopeOpenID, "profile", "email", "phone", "groups", "dingtalk"}

//go:embed sampleapp
var sampleAppFS embed.FS

// Template names; newSampleApp fails if one is missing.
const (
	samplePageHome  = "home.html.tmpl"
	samplePageError = "error.html.tmpl"
)

// sampleAppConfig configures the sample app.
type sampleAppConfig struct {
	Issuer       string // the provider, exactly as its discovery document names it
	ClientID     string
	ClientSecret string
	// BaseURL is where browsers reach the app; its redirect URI is
	// BaseURL+"/callback", its initiate_login_uri BaseURL+"/login" and its
	// post-logout redirect URI BaseURL+"/".
	BaseURL string
	// Name is shown on the pages; default "示例应用 Sample app".
	Name string
	// HTTPClient reaches the provider; nil means http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// sampleApp is the sample relying party, an http.Handler.
type sampleApp struct {
	cfg        sampleAppConfig
	base       *url.URL
	secure     bool
	aead       cipher.AEAD
	flowCookie string // the sign-in or sign-out in progress
	sessCookie string // the signed-in session
	csp        string
	pages      *template.Template
	css        []byte
	mux        *http.ServeMux
	log        *slog.Logger

	mu   sync.Mutex
	disc *sampleDiscovery // nil until discovery succeeds
}

// sampleDiscovery is what the app learnt from the provider's discovery
// document.
type sampleDiscovery struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      *oauth2.Config
	endSession string
}

// newSampleApp checks cfg and builds the app. It does not contact the
// provider: discovery happens on the first request that needs it, and is
// retried on later requests until it succeeds, so the app may start before
// the provider does.
func newSampleApp(cfg sampleAppConfig) (*sampleApp, error) {
	var errs []error
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || (issuer.Scheme != "https" && issuer.Scheme != "http") || issuer.Host == "" {
		errs = append(errs, fmt.Errorf("issuer %q is not an absolute http(s) URL", cfg.Issuer))
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		errs = append(errs, fmt.Errorf("base URL %q is not an absolute http(s) URL without query", cfg.BaseURL))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sample app: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = "示例应用 Sample app"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("sample app: cookie key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sample app: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sample app: %w", err)
	}
	pages, err := template.ParseFS(sampleAppFS, "sampleapp/*.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("sample app: templates: %w", err)
	}
	for _, name := range []string{samplePageHome, samplePageError} {
		if pages.Lookup(name) == nil {
			return nil, fmt.Errorf("sample app: missing template %s", name)
		}
	}
	css, err := sampleAppFS.ReadFile("sampleapp/sample.css")
	if err != nil {
		return nil, fmt.Errorf("sample app: stylesheet: %w", err)
	}

	// Several sample apps may share a host (cookies ignore the port), so the
	// cookie names are unique per app.
	sum := sha256.Sum256([]byte(cfg.BaseURL + "\x00" + cfg.ClientID))
	prefix := "sampleapp_" + hex.EncodeToString(sum[:4])
	a := &sampleApp{
		cfg:        cfg,
		base:       base,
		secure:     base.Scheme == "https",
		aead:       aead,
		flowCookie: prefix + "_flow",
		sessCookie: prefix + "_session",
		// The sign-out form posts to /logout, which redirects to the
		// provider; form-action also governs that redirect.
		csp: "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' " +
			issuer.Scheme + "://" + issuer.Host + "; frame-ancestors 'none'; base-uri 'none'",
		pages: pages,
		css:   css,
		mux:   http.NewServeMux(),
		log:   cfg.Logger,
	}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /login", a.login)
	a.mux.HandleFunc("GET /callback", a.callback)
	a.mux.HandleFunc("POST /logout", a.logout)
	a.mux.HandleFunc("GET /sample.css", a.stylesheet)
	return a, nil
}

// ServeHTTP sets the security headers every response carries, then routes.
func (a *sampleApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", a.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	a.mux.ServeHTTP(w, r)
}

// discover fetches the provider's discovery document once it is reachable.
// A failure is not remembered: the next request tries again.
func (a *sampleApp) discover(ctx context.Context) (*sampleDiscovery, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.disc != nil {
		return a.disc, nil
	}
	provider, err := oidc.NewProvider(a.clientContext(ctx), a.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", a.cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&extra); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	a.disc = &sampleDiscovery{
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: a.cfg.ClientID}),
		oauth: &oauth2.Config{
			ClientID:     a.cfg.ClientID,
			ClientSecret: a.cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  a.cfg.BaseURL + "/callback",
			Scopes:       sampleScopes,
		},
		endSession: extra.EndSession,
	}
	a.log.InfoContext(ctx, "sample app discovered its provider", "issuer", a.cfg.Issuer)
	return a.disc, nil
}

// clientContext makes go-oidc and x/oauth2 use the configured HTTP client.
func (a *sampleApp) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, a.cfg.HTTPClient) // the same key x/oauth2 reads
}

// sampleFlow is a sign-in (or sign-out) in progress, kept in the flow cookie.
type sampleFlow struct {
	Kind     string    `json:"k"` // "login" or "logout"
	State    string    `json:"s"`
	Nonce    string    `json:"n,omitempty"`
	Verifier string    `json:"v,omitempty"`
	Target   string    `json:"t,omitempty"` // where to go after sign-in: a path on this app
	Expires  time.Time `json:"e"`
}

// sampleSession is the signed-in person, kept in the session cookie.
type sampleSession struct {
	IDToken  string          `json:"i"`
	UserInfo json.RawMessage `json:"u,omitempty"`
	Expires  time.Time       `json:"e"`
}

// LogValue keeps the ID token out of logs.
func (s sampleSession) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires", s.Expires))
}

// home shows the sign-in button, or the signed-in person's claims.
func (a *sampleApp) home(w http.ResponseWriter, r *http.Request) {
	data := a.pageData()
	if st := r.URL.Query().Get("state"); st != "" {
		// Back from the provider's logout: the state we sent proves it.
		var f sampleFlow
		if a.readCookie(r, a.flowCookie, &f) && f.Kind == "logout" && time.Now().Before(f.Expires) &&
			subtle.ConstantTimeCompare([]byte(st), []byte(f.State)) == 1 {
			data.SignedOut = true
			a.clearCookie(w, a.flowCookie)
		}
	}
	var sess sampleSession
	if a.readCookie(r, a.sessCookie, &sess) && time.Now().Before(sess.Expires) {
		view, err := sessionView(sess)
		if err != nil {
			a.log.WarnContext(r.Context(), "sample app: unreadable session", "err", err)
			a.clearCookie(w, a.sessCookie)
		} else {
			data.Session = view
		}
	}
	a.render(w, r, http.StatusOK, samplePageHome, data)
}

// login starts the authorization code flow with PKCE. It is also the
// client's initiate_login_uri (OIDC Core §4): a login the provider starts
// names itself in iss and may say where to land in target_link_uri.
func (a *sampleApp) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if iss := q.Get("iss"); q.Has("iss") && iss != a.cfg.Issuer {
		a.log.WarnContext(r.Context(), "sample app: login initiated by an unknown issuer", "iss", iss)
		a.renderError(w, r, http.StatusBadRequest, "", "",
			"登录请求来自未知的身份提供方。", "The sign-in request came from an unknown identity provider.")
		return
	}
	target := "/"
	if t := q.Get("target_link_uri"); t != "" {
		if p, ok := a.localTarget(t); ok {
			target = p
		} else {
			a.log.WarnContext(r.Context(), "sample app: ignoring target_link_uri outside the app", "target_link_uri", t)
		}
	}
	d, err := a.discover(r.Context())
	if err != nil {
		a.providerUnreachable(w, r, err)
		return
	}
	f := sampleFlow{
		Kind: "login", State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		Target: target, Expires: time.Now().Add(sampleFlowLifetime),
	}
	if err := a.writeCookie(w, a.flowCookie, f, sampleFlowLifetime); err != nil {
		a.internalError(w, r, err)
		return
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)}
	if hint := q.Get("login_hint"); hint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	http.Redirect(w, r, d.oauth.AuthCodeURL(f.State, opts...), http.StatusFound)
}

// localTarget accepts a target_link_uri only when it points into this app,
// and returns its path and query; anything else would make the app an open
// redirector.
func (a *sampleApp) localTarget(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != a.base.Scheme || u.Host != a.base.Host || u.User != nil {
		return "", false
	}
	basePath := strings.TrimRight(a.base.Path, "/")
	if u.Path != basePath && !strings.HasPrefix(u.Path, basePath+"/") {
		return "", false
	}
	p := strings.TrimPrefix(u.Path, basePath)
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, `\`) {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p, true
}

// callback finishes the flow: state, code exchange with the PKCE verifier,
// ID token and nonce, userinfo; then the session.
func (a *sampleApp) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var f sampleFlow
	ok := a.readCookie(r, a.flowCookie, &f) && f.Kind == "login" && time.Now().Before(f.Expires)
	a.clearCookie(w, a.flowCookie) // single use, whatever happens next
	if !ok || q.Get("state") == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		a.log.WarnContext(ctx, "sample app: callback without a matching sign-in", "have_flow", ok)
		a.renderError(w, r, http.StatusBadRequest, "", "",
			"这个登录链接已失效或不属于这个浏览器，请重新登录。",
			"This sign-in link has expired or belongs to another browser; please sign in again.")
		return
	}
	if iss := q.Get("iss"); q.Has("iss") && iss != a.cfg.Issuer { // RFC 9207
		a.log.WarnContext(ctx, "sample app: callback from an unknown issuer", "iss", iss)
		a.renderError(w, r, http.StatusBadRequest, "", "",
			"登录响应来自未知的身份提供方。", "The sign-in response came from an unknown identity provider.")
		return
	}
	if e := q.Get("error"); e != "" {
		a.log.InfoContext(ctx, "sample app: provider returned an error", "error", e, "error_description", q.Get("error_description"))
		a.renderError(w, r, http.StatusBadRequest, e, q.Get("error_description"),
			"身份提供方拒绝了登录。", "The identity provider did not sign you in.")
		return
	}
	code := q.Get("code")
	if code == "" {
		a.renderError(w, r, http.StatusBadRequest, "", "", "登录响应缺少授权码。", "The sign-in response has no code.")
		return
	}
	d, err := a.discover(ctx)
	if err != nil {
		a.providerUnreachable(w, r, err)
		return
	}
	cctx := a.clientContext(ctx)
	tok, err := d.oauth.Exchange(cctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		a.log.WarnContext(ctx, "sample app: code exchange failed", "err", err)
		oe, od := "", ""
		if re := (*oauth2.RetrieveError)(nil); errors.As(err, &re) {
			oe, od = re.ErrorCode, re.ErrorDescription
		}
		a.renderError(w, r, http.StatusBadGateway, oe, od,
			"无法用授权码换取令牌。", "The code could not be exchanged for tokens.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		a.renderError(w, r, http.StatusBadGateway, "", "", "令牌响应缺少 ID 令牌。", "The token response has no ID token.")
		return
	}
	idt, err := d.verifier.Verify(cctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		err = errors.New("nonce does not match")
	}
	if err != nil {
		a.log.WarnContext(ctx, "sample app: ID token rejected", "err", err)
		a.renderError(w, r, http.StatusBadGateway, "", "", "ID 令牌无效。", "The ID token is not valid.")
		return
	}
	sess := sampleSession{IDToken: raw, Expires: time.Now().Add(sampleSessionLifetime)}
	info, err := d.provider.UserInfo(cctx, oauth2.StaticTokenSource(tok))
	switch {
	case err != nil:
		a.log.WarnContext(ctx, "sample app: userinfo failed", "err", err)
	case info.Subject != idt.Subject: // OIDC Core §5.3.2
		a.log.WarnContext(ctx, "sample app: userinfo is about someone else", "sub", idt.Subject, "userinfo_sub", info.Subject)
	default:
		var claims json.RawMessage
		if err := info.Claims(&claims); err == nil {
			sess.UserInfo = claims
		}
	}
	if err := a.writeCookie(w, a.sessCookie, sess, sampleSessionLifetime); errors.Is(err, errCookieTooLarge) {
		a.log.WarnContext(ctx, "sample app: session too large for a cookie; keeping the ID token only")
		sess.UserInfo = nil
		err = a.writeCookie(w, a.sessCookie, sess, sampleSessionLifetime)
		if err != nil {
			a.internalError(w, r, err)
			return
		}
	} else if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.log.InfoContext(ctx, "sample app: signed in", "sub", idt.Subject)
	http.Redirect(w, r, a.cfg.BaseURL+f.Target, http.StatusFound)
}

// logout ends the app's session and asks the provider to end its own
// (RP-Initiated Logout), coming back to "/" with a state it checks there.
func (a *sampleApp) logout(w http.ResponseWriter, r *http.Request) {
	var sess sampleSession
	signedIn := a.readCookie(r, a.sessCookie, &sess)
	a.clearCookie(w, a.sessCookie)
	if !signedIn {
		http.Redirect(w, r, a.cfg.BaseURL+"/", http.StatusSeeOther)
		return
	}
	d, err := a.discover(r.Context())
	if err != nil || d.endSession == "" {
		if err != nil {
			a.log.WarnContext(r.Context(), "sample app: provider unreachable; signed out of the app only", "err", err)
		}
		http.Redirect(w, r, a.cfg.BaseURL+"/", http.StatusSeeOther)
		return
	}
	f := sampleFlow{Kind: "logout", State: randomToken(), Expires: time.Now().Add(sampleFlowLifetime)}
	if err := a.writeCookie(w, a.flowCookie, f, sampleFlowLifetime); err != nil {
		a.internalError(w, r, err)
		return
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		a.internalError(w, r, fmt.Errorf("end_session_endpoint: %w", err))
		return
	}
	v := u.Query()
	v.Set("id_token_hint", sess.IDToken)
	v.Set("client_id", a.cfg.ClientID)
	v.Set("post_logout_redirect_uri", a.cfg.BaseURL+"/")
	v.Set("state", f.State)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (a *sampleApp) stylesheet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(a.css)
}

// samplePage is the data of every page.
type samplePage struct {
	AppName   string
	Issuer    string
	Session   *sessionPage
	SignedOut bool

	Chinese, English      string // an error, said for people
	OAuthError            string // the error code the provider sent, if any
	OAuthErrorDescription string
}

type sessionPage struct {
	DisplayName    string
	IDTokenClaims  []claimRow
	UserInfoClaims []claimRow
}

type claimRow struct{ Name, Value, Note string }

func (a *sampleApp) pageData() samplePage {
	return samplePage{AppName: a.cfg.Name, Issuer: a.cfg.Issuer}
}

// sessionView turns the stored session into table rows. The ID token was
// verified before it was sealed into the cookie, so its payload is read
// here without verifying the signature again.
func sessionView(s sampleSession) (*sessionPage, error) {
	parts := strings.Split(s.IDToken, ".")
	if len(parts) != 3 {
		return nil, errors.New("id token is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("id token payload: %w", err)
	}
	var idClaims, infoClaims map[string]any
	if err := json.Unmarshal(payload, &idClaims); err != nil {
		return nil, fmt.Errorf("id token claims: %w", err)
	}
	if len(s.UserInfo) > 0 {
		if err := json.Unmarshal(s.UserInfo, &infoClaims); err != nil {
			return nil, fmt.Errorf("userinfo claims: %w", err)
		}
	}
	p := &sessionPage{IDTokenClaims: claimRows(idClaims), UserInfoClaims: claimRows(infoClaims)}
	for _, c := range []map[string]any{infoClaims, idClaims} {
		for _, k := range []string{"name", "preferred_username", "sub"} {
			if v, ok := c[k].(string); ok && v != "" && p.DisplayName == "" {
				p.DisplayName = v
			}
		}
	}
	return p, nil
}

// claimRows lists claims sorted by name; times get a readable note.
func claimRows(claims map[string]any) []claimRow {
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	slices.Sort(names)
	rows := make([]claimRow, 0, len(names))
	for _, k := range names {
		row := claimRow{Name: k}
		switch v := claims[k].(type) {
		case string:
			row.Value = v
		default:
			b, _ := json.Marshal(v)
			row.Value = string(b)
		}
		if n, ok := claims[k].(float64); ok && (k == "exp" || k == "iat" || k == "auth_time" || k == "nbf" || k == "updated_at") {
			row.Note = time.Unix(int64(n), 0).UTC().Format(time.RFC3339)
		}
		rows = append(rows, row)
	}
	return rows
}

// render renders into a buffer, then writes.
func (a *sampleApp) render(w http.ResponseWriter, r *http.Request, status int, name string, data samplePage) {
	var buf bytes.Buffer
	if err := a.pages.ExecuteTemplate(&buf, name, data); err != nil {
		a.log.ErrorContext(r.Context(), "sample app: render page", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *sampleApp) renderError(w http.ResponseWriter, r *http.Request, status int, oauthErr, oauthDesc, chinese, english string) {
	data := a.pageData()
	data.Chinese, data.English = chinese, english
	data.OAuthError, data.OAuthErrorDescription = oauthErr, oauthDesc
	a.render(w, r, status, samplePageError, data)
}

func (a *sampleApp) providerUnreachable(w http.ResponseWriter, r *http.Request, err error) {
	a.log.WarnContext(r.Context(), "sample app: provider unreachable", "err", err)
	a.renderError(w, r, http.StatusServiceUnavailable, "", "",
		"暂时无法连接身份提供方，请稍后重试。", "The identity provider cannot be reached right now; please try again shortly.")
}

func (a *sampleApp) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "sample app: internal error", "err", err)
	a.renderError(w, r, http.StatusInternalServerError, "", "", "出错了，请重试。", "Something went wrong; please try again.")
}

var errCookieTooLarge = errors.New("cookie too large")

// writeCookie seals v (JSON) with AES-GCM, the cookie's name as additional
// data, so a value cannot be read, changed or moved to another cookie.
func (a *sampleApp) writeCookie(w http.ResponseWriter, name string, v any, maxAge time.Duration) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode cookie %s: %w", name, err)
	}
	nonce := make([]byte, a.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("cookie nonce: %w", err)
	}
	value := base64.RawURLEncoding.EncodeToString(a.aead.Seal(nonce, nonce, plain, []byte(name)))
	if len(name)+len(value) > sampleMaxCookie {
		return fmt.Errorf("%w: %s is %d bytes", errCookieTooLarge, name, len(value))
	}
	http.SetCookie(w, a.cookie(name, value, int(maxAge.Seconds())))
	return nil
}

// readCookie opens a cookie written by writeCookie; false when it is
// missing, forged or from another process.
func (a *sampleApp) readCookie(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(sealed) < a.aead.NonceSize() {
		return false
	}
	n := a.aead.NonceSize()
	plain, err := a.aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}

func (a *sampleApp) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, a.cookie(name, "", -1))
}

func (a *sampleApp) cookie(name, value string, maxAge int) *http.Cookie {
	path := a.base.Path
	if path == "" {
		path = "/"
	}
	return &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	}
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	return rand.Text() + rand.Text()
}
