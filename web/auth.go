package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dingbridge/dingbridge/mapping"
)

// discovery is what the console learnt from the issuer.
type discovery struct {
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
}

// scopes the console asks for: it needs only the sub; the rest is read
// from the mapping.
var scopes = []string{oidc.ScopeOpenID, "profile", "groups"}

func (s *Server) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.cfg.HTTPClient) // x/oauth2 reads the same key
}

// discover fetches the issuer's discovery document once it is reachable; a
// failure is retried on the next request.
func (s *Server) discover(ctx context.Context) (*discovery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disc != nil {
		return s.disc, nil
	}
	p, err := oidc.NewProvider(s.clientContext(ctx), s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", s.cfg.Issuer, err)
	}
	s.disc = &discovery{
		verifier: p.Verifier(&oidc.Config{ClientID: s.cfg.ClientID, Now: s.now}),
		oauth: &oauth2.Config{
			ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: s.cfg.BaseURL + "/callback", Scopes: scopes,
		},
	}
	return s.disc, nil
}

// login starts the authorization code flow with PKCE (S256), state and nonce.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if wait := s.starts.take(limitKey(r)); wait > 0 {
		s.log.WarnContext(r.Context(), "admin: too many sign-ins started", "retry_in", wait.Round(time.Second).String())
		s.tooMany(w, r, wait)
		return
	}
	d, err := s.discover(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "admin: issuer unreachable", "err", err)
		s.renderMessage(w, r, http.StatusBadGateway, "err_unavailable")
		return
	}
	f := flow{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Expires: s.now().Add(flowLifetime)}
	if err := s.cookies.writeFlow(w, f); err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, d.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// callback finishes the flow, checks that the account is an administrator
// and starts a new session.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if wait := s.completions.take(limitKey(r)); wait > 0 {
		s.log.WarnContext(ctx, "admin: too many sign-ins completed", "retry_in", wait.Round(time.Second).String())
		s.tooMany(w, r, wait)
		return
	}
	q := r.URL.Query()
	var f flow
	ok := s.cookies.read(r, s.cookies.flowNm, &f) && s.now().Before(f.Expires)
	s.cookies.clear(w, s.cookies.flowNm, http.SameSiteLaxMode) // single use
	if !ok || q.Get("state") == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		s.log.WarnContext(ctx, "admin: callback without a matching sign-in", "have_flow", ok)
		s.renderMessage(w, r, http.StatusBadRequest, "err_start_again")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.InfoContext(ctx, "admin: issuer returned an error", "error", e)
		s.renderMessage(w, r, http.StatusBadRequest, "err_start_again")
		return
	}
	d, err := s.discover(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "admin: issuer unreachable", "err", err)
		s.renderMessage(w, r, http.StatusBadGateway, "err_unavailable")
		return
	}
	cctx := s.clientContext(ctx)
	tok, err := d.oauth.Exchange(cctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		s.log.WarnContext(ctx, "admin: code exchange failed", "err", err)
		s.renderMessage(w, r, http.StatusBadGateway, "err_start_again")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := d.verifier.Verify(cctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		err = errors.New("nonce does not match")
	}
	if err != nil {
		s.log.WarnContext(ctx, "admin: ID token rejected", "err", err)
		s.renderMessage(w, r, http.StatusBadGateway, "err_start_again")
		return
	}
	s.finishSignIn(w, r, idt.Subject)
}

// finishSignIn lets in the account that the ID token named, if it is an
// administrator, with a new session.
func (s *Server) finishSignIn(w http.ResponseWriter, r *http.Request, sub string) {
	ctx := r.Context()
	acct, err := s.cfg.Store.AccountByID(ctx, sub)
	if err != nil || !s.isAdmin(acct) {
		if err != nil && !errors.Is(err, mapping.ErrNotFound) {
			s.internalError(w, r, err)
			return
		}
		s.denySignIn(w, r, sub)
		return
	}
	// A session this browser still presents ends here: the new one has a
	// new id (ADM-04). Browsers send the SameSite=Strict cookie here only
	// when the whole way back was same-site (single sign-on, no DingTalk
	// page); otherwise the old session lives out its own timeouts.
	var old session
	if s.cookies.read(r, s.cookies.sessionName, &old) && old.ID != "" {
		if err := s.sessions.Revoke(ctx, hashSessionID(old.ID), s.now()); err != nil {
			s.internalError(w, r, err)
			return
		}
	}
	sess, err := s.startSession(ctx, acct.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.cookies.writeSession(w, sess); err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "admin: signed in", "account_id", acct.ID)
	if err := s.cfg.Store.RecordEvent(ctx, s.meta(r, acct.ID), mapping.Event{Action: "admin.signin", TargetType: "account", TargetID: acct.ID}); err != nil {
		s.log.WarnContext(ctx, "admin: audit sign-in", "err", err)
	}
	// The browser arrived through a cross-site redirect chain, in which it
	// does not send SameSite=Strict cookies; a page of our own that moves on
	// makes the next request same-site.
	s.renderSignedIn(w, r)
}

// denySignIn refuses a sign-in by someone who is not an administrator,
// within the denial limits (per client address and per account): past
// them, a 429 page without another audit row. Reaching a limit is audited
// once (SEC-05).
func (s *Server) denySignIn(w http.ResponseWriter, r *http.Request, sub string) {
	ctx := r.Context()
	ipKey, accountKey := "ip "+limitKey(r), "account "+sub
	if wait := max(s.denials.wait(ipKey), s.denials.wait(accountKey)); wait > 0 {
		s.log.InfoContext(ctx, "admin: denied sign-in over the limit", "sub", sub, "retry_in", wait.Round(time.Second).String())
		s.tooMany(w, r, wait)
		return
	}
	byIP, byAccount := s.denials.add(ipKey), s.denials.add(accountKey)
	if byIP || byAccount {
		s.log.WarnContext(ctx, "admin: denied sign-ins reached the limit", "sub", sub, "by_client_ip", byIP, "by_account", byAccount)
		if err := s.cfg.Store.RecordEvent(ctx, s.meta(r, sub), mapping.Event{
			Action: "admin.rate_limited", TargetType: "account", TargetID: sub,
		}); err != nil {
			s.log.WarnContext(ctx, "admin: audit rate limit", "err", err)
		}
	}
	s.deny(w, r, sub)
}

// tooMany is the 429 page: it says, and Retry-After tells, when to try
// again.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	p := s.newPage(r, "", "err_rate_limited")
	p.Message = fmt.Sprintf(p.T["err_rate_limited_body"], (secs+59)/60)
	s.render(w, r, http.StatusTooManyRequests, "message", p)
}

// deny refuses a person who is not an administrator: a 403 page and an
// audit row (ADM-01, BAD-75).
func (s *Server) deny(w http.ResponseWriter, r *http.Request, sub string) {
	if err := s.cfg.Store.RecordEvent(r.Context(), s.meta(r, sub), mapping.Event{
		Action: "admin.denied", TargetType: "account", TargetID: sub,
	}); err != nil {
		s.log.WarnContext(r.Context(), "admin: audit denial", "err", err)
	}
	s.log.WarnContext(r.Context(), "admin: not an administrator", "sub", sub)
	s.renderMessage(w, r, http.StatusForbidden, "err_not_admin")
}

// isAdmin: enabled, and in an admin group or listed by username.
func (s *Server) isAdmin(a mapping.Account) bool {
	if a.Disabled {
		return false
	}
	if slices.ContainsFunc(s.cfg.AdminUsernames, func(u string) bool { return strings.EqualFold(u, a.Username) }) {
		return true
	}
	return slices.ContainsFunc(a.Groups, func(g string) bool { return slices.Contains(s.cfg.AdminGroups, g) })
}

// logout ends the session server-side, for every replica, and then in
// the browser.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var sess session
	if s.cookies.read(r, s.cookies.sessionName, &sess) && sess.ID != "" {
		if !s.csrfOK(r, sess) {
			s.renderMessage(w, r, http.StatusForbidden, "err_csrf")
			return
		}
		h := hashSessionID(sess.ID)
		rec, err := s.sessions.Session(ctx, h)
		if err == nil {
			err = s.sessions.Revoke(ctx, h, s.now())
		}
		switch {
		case errors.Is(err, ErrNoSession): // gone already
		case err != nil:
			// Keep the cookie: with it the person can sign out again once
			// the store answers; without it they could not, while a copy
			// of the cookie would still work.
			s.log.ErrorContext(ctx, "admin: sign-out not recorded", "err", err)
			s.renderMessage(w, r, http.StatusServiceUnavailable, "err_signout_failed")
			return
		default:
			if err := s.cfg.Store.RecordEvent(ctx, s.meta(r, rec.AccountID), mapping.Event{
				Action: "admin.signout", TargetType: "account", TargetID: rec.AccountID,
			}); err != nil {
				s.log.WarnContext(ctx, "admin: audit sign-out", "err", err)
			}
		}
	}
	s.cookies.clear(w, s.cookies.sessionName, http.SameSiteStrictMode)
	s.renderMessage(w, r, http.StatusOK, "msg_signed_out")
}

type ctxKey int

const (
	adminKey ctxKey = iota
	requestIDKey
)

// withRequestID takes the request id that the outer router put in the
// response's X-Request-Id (or makes one) for audit rows and pages.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := w.Header().Get("X-Request-Id")
		if id == "" {
			id = randomToken()[:16]
			w.Header().Set("X-Request-Id", id)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// admin is the signed-in administrator of a request.
type admin struct {
	Account mapping.Account
	Session session
}

// requireAdmin lets a request through with a usable session (see
// sessionFrom) of an account that is still an administrator; state changes
// must also carry the session's CSRF token (ADM-02). An account found no
// longer an administrator loses every session, so that getting the role
// back takes a new sign-in (ADM-04). Use extends the session (idle
// timeout), never beyond the absolute timeout.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		now := s.now()
		sess, rec, ok, err := s.sessionFrom(r, now)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, s.path("/login"), http.StatusFound)
				return
			}
			s.renderMessage(w, r, http.StatusForbidden, "err_csrf")
			return
		}
		acct, err := s.cfg.Store.AccountByID(ctx, rec.AccountID)
		if err != nil && !errors.Is(err, mapping.ErrNotFound) {
			s.internalError(w, r, err)
			return
		}
		if err != nil || !s.isAdmin(acct) { // removed from the group, disabled or deleted since
			if n, err := s.sessions.RevokeAccount(ctx, rec.AccountID, now); err != nil {
				s.log.ErrorContext(ctx, "admin: revoke sessions of a former administrator", "account_id", rec.AccountID, "err", err)
			} else {
				s.log.InfoContext(ctx, "admin: sessions of a former administrator revoked", "account_id", rec.AccountID, "sessions", n)
			}
			s.cookies.clear(w, s.cookies.sessionName, http.SameSiteStrictMode)
			s.deny(w, r, rec.AccountID)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.csrfOK(r, sess) {
			s.log.WarnContext(ctx, "admin: CSRF token missing or wrong", "path", r.URL.Path)
			s.renderMessage(w, r, http.StatusForbidden, "err_csrf")
			return
		}
		if now.Sub(rec.LastSeen) >= touchEvery {
			// A failed touch costs at most an early idle timeout: serve on.
			if err := s.sessions.Touch(ctx, rec.IDHash, now); err != nil {
				s.log.WarnContext(ctx, "admin: touch session", "err", err)
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, adminKey, &admin{Account: acct, Session: sess})))
	})
}

func adminFrom(ctx context.Context) *admin {
	a, _ := ctx.Value(adminKey).(*admin)
	return a
}

// csrfOK compares the form's token with the session's in constant time.
func (s *Server) csrfOK(r *http.Request, sess session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// meta says who changes something, for the audit row (ADM-07).
func (s *Server) meta(r *http.Request, actor string) mapping.Meta {
	return mapping.Meta{Actor: actor, Source: mapping.SourceAdmin, RequestID: requestID(r.Context()), ClientIP: clientIP(r)}
}
