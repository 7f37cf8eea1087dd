package idp

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// endSession handles RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0). The browser goes back to post_logout_redirect_uri only with
// proof that the client asked for it: a valid id_token_hint (expired is
// fine) from a client that registered that exact URI. Without that proof
// the person is asked to confirm, and stays at the provider afterwards; so
// neither a forged link nor a hint from someone else can sign a person out
// silently or turn this endpoint into an open redirect.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.pages.error(w, r, http.StatusBadRequest, msgBadRequest)
		return
	}
	form := r.Form
	for _, v := range form {
		if len(v) > 1 {
			p.pages.error(w, r, http.StatusBadRequest, msgBadRequest)
			return
		}
	}
	if r.Method == http.MethodPost && form.Has("confirm") {
		p.confirmedLogout(w, r, form.Get("confirm"))
		return
	}
	target, err := p.logoutTarget(r, form)
	if err != nil {
		p.pages.error(w, r, http.StatusBadRequest, msgBadRequest)
		return
	}
	if target == nil {
		p.askLogout(w, r)
		return
	}
	p.endBrowserSession(r.Context(), r)
	p.cookies.set(w, r, cookieSessionID, "")
	if target.uri == "" {
		p.pages.render(w, r, http.StatusOK, msgLoggedOut, false, nil)
		return
	}
	to := target.uri
	if s := form.Get("state"); s != "" {
		sep := "?"
		if u, _ := url.Parse(to); u != nil && u.RawQuery != "" {
			sep = "&"
		}
		to += sep + url.Values{"state": {s}}.Encode()
	}
	redirect(w, r, to)
}

// logoutRequest is a logout the client has proved it asked for.
type logoutRequest struct {
	uri string // where to send the browser afterwards; "" to stay here
}

// logoutTarget returns the verified logout, nil when there is no proof (ask
// the person), or an error for a request that contradicts itself.
func (p *Provider) logoutTarget(r *http.Request, form url.Values) (*logoutRequest, error) {
	hint, uri, clientID := form.Get("id_token_hint"), form.Get("post_logout_redirect_uri"), form.Get("client_id")
	if hint == "" {
		return nil, nil
	}
	ctx := r.Context()
	claims, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, p.op.IDTokenHintVerifier(ctx))
	if (err != nil && !errors.As(err, &op.IDTokenHintExpiredError{})) || claims == nil {
		return nil, nil
	}
	aud := claims.AuthorizedParty
	if aud == "" && len(claims.Audience) > 0 {
		aud = claims.Audience[0]
	}
	if clientID != "" && clientID != aud {
		return nil, errors.New("client_id does not match the id_token_hint")
	}
	c, ok := p.clients[aud]
	if !ok {
		return nil, nil
	}
	if uri != "" && !slices.Contains(c.PostLogoutRedirectURIs(), uri) {
		return nil, nil
	}
	return &logoutRequest{uri: uri}, nil
}

// askLogout shows the confirmation page; its form carries a token bound to
// this browser, so another site cannot submit it.
func (p *Provider) askLogout(w http.ResponseWriter, r *http.Request) {
	token := randomSecret()
	p.cookies.set(w, r, cookieLogoutCSRF, token)
	p.pages.render(w, r, http.StatusOK, msgLogoutConfirm, false, &pageForm{
		Action: p.issuer + pathEndSession,
		Hidden: []hiddenField{{"confirm", token}},
	})
}

func (p *Provider) confirmedLogout(w http.ResponseWriter, r *http.Request, token string) {
	want := p.cookies.value(r, cookieLogoutCSRF)
	if want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		p.pages.error(w, r, http.StatusForbidden, msgBadRequest)
		return
	}
	p.endBrowserSession(r.Context(), r)
	p.cookies.set(w, r, cookieSessionID, "", cookieLogoutCSRF, "")
	redirect(w, r, p.issuer+pathLoggedOut)
}

func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request) {
	p.pages.render(w, r, http.StatusOK, msgLoggedOut, false, nil)
}
