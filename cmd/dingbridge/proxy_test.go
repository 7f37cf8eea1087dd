package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestClientAddr: X-Forwarded-For is believed only from trusted proxies,
// read from the right, and never past a malformed entry.
func TestClientAddr(t *testing.T) {
	trusted, err := parseProxies([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "10.1.2.3:5000", nil, "10.1.2.3:5000"},
		{"direct client, header ignored", "198.51.100.9:5000", []string{"203.0.113.5"}, "198.51.100.9:5000"},
		{"one proxy", "10.1.2.3:5000", []string{"203.0.113.5"}, "203.0.113.5:0"},
		{"spoofed entries left of the real one are ignored", "10.1.2.3:5000", []string{"1.1.1.1, 203.0.113.5"}, "203.0.113.5:0"},
		{"chain of trusted proxies is skipped", "10.1.2.3:5000", []string{"203.0.113.5, 192.0.2.7", "10.9.9.9"}, "203.0.113.5:0"},
		{"all trusted: the leftmost", "10.1.2.3:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1:0"},
		{"malformed entry voids the header", "10.1.2.3:5000", []string{"203.0.113.5, bogus"}, "10.1.2.3:5000"},
		{"IPv6 proxy and client", "[2001:db8::1]:443", []string{"2001:db8:ffff::1, 2600::5"}, "[2600::5]:0"},
		{"IPv4-mapped peer counts as IPv4", "[::ffff:10.1.2.3]:5000", []string{"203.0.113.5"}, "203.0.113.5:0"},
		{"trusted single address", "192.0.2.7:80", []string{"203.0.113.8"}, "203.0.113.8:0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := clientAddr(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want {
				t.Errorf("RemoteAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestClientAddrWithoutTrustedProxies: by default the header is ignored.
func TestClientAddrWithoutTrustedProxies(t *testing.T) {
	var got string
	r := newRouter(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, func(context.Context) error { return nil })
	r.Get("/echo", func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr })
	req := httptest.NewRequest(http.MethodGet, "/echo", nil)
	req.RemoteAddr = "10.1.2.3:5000"
	req.Header.Set("X-Forwarded-For", "203.0.113.5")
	r.ServeHTTP(httptest.NewRecorder(), req)
	if got != "10.1.2.3:5000" {
		t.Errorf("RemoteAddr = %q, want the peer's", got)
	}
}

// TestRouterUsesTrustedProxies: the bridge's router applies the rule before
// any handler runs.
func TestRouterUsesTrustedProxies(t *testing.T) {
	trusted, _ := parseProxies([]string{"10.0.0.0/8"})
	var got string
	r := newRouter(slog.New(slog.NewTextHandler(io.Discard, nil)), trusted, func(context.Context) error { return nil })
	r.Get("/echo", func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr })
	req := httptest.NewRequest(http.MethodGet, "/echo", nil)
	req.RemoteAddr = "10.1.2.3:5000"
	req.Header.Set("X-Forwarded-For", "203.0.113.5")
	r.ServeHTTP(httptest.NewRecorder(), req)
	if got != "203.0.113.5:0" {
		t.Errorf("RemoteAddr = %q, want the forwarded client", got)
	}
}
