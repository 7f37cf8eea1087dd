package web

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Sign-in limits (SECURITY.md SEC-06). Starting and completing a sign-in
// are bounded per client address, generously: a real administrator needs a
// handful, and the bound exists to stop floods of DingTalk round trips and
// token exchanges. Denials (a mapped person who is not an administrator) are
// bounded tightly, per address and per account: each one writes an audit
// row and a warning, which a bot with one DingTalk account must not be able
// to flood. Denials are counted only for people who are not administrators
// and only they are refused for them, so nobody can lock an administrator
// out by failing from the same address (BAD-45).
const (
	maxSignInStarts      = 60
	maxSignInCompletions = 60
	signInWindow         = 10 * time.Minute
	maxDenials           = 5
	denialWindow         = 15 * time.Minute
	maxLimiterKeys       = 100_000
)

// windowLimiter counts events per key in fixed windows that start at a
// key's first event. It lives in one replica's memory: each replica limits
// on its own, so N replicas accept up to N times the limit.
type windowLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*windowCount
}

type windowCount struct {
	n     int
	until time.Time
}

func newWindowLimiter(maxEvents int, window time.Duration, now func() time.Time) *windowLimiter {
	return &windowLimiter{max: maxEvents, window: window, now: now, m: map[string]*windowCount{}}
}

// wait returns how long key must wait before its next event is accepted,
// or 0.
func (l *windowLimiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.m[key]
	if !ok || !now.Before(w.until) || w.n < l.max {
		return 0
	}
	return w.until.Sub(now)
}

// add records an event for key and reports whether it was the one that
// reached the limit.
func (l *windowLimiter) add(key string) (reached bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) >= maxLimiterKeys {
		for k, w := range l.m {
			if !now.Before(w.until) {
				delete(l.m, k)
			}
		}
	}
	w, ok := l.m[key]
	if !ok || !now.Before(w.until) {
		w = &windowCount{until: now.Add(l.window)}
		l.m[key] = w
	}
	w.n++
	return w.n == l.max
}

// take is wait then, when there is no wait, add: an event that is refused
// is not counted.
func (l *windowLimiter) take(key string) time.Duration {
	if d := l.wait(key); d > 0 {
		return d
	}
	l.add(key)
	return 0
}

// limitKey is the part of a client address that rate limits count: the
// address itself for IPv4, its /64 for IPv6, where one client commonly
// holds a whole /64. The address is RemoteAddr, as for the audit rows:
// dingbridge takes no X-Forwarded-For today, so behind a reverse proxy
// every client counts as the proxy's address.
func limitKey(r *http.Request) string {
	ip := clientIP(r)
	if !ip.IsValid() {
		return r.RemoteAddr
	}
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// clientIP is the request's client address, or the zero Addr.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap()
	}
	ip, err := netip.ParseAddr(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}
