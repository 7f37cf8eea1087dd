package idp

import (
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

// workbenchTarget returns a workbench sign-in's continuation for client c:
// its initiate_login_uri with iss added (OIDC Core §4), else the
// configured start URL, else "" (the signed-in page).
func (d *dingTalkLogin) workbenchTarget(c *client) string {
	if c.InitiateLoginURI != "" {
		u, err := url.Parse(c.InitiateLoginURI)
		if err == nil {
			q := u.Query()
			q.Set("iss", d.p.issuer)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return d.startURL
}

// workbenchCorp returns the client and corp a workbench request names, if
// both are configured and the client admits the corp; otherwise it shows
// the error page.
func (d *dingTalkLogin) workbenchCorp(w http.ResponseWriter, r *http.Request, corpID string) (*client, *dingTalkCorp, bool) {
	c := d.p.clients[chi.URLParam(r, "clientID")]
	corp := d.byID[corpID]
	if c == nil || corp == nil || !c.allowsCorp(corp.ID) {
		d.p.log.InfoContext(r.Context(), "workbench sign-in refused: client or corp not configured", "corp_id", truncate(corpID, 64))
		d.p.pages.error(w, r, http.StatusNotFound, msgWorkbenchUnknown)
		return nil, nil, false
	}
	return c, corp, true
}

// workbenchPage handles GET /workbench/{client_id}?corpId=…, the home page
// of a workbench app: it asks the DingTalk client for a free-login code
// (dd.requestAuthCode, templates/workbench.js) and posts it with a CSRF
// token that the cookie holds (BR-12).
func (d *dingTalkLogin) workbenchPage(w http.ResponseWriter, r *http.Request) {
	c, corp, ok := d.workbenchCorp(w, r, r.URL.Query().Get("corpId"))
	if !ok {
		return
	}
	csrf := randomSecret()
	d.p.cookies.set(w, r, cookieWorkbenchCSRF, csrf)
	formAction := "'self'"
	if target := d.workbenchTarget(c); target != "" {
		if o, err := origin(target); err == nil {
			// The POST answers with a redirect to the app, which
			// form-action governs too.
			formAction += " " + o
		}
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; "+
		"frame-ancestors 'none'; base-uri 'none'; form-action "+formAction+
		"; script-src 'self' "+d.jsapiOrigin+"; connect-src "+d.jsapiOrigin)
	d.p.pages.renderExtra(w, r, http.StatusOK, msgWorkbench, false, nil, pageExtra{
		Workbench: &workbenchBlock{
			Action: d.p.issuer + pathWorkbench + url.PathEscape(c.ID) + "/code",
			CorpID: corp.ID, ClientID: corp.appKey, CSRF: csrf,
		},
		Scripts: []string{d.jsapiScript, d.p.issuer + "/static/workbench.js"},
	})
}

// workbenchCode handles POST /workbench/{client_id}/code: code and csrf
// from the page. It resolves the code (topapi/v2/user/getuserinfo), starts
// an SSO session and sends the browser to the app, whose own OIDC request
// then completes from that session.
func (d *dingTalkLogin) workbenchCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t := d.p.traceSignIn(r, modeJSAPI)
	defer d.p.endSignIn(ctx, &t)
	if err := r.ParseForm(); err != nil {
		d.p.pages.error(w, r, http.StatusBadRequest, msgBadRequest)
		t.outcome = OutcomeStateInvalid
		return
	}
	want, got := d.p.cookies.value(r, cookieWorkbenchCSRF), r.PostForm.Get("csrf")
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		d.p.log.InfoContext(ctx, "workbench sign-in refused: CSRF token missing or wrong")
		d.p.pages.error(w, r, http.StatusForbidden, msgWorkbenchForbidden)
		t.outcome = OutcomeStateInvalid
		return
	}
	c, corp, ok := d.workbenchCorp(w, r, r.PostForm.Get("corpId"))
	if !ok {
		t.outcome = OutcomeCorpNotAllowed
		return
	}
	t.corpID = corp.ID
	retry := []pageLink{{Href: d.p.issuer + pathWorkbench + url.PathEscape(c.ID) + "?" + url.Values{"corpId": {corp.ID}}.Encode(), Label: "try_again"}}
	code := r.PostForm.Get("code")
	if code == "" {
		d.p.pages.renderExtra(w, r, http.StatusBadRequest, msgStartAgain, true, nil, pageExtra{Links: retry})
		t.outcome = OutcomeCodeInvalid
		return
	}
	info, err := corp.Client.UserInfoByAuthCode(ctx, code)
	if err != nil {
		t.outcome = d.upstreamFailed(w, r, corp, retry, err)
		return
	}
	var id mapping.Identity
	if b, ok := d.known(ctx, corp, info.UnionID); ok && b.UserID == info.UserID && d.fresh(ctx, corp.ID, b.UserID) {
		id = b.Identity
	} else if id, err = d.directory(ctx, corp, info.UserID, info.UnionID, ""); err != nil {
		t.outcome = d.upstreamFailed(w, r, corp, retry, err)
		return
	}
	acct, err := d.resolver.Resolve(ctx, id, d.meta(w, r))
	if err != nil {
		t.outcome = d.resolveFailed(w, r, corp, id, err)
		return
	}
	if err := d.p.storage.accountActive(ctx, acct.ID); err != nil {
		d.p.log.InfoContext(ctx, "sign-in refused: account not active", "account_id", acct.ID, "err", err)
		d.p.pages.error(w, r, http.StatusForbidden, msgAccountDisabled)
		t.outcome = OutcomeDisabled
		return
	}
	_, ok = d.p.startSession(w, r, Login{
		Subject: acct.ID, AMR: []string{"dingtalk", modeJSAPI},
		DingTalk: DingTalkIDs{CorpID: id.CorpID, UserID: id.UserID, UnionID: id.UnionID},
	}, cookieWorkbenchCSRF, "") // the token is single use
	if !ok {
		return
	}
	t.outcome = OutcomeOK
	d.p.log.InfoContext(ctx, "workbench sign-in complete", "client_id", c.ID, "account_id", acct.ID, "corp_id", corp.ID)
	if target := d.workbenchTarget(c); target != "" {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	d.p.pages.render(w, r, http.StatusOK, msgSignedIn, false, nil)
}

// methodNotAllowed answers a GET of the workbench's POST endpoint.
func (d *dingTalkLogin) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	d.p.pages.error(w, r, http.StatusMethodNotAllowed, msgMethodNotAllowed)
}
