package idp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// gcStore is a Store whose DeleteExpired is deleteExpired; its other
// methods are not used by RunGC (and would panic).
type gcStore struct {
	Store
	deleteExpired func(ctx context.Context, now time.Time, retention time.Duration) (int64, error)
}

func (s *gcStore) DeleteExpired(ctx context.Context, now time.Time, retention time.Duration) (int64, error) {
	return s.deleteExpired(ctx, now, retention)
}

type gcCall struct {
	now       time.Time
	retention time.Duration
}

// startGC runs RunGC with a store whose calls are reported on the returned
// channel and answered by results, in turn (the last one repeats). It
// returns a stop function that cancels RunGC, waits for it to return and
// returns what it logged.
func startGC(t *testing.T, every, retention time.Duration, results ...error) (<-chan gcCall, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	calls := make(chan gcCall)
	n := 0
	store := &gcStore{deleteExpired: func(ctx context.Context, now time.Time, retention time.Duration) (int64, error) {
		select {
		case calls <- gcCall{now, retention}:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		err := results[min(n, len(results)-1)]
		n++
		if err != nil {
			return 2, err
		}
		return 3, nil
	}}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := func() time.Time { return t0 }

	done := make(chan struct{})
	go func() {
		defer close(done)
		RunGC(ctx, store, every, retention, clock, logger)
	}()
	stop := func() string {
		cancel()
		<-done
		return logs.String()
	}
	t.Cleanup(func() { stop() })
	return calls, stop
}

func TestRunGC(t *testing.T) {
	t.Run("runs at once, then every interval", func(t *testing.T) {
		// The interval is short so that the ticker fires during the test;
		// nothing waits for it but the calls themselves.
		calls, stop := startGC(t, time.Millisecond, time.Hour, nil)
		for i := range 3 {
			c := <-calls
			if !c.now.Equal(t0) || c.retention != time.Hour {
				t.Errorf("call %d: DeleteExpired(now %v, retention %v), want %v, %v", i, c.now, c.retention, t0, time.Hour)
			}
		}
		logs := stop()
		if want := "level=DEBUG msg=\"idp gc done\" removed=3"; !strings.Contains(logs, want) {
			t.Errorf("logs = %q, want a line with %q", logs, want)
		}
	})

	t.Run("first run does not wait for the interval", func(t *testing.T) {
		calls, _ := startGC(t, time.Hour, time.Hour, nil)
		<-calls // would block for an hour otherwise (the test's deadline would end it)
	})

	t.Run("errors are logged and the loop goes on", func(t *testing.T) {
		calls, stop := startGC(t, time.Millisecond, time.Hour, errors.New("database on fire"), nil)
		<-calls
		<-calls // after the failure
		logs := stop()
		for _, want := range []string{
			`level=WARN msg="idp gc failed" removed=2 error="database on fire"`,
			`level=DEBUG msg="idp gc done" removed=3`,
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs = %q, want a line with %q", logs, want)
			}
		}
	})

	t.Run("the end of ctx is not an error", func(t *testing.T) {
		_, stop := startGC(t, time.Hour, time.Hour, nil)
		// RunGC is blocked in its first DeleteExpired; stopping cancels it.
		if logs := stop(); strings.Contains(logs, "WARN") {
			t.Errorf("logs = %q, want no warning", logs)
		}
	})

	t.Run("bad arguments do not panic", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var got gcCall
		store := &gcStore{deleteExpired: func(_ context.Context, now time.Time, retention time.Duration) (int64, error) {
			got = gcCall{now, retention}
			cancel()
			return 0, nil
		}}
		RunGC(ctx, store, 0, -time.Hour, nil, nil) // returns once ctx ends
		if got.retention != 0 || got.now.IsZero() {
			t.Errorf("DeleteExpired(now %v, retention %v), want the clock's now and 0", got.now, got.retention)
		}
	})
}
