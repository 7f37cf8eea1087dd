package main

import (
	"context"
	"log/slog"
	"time"
)

// importJobSweeper deletes the console's expired import jobs (mapping.Store).
type importJobSweeper interface {
	DeleteExpiredImportJobs(ctx context.Context) (int, error)
}

// runImportJobGC deletes the console's expired import jobs (uploads of up to
// 16 MiB each, kept two hours after their last step) at once and then every
// interval until ctx ends. Creating a job also deletes expired ones, but
// without this the last uploads stay until somebody uploads again. Every
// replica runs it: the delete is one idempotent statement, so replicas
// running it at once only repeat each other. A failure is logged and the
// loop goes on.
func runImportJobGC(ctx context.Context, store importJobSweeper, every time.Duration, logger *slog.Logger) {
	if every <= 0 {
		every = 5 * time.Minute
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		n, err := store.DeleteExpiredImportJobs(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return // shutting down
		case err != nil:
			logger.WarnContext(ctx, "import job clean-up failed", "err", err)
		case n > 0:
			logger.DebugContext(ctx, "expired import jobs deleted", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
