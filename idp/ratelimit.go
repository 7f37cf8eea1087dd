package idp

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed client authentications allowed per client and source address
// within failureWindow before the token endpoint answers 429 (SEC-06).
// Keyed on address and client together, so that nobody can lock a client
// out from somewhere else (BAD-45).
const (
	maxAuthFailures = 20
	failureWindow   = time.Minute
	maxTrackedKeys  = 100_000
)

// failureLimiter counts recent failures per key. It lives in one replica's
// memory: each replica limits on its own, which bounds guessing to
// replicas × maxAuthFailures per window.
type failureLimiter struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*failureWindowCount
}

type failureWindowCount struct {
	n     int
	until time.Time
}

func newFailureLimiter(now func() time.Time) *failureLimiter {
	return &failureLimiter{now: now, m: map[string]*failureWindowCount{}}
}

// blocked returns how long key must wait, or 0.
func (l *failureLimiter) blocked(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.m[key]
	now := l.now()
	if !ok || !now.Before(w.until) || w.n < maxAuthFailures {
		return 0
	}
	return w.until.Sub(now)
}

// fail records one failure for key.
func (l *failureLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) >= maxTrackedKeys {
		for k, w := range l.m {
			if !now.Before(w.until) {
				delete(l.m, k)
			}
		}
	}
	w, ok := l.m[key]
	if !ok || !now.Before(w.until) {
		w = &failureWindowCount{until: now.Add(failureWindow)}
		l.m[key] = w
	}
	w.n++
}

type clientIPKey struct{}

// withClientIP records the request's source address for the limiter. The
// address is the connection's peer: a reverse proxy in front must be
// configured to pass the real one (cmd sets RemoteAddr from trusted
// proxies only).
func withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, host)))
	})
}

func clientIPFrom(ctx context.Context) string {
	s, _ := ctx.Value(clientIPKey{}).(string)
	return s
}
