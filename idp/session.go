package idp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// cookies reads and writes the provider's one browser cookie. It holds only
// references, signed and encrypted (gorilla/securecookie): a random browser
// id that binds authorization requests to the browser that started them
// (BR-02), and the id of the browser's SSO session, whose content lives in
// the Store so that any replica can read it.
type cookies struct {
	store *sessions.CookieStore
	name  string
}

// Keys of the cookie's values.
const (
	cookieBrowserID  = "b"
	cookieSessionID  = "s"
	cookieLogoutCSRF = "x"
)

func newCookies(hashKey, blockKey []byte, secure bool, lifetime time.Duration) (*cookies, error) {
	var errs []error
	if n := len(hashKey); n != 32 && n != 64 {
		errs = append(errs, fmt.Errorf("cookie hash key must be 32 or 64 bytes, got %d", n))
	}
	if n := len(blockKey); n != 32 {
		errs = append(errs, fmt.Errorf("cookie block key must be 32 bytes, got %d", n))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cs := sessions.NewCookieStore(hashKey, blockKey)
	for _, codec := range cs.Codecs {
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(cookieSerializer{})
		}
	}
	cs.MaxAge(int(lifetime.Seconds()))
	cs.Options.HttpOnly = true
	cs.Options.Secure = secure
	cs.Options.SameSite = http.SameSiteLaxMode // sent on the top-level redirects back from DingTalk and clients
	cs.Options.Path = "/"
	name := "dingbridge"
	if secure {
		// __Host-: only this host, path /, Secure; no subdomain can set it.
		name = "__Host-dingbridge"
	}
	return &cookies{store: cs, name: name}, nil
}

// session returns the request's cookie, decoded; a missing, expired or
// forged one yields an empty session. Decoding (HMAC, AES and JSON) costs
// more than most steps of a request, and
// one request reads the cookie several times, so a request served through
// memoize decodes it once. The result is the request's: callers must not
// change it (set copies it).
func (c *cookies) session(r *http.Request) *sessions.Session {
	if m, ok := r.Context().Value(cookieMemoKey{}).(*cookieMemo); ok {
		m.once.Do(func() { m.s = c.decode(r) })
		return m.s
	}
	return c.decode(r)
}

func (c *cookies) decode(r *http.Request) *sessions.Session {
	s, _ := c.store.New(r, c.name) // on a decode error s is a fresh, empty session
	return s
}

type cookieMemoKey struct{}

// cookieMemo holds one request's decoded cookie.
type cookieMemo struct {
	once sync.Once
	s    *sessions.Session
}

// memoize gives each request on next its own cookieMemo.
func (c *cookies) memoize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), cookieMemoKey{}, &cookieMemo{})))
	})
}

func (c *cookies) value(r *http.Request, key string) string {
	v, _ := c.session(r).Values[key].(string)
	return v
}

// set stores key/value pairs in the cookie, keeping its other values; an
// empty value deletes its key. One call per response: each call writes the
// whole cookie from the request's copy.
func (c *cookies) set(w http.ResponseWriter, r *http.Request, kv ...string) {
	// A copy: later reads in this request still see the cookie it came with.
	s := *c.session(r)
	s.Values = maps.Clone(s.Values)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(s.Values, kv[i])
		} else {
			s.Values[kv[i]] = kv[i+1]
		}
	}
	_ = c.store.Save(r, w, &s) // encoding only fails for unencodable values
}

// browserID returns this browser's id, creating it on first use.
func (c *cookies) browserID(w http.ResponseWriter, r *http.Request) string {
	if id := c.value(r, cookieBrowserID); id != "" {
		return id
	}
	id := randomSecret()
	c.set(w, r, cookieBrowserID, id)
	return id
}

// sameBrowser reports whether this browser started the request whose
// browser binding is hash.
func (c *cookies) sameBrowser(r *http.Request, hash string) bool {
	id := c.value(r, cookieBrowserID)
	return id != "" && subtle.ConstantTimeCompare([]byte(hashToken(id)), []byte(hash)) == 1
}

// cookieSerializer writes the cookie's values, which are all strings, as a
// JSON object, and reads that or gorilla/securecookie's default gob. Gob
// builds a decoder for the map type on every decode, which made it the
// costliest part of reading the cookie; JSON of a few strings is a fraction
// of that. Reading gob keeps the cookies issued before the switch working
// until they are next written (as JSON) or expire, at most the session
// lifetime later; after that the gob branch is dead and can go. A version
// without this serializer reads a JSON cookie as undecodable, that is as no
// cookie: its holder signs in again.
//
// The bytes it reads were authenticated (HMAC) and decrypted first, so they
// are always what one of the two serializers wrote: a JSON object starts
// with '{', and a gob stream that happened to would fail as JSON and be
// read as gob.
type cookieSerializer struct{}

var _ securecookie.Serializer = cookieSerializer{}

// errCookieValue refuses to write a cookie value that is not a string.
var errCookieValue = errors.New("cookie values must be strings")

// Serialize implements securecookie.Serializer for the session's values
// (map[any]any with string keys and values).
func (cookieSerializer) Serialize(src any) ([]byte, error) {
	values, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("serialize cookie: %T: %w", src, errCookieValue)
	}
	m := make(map[string]string, len(values))
	for k, v := range values {
		ks, kok := k.(string)
		vs, vok := v.(string)
		if !kok || !vok {
			return nil, fmt.Errorf("serialize cookie: %w", errCookieValue)
		}
		m[ks] = vs
	}
	return json.Marshal(m)
}

// Deserialize implements securecookie.Serializer into a *map[any]any.
func (cookieSerializer) Deserialize(src []byte, dst any) error {
	values, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("deserialize cookie into %T: %w", dst, errCookieValue)
	}
	if len(src) > 0 && src[0] == '{' {
		var m map[string]string
		if err := json.Unmarshal(src, &m); err == nil {
			if *values == nil {
				*values = make(map[any]any, len(m))
			}
			for k, v := range m {
				(*values)[k] = v
			}
			return nil
		}
	}
	return securecookie.GobEncoder{}.Deserialize(src, dst)
}
