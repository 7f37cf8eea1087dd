package idp

import (
	"net/http"
	"net/url"
	"strings"
)

// maxBodyBytes bounds every request body: OAuth requests are small forms.
const maxBodyBytes = 64 << 10

// contentSecurityPolicy allows the provider's own stylesheet and forms that
// post to itself, and nothing else: no script at all, no framing.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// strictTransportSecurity keeps browsers on https for a year (SEC-07). No
// preload: that commits the whole domain, which only its owner can do.
const strictTransportSecurity = "max-age=31536000"

// securityHeaders sets the headers every response carries (SECURITY.md
// RFC-14, RFC-16, BAD-78): no framing, no referrer (codes and state travel
// in URLs), no MIME sniffing, and HTTPS only when the issuer is https.
// Plain http is allowed for loopback only (the demo, tests), where
// browsers ignore HSTS and it would only mislead.
func (p *Provider) securityHeaders(next http.Handler) http.Handler {
	iss, err := url.Parse(p.issuer)
	hsts := err == nil && iss.Scheme == "https"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if hsts {
			h.Set("Strict-Transport-Security", strictTransportSecurity)
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// noStore marks token-endpoint responses uncacheable (RFC 6749 §5.1) and
// adds the Basic challenge to a 401 (RFC 6749 §5.2).
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(&challenger{ResponseWriter: w, challenge: `Basic realm="dingbridge"`}, r)
	})
}

// bearerChallenge adds RFC 6750 §3's WWW-Authenticate to a 401 from
// userinfo: with error="invalid_token" when a token was presented, and
// without an error code when none was (RFC 6750 §3.1).
func bearerChallenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge := `Bearer realm="dingbridge"`
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") || r.URL.Query().Has("access_token") ||
			(r.Method == http.MethodPost && strings.Contains(r.Header.Get("Content-Type"), "form")) {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(&challenger{ResponseWriter: w, challenge: challenge}, r)
	})
}

// challenger adds WWW-Authenticate when the response is a 401.
type challenger struct {
	http.ResponseWriter
	challenge string
}

func (c *challenger) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		c.Header().Set("WWW-Authenticate", c.challenge)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *challenger) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// requireClientAuth answers 401 invalid_client when a request carries no
// client credentials at all (RFC 7009 §2.1, RFC 7662 §2.1); the library
// would say 400 invalid_request.
func requireClientAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, basic := r.BasicAuth(); !basic && r.PostFormValue("client_id") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Basic realm="dingbridge"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication is required"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noRepeatedParams refuses a form with a parameter given twice (RFC 6749
// §3.2: parameters must not be included more than once); the library
// would silently take the first value.
func noRepeatedParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			for k, v := range r.Form {
				if len(v) > 1 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"parameter ` + jsonSafe(k) + ` must not be repeated"}`))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// jsonSafe keeps a parameter name that is echoed in JSON harmless.
func jsonSafe(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '?'
	}, s)
}
