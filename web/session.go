package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// Cookie names. The session cookie gets the __Host- prefix when Secure
// (https): no subdomain can set or read it. Plain-http loopback (the demo)
// cannot use the prefix.
const (
	sessionCookieSecure = "__Host-dingbridge-admin"
	sessionCookiePlain  = "dingbridge-admin"
	flowCookieSecure    = "__Host-dingbridge-admin-flow"
	flowCookiePlain     = "dingbridge-admin-flow"
	flowLifetime        = 10 * time.Minute
)

// session is what the session cookie holds: a reference to a server-side
// SessionRecord, and the session's CSRF token. A new one, with a new id and
// CSRF token, is made on every sign-in (ADM-04). Whether it may be used is
// decided by the record, which every replica sees: the cookie carries no
// time, so it never needs rewriting.
type session struct {
	ID   string `json:"i"` // only its SHA-256 is stored
	CSRF string `json:"c"`
}

// flow is a sign-in in progress, sealed in the flow cookie.
type flow struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Expires  time.Time `json:"e"`
}

// cookieCodec seals and opens the console's cookies (gorilla/securecookie:
// HMAC-SHA256 then AES).
type cookieCodec struct {
	sc                  *securecookie.SecureCookie
	secure              bool
	sessionName, flowNm string
}

func newCookieCodec(hashKey, blockKey []byte, secure bool) *cookieCodec {
	sc := securecookie.New(hashKey, blockKey)
	sc.SetSerializer(securecookie.JSONEncoder{})
	sc.MaxAge(0) // lifetimes are checked against the injected clock, in the values
	c := &cookieCodec{sc: sc, secure: secure, sessionName: sessionCookiePlain, flowNm: flowCookiePlain}
	if secure {
		c.sessionName, c.flowNm = sessionCookieSecure, flowCookieSecure
	}
	return c
}

func (c *cookieCodec) write(w http.ResponseWriter, name string, v any, sameSite http.SameSite) error {
	enc, err := c.sc.Encode(name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: enc, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: sameSite,
	})
	return nil
}

func (c *cookieCodec) read(r *http.Request, name string, v any) bool {
	ck, err := r.Cookie(name)
	if err != nil {
		return false
	}
	return c.sc.Decode(name, ck.Value, v) == nil
}

func (c *cookieCodec) clear(w http.ResponseWriter, name string, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.secure, SameSite: sameSite,
	})
}

// writeSession writes the session cookie: SameSite=Strict, so no other
// site can make a browser send it.
func (c *cookieCodec) writeSession(w http.ResponseWriter, s session) error {
	return c.write(w, c.sessionName, s, http.SameSiteStrictMode)
}

// writeFlow writes the flow cookie. It must be Lax: the browser comes back
// to the callback through DingTalk, another site.
func (c *cookieCodec) writeFlow(w http.ResponseWriter, f flow) error {
	return c.write(w, c.flowNm, f, http.SameSiteLaxMode)
}

// touchEvery bounds how often a session's LastSeen is written: once a
// minute is precise enough for an idle timeout of minutes and spares the
// store a write per page view.
const touchEvery = time.Minute

// startSession creates a session for accountID, server-side first, and
// cleans up sessions nobody can use any more. Clean-up rides on sign-ins
// because only sign-ins add rows: the store stays as small as the number of
// recent sign-ins without a background job.
func (s *Server) startSession(ctx context.Context, accountID string) (session, error) {
	now := s.now()
	sess := session{ID: randomToken(), CSRF: randomToken()}
	rec := SessionRecord{
		IDHash: hashSessionID(sess.ID), AccountID: accountID,
		Created: now, LastSeen: now, Expires: now.Add(s.cfg.AbsoluteTimeout),
	}
	if err := s.sessions.Create(ctx, rec); err != nil {
		return session{}, err
	}
	if n, err := s.sessions.DeleteExpired(ctx, now, now.Add(-s.cfg.IdleTimeout)); err != nil {
		s.log.WarnContext(ctx, "admin: clean up sessions", "err", err)
	} else if n > 0 {
		s.log.DebugContext(ctx, "admin: cleaned up sessions", "removed", n)
	}
	return sess, nil
}

// sessionFrom returns the request's session and its record when the session
// may be used at now: the cookie opens, the store has the session, and it is
// not signed out, idle too long or past the absolute timeout. ok is false
// otherwise; err is set only when the store could not answer.
func (s *Server) sessionFrom(r *http.Request, now time.Time) (sess session, rec SessionRecord, ok bool, err error) {
	if !s.cookies.read(r, s.cookies.sessionName, &sess) || sess.ID == "" || sess.CSRF == "" {
		return session{}, SessionRecord{}, false, nil
	}
	rec, err = s.sessions.Session(r.Context(), hashSessionID(sess.ID))
	if errors.Is(err, ErrNoSession) {
		return session{}, SessionRecord{}, false, nil
	}
	if err != nil {
		return session{}, SessionRecord{}, false, err
	}
	usable := rec.Revoked.IsZero() && now.Before(rec.Expires) && now.Sub(rec.LastSeen) <= s.cfg.IdleTimeout
	return sess, rec, usable, nil
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
