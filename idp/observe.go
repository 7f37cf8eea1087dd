package idp

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Observer is told how sign-ins and token requests end: the command counts
// them and audits failed sign-ins. Its methods run on the request's
// goroutine, with its context, after the response is decided; they must be
// quick and must not write to the response.
type Observer interface {
	SignIn(ctx context.Context, s SignIn)
	TokenRequest(ctx context.Context, t TokenRequest)
}

// SignIn is one DingTalk sign-in (a callback from DingTalk, or a workbench
// one-tap) or one single sign-on from an existing session, as it ended.
type SignIn struct {
	// Mode is how the person signed in: "web", "qr", "sns", "jsapi"
	// (workbench one-tap) or "sso" (an existing session satisfied the
	// request; no DingTalk round trip).
	Mode string
	// Outcome is OutcomeOK or the reason it failed: one of the Outcome
	// constants, a small fixed set.
	Outcome string
	// CorpID is the corp being signed in to, when known ("" when the
	// request failed before that was known).
	CorpID string
	// Duration is the time dingbridge spent on the final step (DingTalk's
	// callback, or the workbench's code), DingTalk's answers included; the
	// person's time on DingTalk's pages is not.
	Duration time.Duration
	// ClientIP is the address the request came from (zero if unknown).
	ClientIP netip.Addr
}

// Outcomes of a sign-in.
const (
	OutcomeOK = "ok"
	// OutcomeNotLinked: the identity is not linked to an account; the
	// mapping recorded a pending request for an administrator.
	OutcomeNotLinked = "not_linked"
	// OutcomeDisabled: the identity or its account is disabled.
	OutcomeDisabled = "disabled"
	// OutcomeCorpNotAllowed: the corp is not configured, or the client does
	// not admit it.
	OutcomeCorpNotAllowed = "corp_not_allowed"
	// OutcomeNotMember: DingTalk says the person is not (or no longer) an
	// employee of the corp, or the login was for another corp.
	OutcomeNotMember = "not_member"
	// OutcomeStateInvalid: the state (or the workbench's CSRF token) is
	// missing, unknown, used, expired or from another browser, or the
	// authorization request is no longer pending: replays land here.
	OutcomeStateInvalid = "state_invalid"
	// OutcomeCancelled: the person declined on DingTalk's page.
	OutcomeCancelled = "cancelled"
	// OutcomeCodeInvalid: DingTalk's code (web, SNS or JSAPI) was missing,
	// or DingTalk rejected it as invalid, expired or used.
	OutcomeCodeInvalid = "code_invalid"
	// OutcomeDingTalkError: DingTalk failed otherwise (throttling, timeout,
	// 5xx, a missing permission, rejected app credentials).
	OutcomeDingTalkError = "dingtalk_error"
	// OutcomeUnavailable: dingbridge's own store failed.
	OutcomeUnavailable = "unavailable"
)

// modeSSO is a sign-in that an existing session satisfied.
const modeSSO = "sso"

// TokenRequest is one request to the token endpoint, as it ended.
type TokenRequest struct {
	// GrantType is "authorization_code", "refresh_token", or "other" for
	// anything else (the grants dingbridge does not offer, or none).
	GrantType string
	// ClientID is a configured client's id, or "" when the request named
	// none that is configured (so that it is safe as a metric label).
	ClientID string
	// Error is "" when tokens were issued, else the OAuth error code of the
	// answer ("invalid_grant", "invalid_client", …; "server_error" when the
	// answer had none).
	Error string
}

// signInTrace follows one sign-in to its end; the handler sets outcome and
// corpID as it learns them, and a deferred end reports it.
type signInTrace struct {
	mode, corpID, outcome string
	remoteAddr            string
	start                 time.Time
}

// traceSignIn starts following a sign-in in mode. Until told otherwise the
// outcome is OutcomeUnavailable: the branches that fail because a store
// failed need not say so.
func (p *Provider) traceSignIn(r *http.Request, mode string) signInTrace {
	return signInTrace{mode: mode, outcome: OutcomeUnavailable, remoteAddr: r.RemoteAddr, start: time.Now()}
}

// endSignIn reports t to the observer.
func (p *Provider) endSignIn(ctx context.Context, t *signInTrace) {
	if p.observer == nil {
		return
	}
	p.observer.SignIn(ctx, SignIn{Mode: t.mode, Outcome: t.outcome, CorpID: t.corpID, Duration: time.Since(t.start),
		ClientIP: remoteIP(t.remoteAddr)})
}

// remoteIP is the IP address of a request's RemoteAddr, or zero.
func remoteIP(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// observeTokens reports every answer of the token endpoint, including the
// ones the library gives before our overrides in server.go run (a missing
// grant_type or code, a grant we do not offer).
func (p *Provider) observeTokens(next http.Handler) http.Handler {
	if p.observer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The form is parsed here, where this request value can keep it;
		// the library's ParseForm on its copies is then a no-op.
		_ = r.ParseForm()
		rec := &tokenRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		t := TokenRequest{GrantType: "other", ClientID: p.requestClientID(r)}
		switch g := r.PostForm.Get("grant_type"); g {
		case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken):
			t.GrantType = g
		}
		if rec.status >= 400 {
			t.Error = rec.errorCode()
		}
		p.observer.TokenRequest(r.Context(), t)
	})
}

// requestClientID returns the configured client a token request names (in
// Basic authentication or the form), or "".
func (p *Provider) requestClientID(r *http.Request) string {
	id, _, ok := r.BasicAuth()
	if ok {
		// RFC 6749 §2.3.1: the client id is form-encoded inside Basic.
		if u, err := url.QueryUnescape(id); err == nil {
			id = u
		}
	} else {
		id = r.PostForm.Get("client_id")
	}
	if _, known := p.clients[id]; !known {
		return ""
	}
	return id
}

// maxErrorBody bounds what tokenRecorder keeps of an error answer: the
// error code comes first in every answer we and the library write.
const maxErrorBody = 1 << 10

// tokenRecorder remembers a token answer's status and, for errors, the
// start of its body.
type tokenRecorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (t *tokenRecorder) WriteHeader(code int) {
	if t.status == 0 {
		t.status = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *tokenRecorder) Write(b []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	if t.status >= 400 && len(t.body) < maxErrorBody {
		t.body = append(t.body, b[:min(len(b), maxErrorBody-len(t.body))]...)
	}
	return t.ResponseWriter.Write(b)
}

func (t *tokenRecorder) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// oauthErrors are the error codes an answer may report as they are; any
// other is reported as server_error, so the set stays small.
var oauthErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "server_error": true, "temporarily_unavailable": true,
	"access_denied": true, "invalid_target": true,
}

// errorCode reads the OAuth error code of the recorded answer.
func (t *tokenRecorder) errorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(t.body, &e) != nil || !oauthErrors[e.Error] {
		return "server_error"
	}
	return e.Error
}
