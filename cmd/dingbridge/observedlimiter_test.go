package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
)

// stubLimiter waits for wait and then answers err.
type stubLimiter struct {
	wait time.Duration
	err  error
}

func (l stubLimiter) Wait(ctx context.Context, endpoint string) (func(), error) {
	time.Sleep(l.wait)
	if l.err != nil {
		return nil, l.err
	}
	return func() {}, nil
}

// TestObservedLimiter: waits of the shared limiter reach the metrics as
// the client's own limiter's do: a real wait and a refusal are reported, a
// turn given at once is not.
func TestObservedLimiter(t *testing.T) {
	var got []dingtalk.Wait
	observe := func(w dingtalk.Wait) { got = append(got, w) }
	for _, l := range []stubLimiter{{}, {wait: 30 * time.Millisecond}, {err: dingtalk.ErrThrottled}} {
		done, err := observedLimiter{l, observe}.Wait(t.Context(), "/x")
		if (err != nil) != (l.err != nil) || (err == nil && done == nil) {
			t.Fatalf("Wait returned done=%t, err=%v; want the limiter's answer", done != nil, err)
		}
		if err != nil && !errors.Is(err, dingtalk.ErrThrottled) {
			t.Fatalf("error %v lost its kind", err)
		}
	}
	if len(got) != 2 || got[0].Refused || got[0].Duration < 30*time.Millisecond || !got[1].Refused || got[1].Endpoint != "/x" {
		t.Errorf("observed %+v, want the 30ms wait, then the refusal", got)
	}
}
