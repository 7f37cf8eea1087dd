package web

import (
	"crypto/rand"
	"encoding/base64"
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

// session is a signed-in administrator, sealed in the session cookie. A new
// one, with a new id and CSRF token, is made on every sign-in.
type session struct {
	ID        string    `json:"i"` // revoked server-side on sign-out
	AccountID string    `json:"a"`
	AuthTime  time.Time `json:"t"`
	LastSeen  time.Time `json:"l"`
	CSRF      string    `json:"c"`
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

// validSession reports whether sess may be used at now: not idle too long,
// not older than the absolute timeout, not signed out.
func (s *Server) validSession(sess session, now time.Time) bool {
	if sess.ID == "" || sess.AccountID == "" || sess.CSRF == "" {
		return false
	}
	if now.Sub(sess.LastSeen) > s.cfg.IdleTimeout || now.Sub(sess.AuthTime) > s.cfg.AbsoluteTimeout {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, revoked := s.revoked[sess.ID]
	return !revoked
}

// revoke remembers a signed-out session until it would have expired anyway.
func (s *Server) revoke(sess session) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, until := range s.revoked {
		if now.After(until) {
			delete(s.revoked, id)
		}
	}
	s.revoked[sess.ID] = sess.AuthTime.Add(s.cfg.AbsoluteTimeout)
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
