package idp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

var (
	testCookieHashKey  = bytes.Repeat([]byte{1}, 32)
	testCookieBlockKey = bytes.Repeat([]byte{2}, 32)
)

func newTestCookies(t testing.TB) *cookies {
	t.Helper()
	c, err := newCookies(testCookieHashKey, testCookieBlockKey, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// gobCookie is the cookie a version before the JSON serializer wrote for
// values: gorilla's default (gob) codec, with the same keys.
func gobCookie(t testing.TB, c *cookies, values map[any]any) *http.Cookie {
	t.Helper()
	old := sessions.NewCookieStore(testCookieHashKey, testCookieBlockKey)
	old.MaxAge(int(time.Hour.Seconds()))
	s := sessions.NewSession(old, c.name)
	s.Values = values
	rec := httptest.NewRecorder()
	if err := old.Save(httptest.NewRequest(http.MethodGet, "/", nil), rec, s); err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies()[0]
}

// written returns the cookie c.set wrote for kv on a request carrying in.
func written(t testing.TB, c *cookies, in *http.Cookie, kv ...string) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if in != nil {
		r.AddCookie(in)
	}
	rec := httptest.NewRecorder()
	c.set(rec, r, kv...)
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("set wrote %d cookies, want 1", len(cs))
	}
	return cs[0]
}

func requestWith(cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

func TestCookieValues(t *testing.T) {
	c := newTestCookies(t)
	jsonCookie := written(t, c, nil, cookieBrowserID, "browser-1", cookieSessionID, "sess-1")
	gob := gobCookie(t, c, map[any]any{cookieBrowserID: "browser-1", cookieSessionID: "sess-1"})
	tampered := *jsonCookie
	tampered.Value = tampered.Value[:len(tampered.Value)-2] + "AA"

	tests := []struct {
		name    string
		cookie  *http.Cookie
		browser string
		session string
	}{
		{name: "written now (JSON)", cookie: jsonCookie, browser: "browser-1", session: "sess-1"},
		{name: "written before the upgrade (gob)", cookie: gob, browser: "browser-1", session: "sess-1"},
		{name: "none", cookie: nil},
		{name: "tampered", cookie: &tampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := requestWith(tt.cookie)
			if got := c.value(r, cookieBrowserID); got != tt.browser {
				t.Errorf("browser id = %q, want %q", got, tt.browser)
			}
			if got := c.value(r, cookieSessionID); got != tt.session {
				t.Errorf("session id = %q, want %q", got, tt.session)
			}
		})
	}

	t.Run("a gob cookie is rewritten as JSON, keeping its values", func(t *testing.T) {
		out := written(t, c, gob, cookieLogoutCSRF, "csrf-1", cookieSessionID, "")
		r := requestWith(out)
		for key, want := range map[string]string{cookieBrowserID: "browser-1", cookieSessionID: "", cookieLogoutCSRF: "csrf-1"} {
			if got := c.value(r, key); got != want {
				t.Errorf("value %q = %q, want %q", key, got, want)
			}
		}
		// The version before the upgrade cannot read it: to it, it is no
		// cookie, and the browser signs in again.
		old := sessions.NewCookieStore(testCookieHashKey, testCookieBlockKey)
		s, err := old.New(requestWith(out), c.name)
		if err == nil || len(s.Values) != 0 {
			t.Errorf("gob reader: values %v, err %v; want none and an error", s.Values, err)
		}
	})
}

func TestCookieSerializer(t *testing.T) {
	var sz cookieSerializer
	b, err := sz.Serialize(map[any]any{"b": "x", "s": "y"})
	if err != nil {
		t.Fatalf("Serialize: %v", err)
	}
	if want := `{"b":"x","s":"y"}`; string(b) != want {
		t.Errorf("Serialize = %s, want %s", b, want)
	}
	for _, bad := range []any{map[any]any{"b": 1}, map[any]any{1: "x"}, map[string]string{"b": "x"}} {
		if _, err := sz.Serialize(bad); err == nil {
			t.Errorf("Serialize(%#v) = nil error, want one", bad)
		}
	}
	var got map[any]any
	if err := sz.Deserialize([]byte(`{"b":"x"}`), &got); err != nil || got["b"] != "x" {
		t.Errorf("Deserialize = %v, %v; want b=x", got, err)
	}
	for _, bad := range [][]byte{[]byte(`{"b":1}`), []byte(`{`), {0x7f, 0x01}, nil} {
		var m map[any]any
		if err := sz.Deserialize(bad, &m); err == nil {
			t.Errorf("Deserialize(%q) = %v, nil error; want an error", bad, m)
		}
	}
}

// BenchmarkCookieDecode compares reading a JSON cookie with reading a gob
// one (what every request did before the JSON serializer).
func BenchmarkCookieDecode(b *testing.B) {
	c := newTestCookies(b)
	for _, bc := range []struct {
		name   string
		cookie *http.Cookie
	}{
		{"json", written(b, c, nil, cookieBrowserID, randomSecret(), cookieSessionID, randomID())},
		{"gob", gobCookie(b, c, map[any]any{cookieBrowserID: randomSecret(), cookieSessionID: randomID()})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := requestWith(bc.cookie)
			b.ReportAllocs()
			for b.Loop() {
				if c.decode(r).IsNew {
					b.Fatal("cookie not decoded")
				}
			}
		})
	}
}
