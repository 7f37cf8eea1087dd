package idp

import (
	"context"
	"log/slog"
	"time"
)

// defaultGCEvery is how often RunGC runs when given no usable interval.
const defaultGCEvery = 5 * time.Minute

// RunGC deletes what the store no longer needs: it calls
// store.DeleteExpired(ctx, now(), retention) at once and then every interval
// until ctx ends, and returns then. Removed counts are logged at Debug,
// failures at Warn; a failure does not stop the loop, and nothing is logged
// for the failure that ctx's end causes. The caller owns the goroutine:
//
//	go idp.RunGC(ctx, store, time.Minute, time.Hour, time.Now, logger)
//
// Several replicas may run it at once (DeleteExpired is leader-safe). An
// interval that is not positive means five minutes, a negative retention
// zero; a nil now is time.Now and a nil logger discards.
func RunGC(ctx context.Context, store Store, every, retention time.Duration, now func() time.Time, logger *slog.Logger) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		logger.WarnContext(ctx, "idp gc: interval not positive, using the default", "every", every, "default", defaultGCEvery)
		every = defaultGCEvery
	}
	retention = max(retention, 0)

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		removed, err := store.DeleteExpired(ctx, now(), retention)
		switch {
		case err != nil && ctx.Err() != nil:
			return // shutting down
		case err != nil:
			logger.WarnContext(ctx, "idp gc failed", "removed", removed, "error", err)
		default:
			logger.DebugContext(ctx, "idp gc done", "removed", removed)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
