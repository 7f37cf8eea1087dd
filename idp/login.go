package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Login is who signed in, as an Authenticator reports it to Finish.
type Login struct {
	Subject  string   // the account id (OIDC sub)
	AMR      []string // how: e.g. ["dingtalk", "qr"]
	DingTalk DingTalkIDs
}

// login handles GET /login?authRequestID=…: the page every authorization
// request is sent to. A live SSO session that satisfies the request's prompt
// and max_age finishes it at once; prompt=none without one fails with
// login_required; anything else goes to the Authenticator.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	// The request and the browser's session in one read: a session that
	// turns out unusable costs nothing more than a request without one.
	ar, s, err := p.store.AuthRequestWithSession(r.Context(), r.URL.Query().Get("authRequestID"), p.cookies.value(r, cookieSessionID))
	if p.checkPending(w, r, ar, err) != OutcomeOK {
		return
	}
	if s = p.usableSession(r, ar, s); s != nil {
		t := p.traceSignIn(r, modeSSO)
		t.corpID = s.DingTalk.CorpID
		t.outcome = p.complete(w, r, ar, Completion{
			Subject: s.Subject, AuthTime: s.AuthTime, AMR: s.AMR, SessionID: s.ID, DingTalk: s.DingTalk,
		})
		p.endSignIn(r.Context(), &t)
		return
	}
	if slices.Contains(ar.Prompt, oidc.PromptNone) {
		p.redirectError(w, r, errorTarget{ar.RedirectURI, ar.State},
			oidc.ErrLoginRequired().WithDescription("the user is not signed in"))
		return
	}
	p.auth.Authenticate(w, r, ar)
}

// pendingRequest loads an authorization request that this browser started
// and that can still be completed, or shows the page that says why not.
func (p *Provider) pendingRequest(w http.ResponseWriter, r *http.Request, id string) (*AuthRequest, bool) {
	ar, outcome := p.pendingRequestOutcome(w, r, id)
	return ar, outcome == OutcomeOK
}

// pendingRequestOutcome is pendingRequest, saying why it failed as a
// sign-in outcome.
func (p *Provider) pendingRequestOutcome(w http.ResponseWriter, r *http.Request, id string) (*AuthRequest, string) {
	ar, err := p.store.AuthRequest(r.Context(), id)
	if outcome := p.checkPending(w, r, ar, err); outcome != OutcomeOK {
		return nil, outcome
	}
	return ar, OutcomeOK
}

// checkPending checks an authorization request just read (with err, the
// read's error) as pendingRequestOutcome does, shows the page that says why
// it cannot be completed, and returns the sign-in's outcome.
func (p *Provider) checkPending(w http.ResponseWriter, r *http.Request, ar *AuthRequest, err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		return OutcomeStateInvalid
	case err != nil:
		p.log.ErrorContext(r.Context(), "load auth request", "err", err)
		p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return OutcomeUnavailable
	case ar.Done || !p.now().Before(ar.ExpiresAt):
		p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		return OutcomeStateInvalid
	case !p.cookies.sameBrowser(r, ar.BrowserID):
		p.pages.error(w, r, http.StatusForbidden, msgOtherBrowser)
		return OutcomeStateInvalid
	}
	return OutcomeOK
}

// usableSession returns s, the SSO session the browser's cookie names (nil
// if none), if it satisfies ar: alive, not ruled out by prompt=login or
// max_age (OIDC Core 3.1.2.1), of the subject an id_token_hint names, and of
// an account that may sign in.
func (p *Provider) usableSession(r *http.Request, ar *AuthRequest, s *Session) *Session {
	now := p.now()
	switch {
	case s == nil, s.EndedAt != nil, !now.Before(s.ExpiresAt):
		return nil
	case slices.Contains(ar.Prompt, oidc.PromptLogin):
		return nil
	case ar.MaxAge != nil && now.Sub(s.AuthTime) > *ar.MaxAge:
		return nil
	case ar.MaxAge != nil && *ar.MaxAge == 0:
		return nil
	case ar.HintSubject != "" && ar.HintSubject != s.Subject:
		return nil
	case !p.clients[ar.ClientID].allowsCorp(s.DingTalk.CorpID):
		// Signed in through a corp this client does not admit: a fresh
		// sign-in may pick another corp.
		return nil
	}
	if p.storage.accountActive(r.Context(), s.Subject) != nil {
		return nil
	}
	return s
}

// Finish is called by the Authenticator when a person has signed in for the
// authorization request authRequestID. It starts a new SSO session (a new
// id, so that a session id planted in the browser beforehand is worthless)
// and sends the browser back to the client with a code.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, authRequestID string, l Login) {
	ar, outcome := p.pendingRequestOutcome(w, r, authRequestID)
	if outcome != OutcomeOK {
		return
	}
	p.finish(w, r, ar, l, false)
}

// finish is Finish for ar, which the caller loaded and checked while
// serving r: reading it again would only cost a round trip, since the
// completing update checks again that it is pending. accountChecked says
// that the caller has just read l's account and found it active (the
// DingTalk callback: the mapping's resolver refuses a disabled account or
// identity in the transaction that records the sign-in), so it is not read
// a second time. It returns the sign-in's outcome.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, ar *AuthRequest, l Login, accountChecked bool) string {
	ctx := r.Context()
	if !accountChecked {
		if err := p.storage.accountActive(ctx, l.Subject); err != nil {
			p.log.InfoContext(ctx, "sign-in refused: account not active", "account_id", l.Subject, "err", err)
			p.pages.error(w, r, http.StatusForbidden, msgAccountDisabled)
			return OutcomeDisabled
		}
	}
	if c := p.clients[ar.ClientID]; !c.allowsCorp(l.DingTalk.CorpID) {
		p.log.InfoContext(ctx, "sign-in refused: corp not allowed for client", "client_id", c.ID, "corp_id", l.DingTalk.CorpID)
		p.pages.error(w, r, http.StatusForbidden, msgCorpNotAllowed)
		return OutcomeCorpNotAllowed
	}
	// The new session and the completed request are one write: a request
	// that cannot be completed (done or expired meanwhile) starts no
	// session and leaves the browser's current one alone.
	now := p.now()
	sess := p.newSession(l, now)
	code := randomSecret()
	err := p.store.StartSessionWithCode(ctx, sess, ar.ID, hashToken(code), now.Add(codeLifetime), now)
	if outcome := p.completeFailed(w, r, err); outcome != OutcomeOK {
		return outcome
	}
	p.endBrowserSession(ctx, r)
	p.cookies.set(w, r, cookieSessionID, sess.ID)
	return p.sendCode(w, r, ar, sess.Subject, code)
}

// newSession is a new SSO session for l, starting at now, under a new id (so
// that a session id planted in the browser beforehand is worthless).
func (p *Provider) newSession(l Login, now time.Time) *Session {
	return &Session{
		ID:        randomID(),
		Subject:   l.Subject,
		AuthTime:  now,
		AMR:       l.AMR,
		DingTalk:  l.DingTalk,
		CreatedAt: now,
		ExpiresAt: now.Add(p.sessLife),
	}
}

// startSession starts a new SSO session for l (see newSession), ends the
// one the browser had, and points the cookie at the new one; extra cookie
// values (key, value pairs) are written with it. The caller has checked
// that the account may sign in. On failure it shows the error page and
// returns false.
func (p *Provider) startSession(w http.ResponseWriter, r *http.Request, l Login, extra ...string) (*Session, bool) {
	ctx := r.Context()
	s := p.newSession(l, p.now())
	if err := p.store.CreateSession(ctx, s); err != nil {
		p.log.ErrorContext(ctx, "create session", "err", err)
		p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return nil, false
	}
	p.endBrowserSession(ctx, r)
	p.cookies.set(w, r, append([]string{cookieSessionID, s.ID}, extra...)...)
	return s, true
}

// endBrowserSession ends the SSO session the browser's cookie names, if any.
func (p *Provider) endBrowserSession(ctx context.Context, r *http.Request) {
	if old := p.cookies.value(r, cookieSessionID); old != "" {
		if err := p.store.EndSession(ctx, old, p.now()); err != nil && !errors.Is(err, ErrNotFound) {
			p.log.WarnContext(ctx, "end previous session", "err", err)
		}
	}
}

// complete records who authenticated for ar and returns a code to the
// client. The code is random; only its hash is stored. It returns the
// sign-in's outcome.
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, ar *AuthRequest, c Completion) string {
	ctx := r.Context()
	now := p.now()
	code := randomSecret()
	var err error
	if cs, ok := p.store.(codeCompleter); ok {
		err = cs.CompleteAuthRequestWithCode(ctx, ar.ID, c, hashToken(code), now.Add(codeLifetime), now)
	} else {
		err = p.store.CompleteAuthRequest(ctx, ar.ID, c, now)
		if err == nil {
			if serr := p.store.SaveCode(ctx, ar.ID, hashToken(code), now.Add(codeLifetime)); serr != nil {
				// The request is done: a failure here is ours, not a reason to start again.
				err = fmt.Errorf("save code: %v", serr)
			}
		}
	}
	if outcome := p.completeFailed(w, r, err); outcome != OutcomeOK {
		return outcome
	}
	return p.sendCode(w, r, ar, c.Subject, code)
}

// completeFailed shows the page for a completion of a request that failed
// with err and returns the sign-in's outcome; OutcomeOK if err is nil.
func (p *Provider) completeFailed(w http.ResponseWriter, r *http.Request, err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound):
		// Done or expired meanwhile (another tab, a replica): start again.
		p.pages.error(w, r, http.StatusBadRequest, msgStartAgain)
		return OutcomeStateInvalid
	default:
		p.log.ErrorContext(r.Context(), "complete auth request", "err", err)
		p.pages.error(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return OutcomeUnavailable
	}
}

// sendCode sends the browser back to ar's client with code, for subject.
func (p *Provider) sendCode(w http.ResponseWriter, r *http.Request, ar *AuthRequest, subject, code string) string {
	p.log.InfoContext(r.Context(), "sign-in complete", "client_id", ar.ClientID, "account_id", subject, "auth_request_id", ar.ID)
	p.redirectToClient(w, r, ar.RedirectURI, ar.State, url.Values{"code": {code}})
	return OutcomeOK
}

// codeCompleter is a Store that completes a request and saves its code in
// one step (PostgresStore: one statement instead of two).
type codeCompleter interface {
	CompleteAuthRequestWithCode(ctx context.Context, id string, c Completion, codeHash string, codeExpiresAt, now time.Time) error
}

var _ codeCompleter = (*PostgresStore)(nil)
