package idp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Limits on authorization request parameters: far above what real clients
// send, low enough that nobody can make us store megabytes per request.
const (
	maxParamLen = 2048
	maxScopes   = 32
)

// s256Challenge is a base64url SHA-256 digest, the only PKCE challenge we
// accept (RFC 7636 §4.2; plain is refused, RFC 9700 §2.1.1).
var s256Challenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// Prompt values of OIDC Core 3.1.2.1.
var knownPrompts = []string{oidc.PromptNone, oidc.PromptLogin, oidc.PromptConsent, oidc.PromptSelectAccount}

// authorize handles GET and POST /authorize. Until the client and its
// redirect URI are known to be registered, errors are shown as a page and
// never redirected (RFC 6749 §4.1.2.1); after that they go back to the
// client, with iss (RFC 9207).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.pages.error(w, r, http.StatusBadRequest, msgBadRequest)
		return
	}
	form := r.Form
	repeated := ""
	for k, v := range form {
		if len(v) > 1 {
			repeated = k
		}
	}
	c, ok := p.clients[form.Get("client_id")]
	switch {
	case repeated == "client_id" || repeated == "redirect_uri":
		p.pages.error(w, r, http.StatusBadRequest, msgRepeatedParam)
		return
	case !ok:
		p.pages.error(w, r, http.StatusBadRequest, msgUnknownClient)
		return
	}
	redirectURI := form.Get("redirect_uri")
	switch {
	case redirectURI == "":
		p.pages.error(w, r, http.StatusBadRequest, msgNoRedirectURI)
		return
	case !slices.Contains(c.RedirectURIs(), redirectURI):
		// Exact string comparison: no unescaping, case folding, default
		// ports or trailing slashes (the library unescapes first).
		p.pages.error(w, r, http.StatusBadRequest, msgBadRedirectURI)
		return
	}

	back := errorTarget{redirectURI: redirectURI, state: form.Get("state")}
	req, hintSub, oerr := p.parseAuthRequest(r.Context(), form, c, repeated)
	if oerr != nil {
		p.redirectError(w, r, back, oerr)
		return
	}
	ctx := withBrowserID(r.Context(), hashToken(p.cookies.browserID(w, r)))
	ar, err := p.storage.CreateAuthRequest(ctx, req, hintSub)
	if err != nil {
		p.log.ErrorContext(ctx, "create auth request", "err", err, "client_id", c.ID)
		p.redirectError(w, r, back, oidc.ErrServerError().WithDescription("the request could not be stored; try again"))
		return
	}
	redirect(w, r, p.loginURL(ar.GetID()))
}

// parseAuthRequest checks everything after the client and redirect URI.
// It returns the hint's subject when a valid id_token_hint was sent.
func (p *Provider) parseAuthRequest(ctx context.Context, form url.Values, c *client, repeated string) (*oidc.AuthRequest, string, *oidc.Error) {
	if repeated != "" {
		return nil, "", oidc.ErrInvalidRequest().WithDescription("parameter %s must not be repeated", repeated)
	}
	for k, v := range form {
		if len(v[0]) > maxParamLen {
			return nil, "", oidc.ErrInvalidRequest().WithDescription("parameter %s is too long", k)
		}
	}
	switch {
	case form.Has("request"):
		return nil, "", oidc.ErrRequestNotSupported()
	case form.Has("request_uri"):
		return nil, "", &oidc.Error{ErrorType: "request_uri_not_supported", Description: "request_uri is not supported"}
	}
	switch rt := form.Get("response_type"); rt {
	case string(oidc.ResponseTypeCode):
	case "":
		return nil, "", oidc.ErrInvalidRequest().WithDescription("response_type is missing")
	default:
		return nil, "", &oidc.Error{ErrorType: "unsupported_response_type", Description: "only response_type=code is supported"}
	}
	if rm := form.Get("response_mode"); rm != "" && rm != string(oidc.ResponseModeQuery) {
		return nil, "", oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}

	scopes := strings.Fields(form.Get("scope"))
	switch {
	case len(scopes) > maxScopes:
		return nil, "", oidc.ErrInvalidScope().WithDescription("too many scopes")
	case !slices.Contains(scopes, oidc.ScopeOpenID):
		return nil, "", oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	slices.Sort(scopes)
	scopes = c.grantable(slices.Compact(scopes)) // scopes the client may not have are dropped (RFC 6749 §3.3)

	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return nil, "", oidc.ErrInvalidRequest().WithDescription("code_challenge_method without code_challenge")
	case challenge == "" && c.Public:
		return nil, "", oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for this client")
	case challenge != "" && method != string(oidc.CodeChallengeMethodS256):
		return nil, "", oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case challenge != "" && !s256Challenge.MatchString(challenge):
		return nil, "", oidc.ErrInvalidRequest().WithDescription("code_challenge must be a base64url SHA-256 digest (43 characters)")
	}

	prompts := strings.Fields(form.Get("prompt"))
	for _, pr := range prompts {
		if !slices.Contains(knownPrompts, pr) {
			return nil, "", oidc.ErrInvalidRequest().WithDescription("unknown prompt value %q", pr)
		}
	}
	if slices.Contains(prompts, oidc.PromptNone) && len(prompts) > 1 {
		return nil, "", oidc.ErrInvalidRequest().WithDescription("prompt=none cannot be combined with other values")
	}
	var maxAge *uint
	if form.Has("max_age") {
		n, err := strconv.ParseUint(form.Get("max_age"), 10, 31)
		if err != nil {
			return nil, "", oidc.ErrInvalidRequest().WithDescription("max_age must be a non-negative number of seconds")
		}
		v := uint(n)
		maxAge = &v
	}
	if slices.Contains(prompts, oidc.PromptLogin) {
		maxAge = oidc.NewMaxAge(0) // prompt=login: always authenticate again
	}

	var hintSub string
	if hint := form.Get("id_token_hint"); hint != "" {
		claims, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, p.op.IDTokenHintVerifier(ctx))
		// An expired hint still names its subject (OIDC Core 3.1.2.1).
		if (err != nil && !errors.As(err, &op.IDTokenHintExpiredError{})) || claims == nil {
			return nil, "", oidc.ErrLoginRequired().WithDescription("the id_token_hint is not valid")
		}
		hintSub = claims.GetSubject()
	}

	req := &oidc.AuthRequest{
		Scopes:              scopes,
		ResponseType:        oidc.ResponseTypeCode,
		ResponseMode:        oidc.ResponseModeQuery,
		ClientID:            c.ID,
		RedirectURI:         form.Get("redirect_uri"),
		State:               form.Get("state"),
		Nonce:               form.Get("nonce"),
		Prompt:              prompts,
		MaxAge:              maxAge,
		LoginHint:           form.Get("login_hint"),
		CodeChallenge:       challenge,
		CodeChallengeMethod: oidc.CodeChallengeMethod(method),
	}
	return req, hintSub, nil
}

// errorTarget is where an authorization error goes back to.
type errorTarget struct {
	redirectURI string
	state       string
}

// redirectError sends an authorization error back to the client with
// state and iss (RFC 6749 §4.1.2.1, RFC 9207).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, t errorTarget, e *oidc.Error) {
	v := url.Values{"error": {string(e.ErrorType)}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	p.redirectToClient(w, r, t.redirectURI, t.state, v)
}

// redirectToClient adds params, state and iss to the registered redirect
// URI, keeping its own query exactly as registered.
func (p *Provider) redirectToClient(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	if state != "" {
		params.Set("state", state)
	}
	params.Set("iss", p.issuer)
	sep := "?"
	if strings.Contains(redirectURI, "?") {
		sep = "&"
	}
	redirect(w, r, redirectURI+sep+params.Encode())
}

// redirect answers 302, or 303 after a POST: never 307, which would replay
// a form's body at the next site (RFC 9700 §4.12).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	code := http.StatusFound
	if r.Method == http.MethodPost {
		code = http.StatusSeeOther
	}
	http.Redirect(w, r, to, code)
}

type browserIDKey struct{}

func withBrowserID(ctx context.Context, hash string) context.Context {
	return context.WithValue(ctx, browserIDKey{}, hash)
}

// browserIDFrom returns the hash of the browser id that started a request.
func browserIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(browserIDKey{}).(string)
	return s
}
