package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr makes r.RemoteAddr the client's address when the request came
// through a trusted reverse proxy, so that rate limits, audit rows and logs
// (in idp and web, which read only RemoteAddr) see people, not the proxy.
//
// X-Forwarded-For is read from the right: each proxy appends the address it
// received the request from, so the rightmost entry that is not a trusted
// proxy is the first address no trusted party vouches beyond. Entries left
// of it may be anything a client chose to send and are never used. Without
// trusted proxies, or from a peer that is not one, the header is ignored.
func clientAddr(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if peer, ok := addrOf(r.RemoteAddr); ok && isTrusted(trusted, peer) {
				if client, ok := forwardedFor(r.Header.Values("X-Forwarded-For"), trusted); ok {
					r = r.Clone(r.Context())
					r.RemoteAddr = net.JoinHostPort(client.String(), "0")
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// forwardedFor returns the rightmost address of the X-Forwarded-For values
// that is not a trusted proxy (the leftmost, if all are). A malformed entry
// reached before that address voids the header: what lies beyond it cannot
// be trusted either.
func forwardedFor(values []string, trusted []netip.Prefix) (netip.Addr, bool) {
	var entries []string
	for _, v := range values {
		entries = append(entries, strings.Split(v, ",")...)
	}
	var last netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(entries[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		a = a.Unmap()
		if !isTrusted(trusted, a) {
			return a, true
		}
		last = a
	}
	return last, last.IsValid()
}

func addrOf(remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseProxies reads trusted_proxies: addresses or CIDR prefixes.
func parseProxies(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, &net.ParseError{Type: "IP address or CIDR prefix", Text: e}
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
