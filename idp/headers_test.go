package idp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBAD78_HSTSOnlyOverHTTPS: every response of an https issuer carries
// Strict-Transport-Security (SEC-07, BAD-78), without preload; a plain-http
// (loopback) issuer sends none.
func TestBAD78_HSTSOnlyOverHTTPS(t *testing.T) {
	e := newEnv(t) // a plain-http issuer on loopback
	https, err := New(Config{
		Issuer: "https://sso.example.com", Clients: testClients(), Store: e.store, Keys: e.keys,
		Accounts: e.accounts, CryptoKey: testCrypto, CookieHashKey: testCookieHash[:],
		CookieBlockKey: testCookieBlock[:], Now: e.clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/authorize?client_id=nope", "/login", "/end_session", "/logged_out", "/nowhere",
		"/.well-known/openid-configuration", "/static/dingbridge.css"}
	for _, tt := range []struct {
		name string
		h    http.Handler
		want string
	}{
		{"https issuer", https.Handler(), "max-age=31536000"},
		{"http issuer", e.p.Handler(), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range paths {
				rec := httptest.NewRecorder()
				tt.h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
				if got := rec.Header().Get("Strict-Transport-Security"); got != tt.want {
					t.Errorf("%s (%d): Strict-Transport-Security = %q, want %q", path, rec.Code, got, tt.want)
				}
			}
		})
	}
}
