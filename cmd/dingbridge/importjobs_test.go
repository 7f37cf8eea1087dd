package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// sweeper is an importJobSweeper whose DeleteExpiredImportJobs is Fn.
type sweeper struct {
	Fn func(ctx context.Context) (int, error)
}

func (s sweeper) DeleteExpiredImportJobs(ctx context.Context) (int, error) { return s.Fn(ctx) }

// TestImportJobGC: expired import jobs are deleted at start and then every
// interval, a failure is logged without stopping the loop, and the loop
// ends with its context. In a synctest bubble, whose clock moves only when
// every goroutine waits.
func TestImportJobGC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every = 5 * time.Minute
		start := time.Now()
		var calls []time.Duration
		results := []error{nil, errors.New("database unreachable"), nil}
		store := sweeper{Fn: func(context.Context) (int, error) {
			err := results[min(len(calls), len(results)-1)]
			calls = append(calls, time.Since(start))
			return 2, err
		}}
		var logs bytes.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			runImportJobGC(ctx, store, every, slog.New(slog.NewTextHandler(&logs, nil)))
		}()
		time.Sleep(2*every + time.Second) // the bubble's clock: no real time passes
		synctest.Wait()
		cancel()
		<-done
		want := []time.Duration{0, every, 2 * every}
		if len(calls) != len(want) || calls[0] != want[0] || calls[1] != want[1] || calls[2] != want[2] {
			t.Errorf("clean-ups at %v, want %v", calls, want)
		}
		if got := logs.String(); strings.Count(got, "import job clean-up failed") != 1 || !strings.Contains(got, "database unreachable") {
			t.Errorf("log = %q, want the one failure", got)
		}
	})
}

// TestServeUntilDoneDrains: a graceful shutdown drains once the server has
// stopped, within the shutdown's grace, and reports a drain that failed.
func TestServeUntilDoneDrains(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"drained", nil, false},
		{"imports cancelled", context.DeadlineExceeded, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			srv := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
			var (
				drains   int
				deadline time.Duration
			)
			drain := func(ctx context.Context) error {
				drains++
				if _, err := ln.Accept(); err == nil {
					t.Error("the listener still accepts while draining")
				}
				if d, ok := ctx.Deadline(); ok {
					deadline = time.Until(d)
				}
				return tt.err
			}
			cancel()
			err = serveUntilDone(ctx, srv, ln, drain, slog.New(slog.DiscardHandler))
			if drains != 1 || deadline <= 0 || deadline > shutdownTimeout {
				t.Errorf("drained %d times with %v left; want once, within the grace of %v", drains, deadline, shutdownTimeout)
			}
			if (err != nil) != tt.wantErr || (tt.wantErr && !errors.Is(err, tt.err)) {
				t.Errorf("serveUntilDone = %v, want error %v", err, tt.err)
			}
		})
	}
}
