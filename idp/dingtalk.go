package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/mapping"
)

// DingTalkConfig turns on sign-in with DingTalk.
type DingTalkConfig struct {
	Corps          []DingTalkCorp   // configured corps, in configuration order
	Resolver       IdentityResolver // the mapping's resolver
	LoginBaseURL   string           // e.g. https://login.dingtalk.com: the only origin whose postMessage the QR page accepts
	QRScriptURL    string           // DTFrameLogin script (ddlogin.js)
	JSAPIScriptURL string           // dingtalk.open.js
	// ProfileMaxAge: refresh the directory profile (v2/user/get) only when
	// the mapping's snapshot is older (default 24h); 0 means default.
	ProfileMaxAge time.Duration
	// VerifyMembership calls getbyunionid/user get on every sign-in, even
	// for known identities.
	VerifyMembership bool
	// WorkbenchStartURL is where workbench one-click goes when the client
	// has no initiate_login_uri.
	WorkbenchStartURL string
	// UpstreamBudget bounds the DingTalk calls of one callback, waits for
	// the rate limiter included (default 25s): a call whose turn would come
	// later fails at once with the "DingTalk is busy" page, so the browser
	// gets an answer before the server's write timeout cuts it off.
	UpstreamBudget time.Duration
}

// DingTalkCorp is one configured corp and its DingTalk app.
type DingTalkCorp struct {
	ID, Name string
	Client   DingTalkClient // *dingtalk.Client satisfies it
	SNS      bool           // a legacy scan-login app is configured for this corp
}

// DingTalkClient is what the login needs from package dingtalk.
type DingTalkClient interface {
	AuthCodeURL(p dingtalk.AuthCodeParams) string
	UserToken(ctx context.Context, code string) (*dingtalk.UserToken, error)
	Me(ctx context.Context, userAccessToken string) (*dingtalk.Profile, error)
	UserIDByUnionID(ctx context.Context, unionID string) (userID string, contactType int, err error)
	User(ctx context.Context, userID string) (*dingtalk.User, error)
	UserInfoByAuthCode(ctx context.Context, code string) (*dingtalk.AuthCodeUser, error)
	SNSAuthURL(redirectURI, state string, inClient bool) string
	SNSUserInfoByCode(ctx context.Context, tmpAuthCode string) (*dingtalk.SNSUser, error)
}

var _ DingTalkClient = (*dingtalk.Client)(nil)

// IdentityResolver decides which account a DingTalk identity is: the
// mapping's Resolver.
type IdentityResolver interface {
	Resolve(ctx context.Context, id mapping.Identity, m mapping.Meta) (mapping.Account, error)
}

// identityFinder is what the login asks the mapping, when the resolver
// offers it (mapping.Resolver does), to skip DingTalk's unionId → userId
// lookup for identities the mapping already knows.
type identityFinder interface {
	IdentityByUnionID(ctx context.Context, corpID, unionID string) (mapping.Binding, error)
}

var _ identityFinder = (*mapping.Resolver)(nil)

// Login modes: each has its own callback path (BR-05) and is the second
// amr value of the sign-ins it completes.
const (
	modeWeb   = "web"   // login.dingtalk.com: 302 inside DingTalk, or the plain link
	modeQR    = "qr"    // the QR frame embedded in our login page
	modeSNS   = "sns"   // legacy scan login
	modeJSAPI = "jsapi" // workbench one-click (amr only: no upstream transaction)
)

// Lifetimes and defaults of the DingTalk login.
const (
	upstreamLifetime      = 10 * time.Minute
	qrUpstreamLifetime    = 3 * time.Minute // BR-10
	defaultProfileMaxAge  = 24 * time.Hour
	defaultUpstreamBudget = 25 * time.Second
)

// Paths of the DingTalk login, relative to the issuer.
const (
	pathLoginCorp     = "/login/corp"
	pathLoginCallback = "/login/callback/" // + mode
	pathWorkbench     = "/workbench/"      // + client id [+ /code]
)

// cookieWorkbenchCSRF is the cookie value holding the workbench page's
// CSRF token (BR-12).
const cookieWorkbenchCSRF = "w"

// dingTalkCorp is a configured corp with what the login derives from it.
type dingTalkCorp struct {
	DingTalkCorp
	appKey string // the app's client id, as its authorize URL names it
}

// dingTalkLogin is the provider's Authenticator when DingTalk is
// configured: it routes /login to the right DingTalk entry, runs the
// callbacks and the workbench one-click.
type dingTalkLogin struct {
	p             *Provider
	corps         []*dingTalkCorp
	byID          map[string]*dingTalkCorp
	resolver      IdentityResolver
	finder        identityFinder // nil: always ask DingTalk's directory
	loginOrigin   string
	qrScript      string
	qrOrigin      string
	jsapiScript   string
	jsapiOrigin   string
	profileMaxAge time.Duration
	verify        bool
	startURL      string
	budget        time.Duration // UpstreamBudget
}

var _ Authenticator = (*dingTalkLogin)(nil)

func newDingTalkLogin(p *Provider, cfg DingTalkConfig) (*dingTalkLogin, error) {
	var errs []error
	d := &dingTalkLogin{
		p: p, byID: map[string]*dingTalkCorp{}, resolver: cfg.Resolver,
		qrScript: cfg.QRScriptURL, jsapiScript: cfg.JSAPIScriptURL,
		profileMaxAge: cfg.ProfileMaxAge, verify: cfg.VerifyMembership, startURL: cfg.WorkbenchStartURL,
		budget: cfg.UpstreamBudget,
	}
	setDefault(&d.profileMaxAge, defaultProfileMaxAge)
	setDefault(&d.budget, defaultUpstreamBudget)
	if f, ok := cfg.Resolver.(identityFinder); ok {
		d.finder = f
	}
	if cfg.Resolver == nil {
		errs = append(errs, errors.New("dingtalk: a resolver is required"))
	}
	if len(cfg.Corps) == 0 {
		errs = append(errs, errors.New("dingtalk: at least one corp is required"))
	}
	for i, c := range cfg.Corps {
		switch {
		case c.ID == "" || c.Client == nil:
			errs = append(errs, fmt.Errorf("dingtalk: corps[%d] needs an id and a client", i))
			continue
		case d.byID[c.ID] != nil:
			errs = append(errs, fmt.Errorf("dingtalk: corp %q configured twice", c.ID))
			continue
		}
		dc := &dingTalkCorp{DingTalkCorp: c}
		if dc.Name == "" {
			dc.Name = c.ID
		}
		if u, err := url.Parse(c.Client.AuthCodeURL(dingtalk.AuthCodeParams{})); err == nil {
			dc.appKey = u.Query().Get("client_id")
		}
		if dc.appKey == "" {
			errs = append(errs, fmt.Errorf("dingtalk: corp %q: the client has no app key", c.ID))
		}
		d.corps = append(d.corps, dc)
		d.byID[c.ID] = dc
	}
	for _, u := range []struct {
		name string
		raw  string
		dst  *string
	}{
		{"login base URL", cfg.LoginBaseURL, &d.loginOrigin},
		{"QR script URL", cfg.QRScriptURL, &d.qrOrigin},
		{"JSAPI script URL", cfg.JSAPIScriptURL, &d.jsapiOrigin},
	} {
		o, err := origin(u.raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: %s: %w", u.name, err))
		}
		*u.dst = o
	}
	if cfg.WorkbenchStartURL != "" {
		if _, err := origin(cfg.WorkbenchStartURL); err != nil {
			errs = append(errs, fmt.Errorf("dingtalk: workbench start URL: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// origin returns scheme://host[:port] of an absolute http(s) URL.
func origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// routes mounts the DingTalk legs on the provider's router.
func (d *dingTalkLogin) routes(r chi.Router) {
	r.Get(pathLoginCorp, d.loginCorp)
	r.Get(pathLoginCallback+"{mode}", d.callback)
	r.Get(pathWorkbench+"{clientID}", d.workbenchPage)
	r.Post(pathWorkbench+"{clientID}/code", d.workbenchCode)
	r.Get(pathWorkbench+"{clientID}/code", d.methodNotAllowed)
}

// Authenticate implements Authenticator: it picks the corp, then the
// DingTalk entry that fits the browser.
func (d *dingTalkLogin) Authenticate(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
	c := d.p.clients[ar.ClientID]
	var allowed []*dingTalkCorp
	for _, corp := range d.corps {
		if c.allowsCorp(corp.ID) {
			allowed = append(allowed, corp)
		}
	}
	switch len(allowed) {
	case 0:
		d.p.log.InfoContext(r.Context(), "sign-in refused: no configured corp admitted by client", "client_id", c.ID)
		d.p.pages.error(w, r, http.StatusForbidden, msgCorpNotAllowed)
	case 1:
		d.start(w, r, ar, allowed[0])
	default:
		var links []pageLink
		for _, corp := range allowed {
			q := url.Values{"authRequestID": {ar.ID}, "corp": {corp.ID}}
			links = append(links, pageLink{Href: d.p.issuer + pathLoginCorp + "?" + q.Encode(), Text: corp.Name})
		}
		d.p.pages.renderExtra(w, r, http.StatusOK, msgCorpPicker, false, nil, pageExtra{Links: links})
	}
}

// loginCorp handles the corp picker's choice: GET /login/corp?authRequestID=…&corp=….
func (d *dingTalkLogin) loginCorp(w http.ResponseWriter, r *http.Request) {
	ar, ok := d.p.pendingRequest(w, r, r.URL.Query().Get("authRequestID"))
	if !ok {
		return
	}
	corp := d.byID[r.URL.Query().Get("corp")]
	if corp == nil || !d.p.clients[ar.ClientID].allowsCorp(corp.ID) {
		d.p.pages.error(w, r, http.StatusForbidden, msgCorpNotAllowed)
		return
	}
	d.start(w, r, ar, corp)
}

// inDingTalk reports whether the browser is DingTalk's own WebView.
func inDingTalk(r *http.Request) bool { return strings.Contains(r.UserAgent(), "DingTalk") }

// onPhone reports whether the browser is a phone's.
func onPhone(r *http.Request) bool {
	ua := r.UserAgent()
	return strings.Contains(ua, "Mobile") || strings.Contains(ua, "Android") || strings.Contains(ua, "iPhone")
}

// start sends the browser to DingTalk for ar through corp's app: a 302
// inside DingTalk, a link page on a phone, the QR page elsewhere.
func (d *dingTalkLogin) start(w http.ResponseWriter, r *http.Request, ar *AuthRequest, corp *dingTalkCorp) {
	webState, ok := d.newUpstream(w, r, ar, corp, modeWeb)
	if !ok {
		return
	}
	webURL := corp.Client.AuthCodeURL(dingtalk.AuthCodeParams{
		RedirectURI: d.callbackURL(modeWeb), State: webState, CorpID: corp.ID,
	})
	if inDingTalk(r) {
		http.Redirect(w, r, webURL, http.StatusFound)
		return
	}
	var x pageExtra
	m := msgPhoneLogin
	if onPhone(r) {
		x.Links = []pageLink{{Href: webURL, Label: "sign_in_link"}}
		x.Hint = "open_in_app"
	} else {
		qrState, ok := d.newUpstream(w, r, ar, corp, modeQR)
		if !ok {
			return
		}
		m = msgQRLogin
		x.QR = &qrBlock{
			LoginOrigin: d.loginOrigin, RedirectURI: d.callbackURL(modeQR),
			ClientID: corp.appKey, State: qrState, CorpID: corp.ID,
		}
		x.Scripts = []string{d.qrScript, d.p.issuer + "/static/login.js"}
		x.Links = []pageLink{{Href: webURL, Label: "cannot_scan", Secondary: true}}
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy+
			"; script-src 'self' "+d.qrOrigin+"; frame-src "+d.loginOrigin)
	}
	if corp.SNS {
		snsState, ok := d.newUpstream(w, r, ar, corp, modeSNS)
		if !ok {
			return
		}
		if u := corp.Client.SNSAuthURL(d.callbackURL(modeSNS), snsState, false); u != "" {
			x.Links = append(x.Links, pageLink{Href: u, Label: "sns_link", Secondary: true})
		}
	}
	d.p.pages.renderExtra(w, r, http.StatusOK, m, false, nil, x)
}

func (d *dingTalkLogin) callbackURL(mode string) string {
	return d.p.issuer + pathLoginCallback + mode
}

// newUpstream stores a new upstream transaction for ar and returns its
// state, or shows an error page. The transaction is bound to this browser's
// id, which pendingRequest has just checked.
func (d *dingTalkLogin) newUpstream(w http.ResponseWriter, r *http.Request, ar *AuthRequest, corp *dingTalkCorp, mode string) (string, bool) {
	browser := d.p.cookies.value(r, cookieBrowserID)
	if browser == "" {
		d.p.pages.error(w, r, http.StatusForbidden, msgOtherBrowser)
		return "", false
	}
	state := randomSecret()
	now := d.p.now()
	life := upstreamLifetime
	if mode == modeQR {
		life = qrUpstreamLifetime
	}
	err := d.p.store.CreateUpstream(r.Context(), &Upstream{
		StateHash: hashToken(state), AuthRequestID: ar.ID, BrowserID: hashToken(browser),
		Mode: mode, CorpID: corp.ID, CreatedAt: now, ExpiresAt: now.Add(life),
	})
	if err != nil {
		d.p.log.ErrorContext(r.Context(), "create upstream transaction", "err", err)
		d.p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return "", false
	}
	d.p.log.InfoContext(r.Context(), "dingtalk sign-in started", "auth_request_id", ar.ID, "corp_id", corp.ID, "mode", mode)
	return state, true
}

// callback handles GET /login/callback/{web|qr|sns}: DingTalk's redirect
// back. The state is checked (known, unused, unexpired, this browser, this
// mode: BR-01, BR-03, BR-05) before DingTalk is asked anything.
func (d *dingTalkLogin) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	mode := chi.URLParam(r, "mode")
	if mode != modeWeb && mode != modeQR && mode != modeSNS {
		d.p.pages.error(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	t := d.p.traceSignIn(r, mode)
	defer d.p.endSignIn(ctx, &t)
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		d.p.log.InfoContext(ctx, "dingtalk callback without state", "mode", mode)
		d.p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		t.outcome = OutcomeStateInvalid
		return
	}
	// The transaction and its request in one statement; the request is
	// checked below, after the transaction, as if read on its own.
	tx, ar, err := d.p.store.ConsumeUpstreamWithRequest(ctx, hashToken(state), d.p.now())
	switch {
	case errors.Is(err, ErrNotFound):
		d.p.log.InfoContext(ctx, "dingtalk callback refused: state unknown, used or expired, or its request gone", "mode", mode)
		d.p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		t.outcome = OutcomeStateInvalid
		return
	case err != nil:
		d.p.log.ErrorContext(ctx, "consume upstream transaction", "err", err)
		d.p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return
	case !d.p.cookies.sameBrowser(r, tx.BrowserID):
		d.p.log.InfoContext(ctx, "dingtalk callback refused: another browser", "auth_request_id", tx.AuthRequestID, "mode", mode)
		d.p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		t.outcome = OutcomeStateInvalid
		return
	case tx.Mode != mode:
		d.p.log.InfoContext(ctx, "dingtalk callback refused: wrong mode", "auth_request_id", tx.AuthRequestID, "mode", mode, "want_mode", tx.Mode)
		d.p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		t.outcome = OutcomeStateInvalid
		return
	}
	t.corpID = tx.CorpID
	if outcome := d.p.checkPending(w, r, ar, nil); outcome != OutcomeOK {
		t.outcome = outcome
		return
	}
	corp := d.byID[tx.CorpID]
	if corp == nil { // configuration changed since the transaction began
		d.p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		t.outcome = OutcomeStateInvalid
		return
	}
	retry := []pageLink{{Href: d.p.loginURL(ar.ID), Label: "try_again"}}
	if e := q.Get("error"); e != "" {
		// BR-14: the person declined; nothing is done, the request stays
		// pending so that they (or the app) may try again.
		d.p.log.InfoContext(ctx, "dingtalk sign-in cancelled", "auth_request_id", ar.ID, "corp_id", corp.ID, "mode", mode, "dingtalk_error", truncate(e, 64))
		d.p.pages.renderExtra(w, r, http.StatusOK, msgCancelled, true, nil, pageExtra{Links: retry})
		t.outcome = OutcomeCancelled
		return
	}
	code := dingtalk.CodeFromCallback(q)
	if code == "" {
		d.p.log.InfoContext(ctx, "dingtalk callback without code", "auth_request_id", ar.ID, "mode", mode)
		d.p.pages.renderExtra(w, r, http.StatusBadRequest, msgStartAgain, true, nil, pageExtra{Links: retry})
		t.outcome = OutcomeCodeInvalid
		return
	}
	var id mapping.Identity
	uctx, cancel := context.WithTimeout(ctx, d.budget)
	if mode == modeSNS {
		id, err = d.identityFromSNSCode(uctx, corp, code)
	} else {
		id, err = d.identityFromWebCode(uctx, corp, code)
	}
	cancel()
	if err != nil {
		t.outcome = d.upstreamFailed(w, r, corp, retry, err)
		return
	}
	acct, err := d.resolver.Resolve(ctx, id, d.meta(w, r))
	if err != nil {
		t.outcome = d.resolveFailed(w, r, corp, id, err)
		return
	}
	// The resolver has just found the account active: no second read.
	t.outcome = d.p.finish(w, r, ar, Login{
		Subject: acct.ID, AMR: []string{"dingtalk", mode},
		DingTalk: DingTalkIDs{CorpID: id.CorpID, UserID: id.UserID, UnionID: id.UnionID},
	}, true)
}

// errOtherCorp is a web login whose user token names another corp, or none
// (BR-07: fail closed).
var errOtherCorp = fmt.Errorf("user token for another corp: %w", dingtalk.ErrCorpMismatch)

// identityFromWebCode turns a login.dingtalk.com authCode into the identity:
// user token (its corp must be the transaction's) → users/me → unionId →
// identity.
func (d *dingTalkLogin) identityFromWebCode(ctx context.Context, corp *dingTalkCorp, code string) (mapping.Identity, error) {
	tok, err := corp.Client.UserToken(ctx, code)
	if err != nil {
		return mapping.Identity{}, err
	}
	if tok.CorpID == "" || tok.CorpID != corp.ID {
		d.p.log.InfoContext(ctx, "dingtalk sign-in refused: token of another corp", "corp_id", corp.ID, "token_corp_id", tok.CorpID)
		return mapping.Identity{}, errOtherCorp
	}
	me, err := corp.Client.Me(ctx, tok.AccessToken)
	if err != nil {
		return mapping.Identity{}, err
	}
	return d.identityByUnionID(ctx, corp, me.UnionID, me.OpenID)
}

// identityFromSNSCode turns a legacy SNS code into the identity. The SNS
// app's openId is not the corp app's, so it is not kept.
func (d *dingTalkLogin) identityFromSNSCode(ctx context.Context, corp *dingTalkCorp, code string) (mapping.Identity, error) {
	su, err := corp.Client.SNSUserInfoByCode(ctx, code)
	if err != nil {
		return mapping.Identity{}, err
	}
	return d.identityByUnionID(ctx, corp, su.UnionID, "")
}

// identityByUnionID finds the person behind a unionId in corp with as few
// DingTalk calls as it can: an identity the mapping knows (under this app
// key, BR-08) needs no getbyunionid, and none of the directory either while
// its snapshot is fresh. VerifyMembership asks the directory every time.
func (d *dingTalkLogin) identityByUnionID(ctx context.Context, corp *dingTalkCorp, unionID, openID string) (mapping.Identity, error) {
	if b, ok := d.known(ctx, corp, unionID); ok {
		if d.fresh(ctx, corp.ID, b.UserID) {
			id := b.Identity
			if openID != "" {
				id.OpenID = openID
			}
			return id, nil
		}
		return d.directory(ctx, corp, b.UserID, unionID, openID)
	}
	userID, contactType, err := corp.Client.UserIDByUnionID(ctx, unionID)
	if err != nil {
		return mapping.Identity{}, err
	}
	if contactType != dingtalk.ContactTypeEmployee {
		return mapping.Identity{}, fmt.Errorf("external contact: %w", dingtalk.ErrNotMember)
	}
	return d.directory(ctx, corp, userID, unionID, openID)
}

// known returns the mapping's identity for (corp, unionId) when the login
// may trust it instead of asking DingTalk.
func (d *dingTalkLogin) known(ctx context.Context, corp *dingTalkCorp, unionID string) (mapping.Binding, bool) {
	if d.finder == nil || d.verify || unionID == "" {
		return mapping.Binding{}, false
	}
	b, err := d.finder.IdentityByUnionID(ctx, corp.ID, unionID)
	if err != nil {
		if !errors.Is(err, mapping.ErrNotFound) {
			d.p.log.WarnContext(ctx, "look up identity by unionid; asking DingTalk", "corp_id", corp.ID, "err", err)
		}
		return mapping.Binding{}, false
	}
	return b, b.UserID != "" && b.AppKey == corp.appKey
}

// fresh reports whether the directory profile of the identity was fetched
// less than ProfileMaxAge ago.
func (d *dingTalkLogin) fresh(ctx context.Context, corpID, userID string) bool {
	if d.verify {
		return false
	}
	at, err := d.p.store.ProfileRefreshedAt(ctx, corpID, userID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			d.p.log.WarnContext(ctx, "read profile refresh time", "corp_id", corpID, "err", err)
		}
		return false
	}
	return d.p.now().Sub(at) < d.profileMaxAge
}

// directory fetches the person's directory record (topapi/v2/user/get),
// which also proves they are still a member (60121 otherwise).
func (d *dingTalkLogin) directory(ctx context.Context, corp *dingTalkCorp, userID, unionID, openID string) (mapping.Identity, error) {
	u, err := corp.Client.User(ctx, userID)
	if err != nil {
		return mapping.Identity{}, err
	}
	if err := d.p.store.MarkProfileRefreshed(ctx, corp.ID, userID, d.p.now()); err != nil {
		d.p.log.WarnContext(ctx, "record profile refresh", "corp_id", corp.ID, "err", err)
	}
	if unionID == "" {
		unionID = u.UnionID
	}
	return mapping.Identity{
		CorpID: corp.ID, UserID: u.UserID, UnionID: unionID, OpenID: openID, AppKey: corp.appKey,
		Name: u.Name, Mobile: u.Mobile, OrgEmail: u.OrgEmail, Email: u.Email, JobNumber: u.JobNumber,
		Title: u.Title, DeptIDs: u.DeptIDList, Active: u.Active,
	}, nil
}

// meta is the audit context of a sign-in.
func (d *dingTalkLogin) meta(w http.ResponseWriter, r *http.Request) mapping.Meta {
	return mapping.Meta{RequestID: w.Header().Get("X-Request-Id"), ClientIP: remoteIP(r.RemoteAddr)}
}

// upstreamFailed shows the page for a DingTalk call that failed and
// returns the sign-in's outcome. Nothing is issued after it; retry restarts
// the same sign-in.
func (d *dingTalkLogin) upstreamFailed(w http.ResponseWriter, r *http.Request, corp *dingTalkCorp, retry []pageLink, err error) string {
	ctx := r.Context()
	var apiErr *dingtalk.APIError
	switch {
	case errors.Is(err, dingtalk.ErrNotMember), errors.Is(err, dingtalk.ErrCorpMismatch):
		d.p.log.InfoContext(ctx, "dingtalk sign-in refused: not a member", "corp_id", corp.ID, "err", err)
		d.p.pages.error(w, r, http.StatusForbidden, msgNotMember.with("{corp}", corp.Name))
		return OutcomeNotMember
	case errors.Is(err, dingtalk.ErrPermissionDenied):
		d.p.log.ErrorContext(ctx, "dingtalk app lacks a permission", "corp_id", corp.ID, "err", err)
		detail := ""
		if errors.As(err, &apiErr) {
			detail = fmt.Sprintf("[DingTalk %s: %s]", apiErr.Code, truncate(apiErr.Message, 200))
			if len(apiErr.RequiredScopes) > 0 {
				// What to grant, named as the developer console names it.
				detail = fmt.Sprintf("[%s] %s", strings.Join(apiErr.RequiredScopes, ", "), detail)
			}
		}
		d.p.pages.error(w, r, http.StatusBadGateway, msgLacksPermission.with("{detail}", detail))
	case errors.Is(err, dingtalk.ErrInvalidCode):
		d.p.log.InfoContext(ctx, "dingtalk code refused", "corp_id", corp.ID, "err", err)
		d.p.pages.renderExtra(w, r, http.StatusBadRequest, msgStartAgain, true, nil, pageExtra{Links: retry})
		return OutcomeCodeInvalid
	case errors.Is(err, dingtalk.ErrBadCredentials):
		d.p.log.ErrorContext(ctx, "dingtalk rejected the app credentials", "corp_id", corp.ID, "err", err)
		d.p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
	default:
		// Throttling, timeouts, 5xx, HTML and truncated answers.
		d.p.log.WarnContext(ctx, "dingtalk call failed", "corp_id", corp.ID, "err", err)
		d.p.pages.renderExtra(w, r, http.StatusServiceUnavailable, msgDingTalkBusy, true, nil, pageExtra{Links: retry})
	}
	return OutcomeDingTalkError
}

// resolveFailed shows the page for an identity the mapping does not turn
// into an account and returns the sign-in's outcome.
func (d *dingTalkLogin) resolveFailed(w http.ResponseWriter, r *http.Request, corp *dingTalkCorp, id mapping.Identity, err error) string {
	ctx := r.Context()
	var notLinked *mapping.NotLinkedError
	var disabled *mapping.DisabledError
	switch {
	case errors.As(err, &notLinked):
		d.p.log.InfoContext(ctx, "sign-in: identity not linked yet", "corp_id", id.CorpID, "user_id", id.UserID, "pending_request_id", notLinked.RequestID)
		d.p.pages.error(w, r, http.StatusOK, msgNotLinked)
		return OutcomeNotLinked
	case errors.As(err, &disabled):
		d.p.log.InfoContext(ctx, "sign-in refused: disabled", "corp_id", id.CorpID, "user_id", id.UserID, "err", err)
		d.p.pages.error(w, r, http.StatusForbidden, msgAccountDisabled)
		return OutcomeDisabled
	case errors.Is(err, mapping.ErrCorpNotAllowed):
		d.p.log.InfoContext(ctx, "sign-in refused: corp not allowed", "corp_id", id.CorpID)
		d.p.pages.error(w, r, http.StatusForbidden, msgNotMember.with("{corp}", corp.Name))
		return OutcomeCorpNotAllowed
	default:
		d.p.log.ErrorContext(ctx, "resolve identity", "corp_id", id.CorpID, "user_id", id.UserID, "err", err)
		d.p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return OutcomeUnavailable
	}
}

// truncate bounds a value from outside before it is logged or shown.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
