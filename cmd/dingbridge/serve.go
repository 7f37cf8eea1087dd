package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations"
)

// Timeouts for the HTTP server: a slow or idle client cannot hold a
// connection forever, and shutdown waits a bounded time for requests in
// flight.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 15 * time.Second
	readyTimeout      = 2 * time.Second
	migrateTimeout    = 2 * time.Minute
)

// Why a replica is not ready, as /healthz/ready reports it.
var (
	errDatabaseUnreachable = errors.New("database unreachable")
	errKeysNotReady        = errors.New("signing keys not created yet")
)

// openDatabase builds the pgx pool. It does not connect: the pool connects on
// first use, so a Postgres outage at start-up shows as "not ready" rather than
// a crash loop.
func openDatabase(ctx context.Context, db DatabaseConfig) (*pgxpool.Pool, error) {
	return openDatabaseTraced(ctx, db, nil)
}

// openDatabaseTraced is openDatabase with every statement reported to
// tracer (when not nil).
func openDatabaseTraced(ctx context.Context, db DatabaseConfig, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		// pgx's parse errors can quote the URL, password included.
		return nil, errors.New("database.url is not a valid Postgres connection string")
	}
	pc.ConnConfig.Tracer = tracer
	if db.MaxConns > 0 {
		pc.MaxConns = db.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// serve runs the provider until ctx is cancelled.
func serve(ctx context.Context, cfg *Config, logger *slog.Logger, stdout io.Writer) error {
	m := newMetrics()
	pool, err := openDatabaseTraced(ctx, cfg.Database, queryTracer{m})
	if err != nil {
		return err
	}
	defer pool.Close()

	if *cfg.Database.AutoMigrate {
		mctx, cancel := context.WithTimeout(ctx, migrateTimeout)
		err := migrations.Up(mctx, pool)
		cancel()
		if err != nil {
			return fmt.Errorf("apply migrations (database.auto_migrate is on): %w", err)
		}
		logger.InfoContext(ctx, "database migrations applied")
	}

	// The OIDC library logs through slog's default logger.
	slog.SetDefault(logger)
	b, err := buildBridgeWith(ctx, cfg, idp.NewPostgresStore(pool), mapping.NewPostgres(pool, mapping.Options{}), pool.Ping, m, logger)
	if err != nil {
		return err
	}
	if b.limits != nil {
		defer b.limits.Flush() // before the pool closes
	}
	if cfg.Metrics.Listen == "" {
		return listenAndServe(ctx, cfg.Listen, b.router, b.drain, logger, stdout)
	}
	// Either server failing stops both.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metricsDone, err := startMetricsServer(ctx, cfg.Metrics.Listen, m, cancel, logger, stdout)
	if err != nil {
		return err
	}
	err = listenAndServe(ctx, cfg.Listen, b.router, b.drain, logger, stdout)
	cancel()
	return errors.Join(err, <-metricsDone)
}

// newRouter holds the middleware order and the operational routes; the
// provider is mounted on it. The client's address is settled first, so
// that every later part (logs included) sees the same one.
func newRouter(logger *slog.Logger, trusted []netip.Prefix, ready func(context.Context) error) chi.Router {
	r := chi.NewRouter()
	r.Use(clientAddr(trusted), withRequestID, accessLog(logger), recoverer(logger))
	r.Get("/healthz/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/healthz/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.WarnContext(r.Context(), "not ready", "err", err)
			reason := errDatabaseUnreachable.Error()
			if errors.Is(err, errKeysNotReady) {
				reason = errKeysNotReady.Error()
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return r
}

// recoverer turns a panic in a handler into a logged 500, so one bad request
// cannot take the process down.
func recoverer(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					logger.ErrorContext(r.Context(), "handler panic", "panic", fmt.Sprint(v), "path", r.URL.Path)
					http.Error(w, "internal error", http.StatusInternalServerError)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// listenAndServe serves h on addr until ctx is cancelled, then shuts down
// gracefully, draining what h runs in the background (drain, when not nil;
// see serveUntilDone). It prints the bound address on stdout, which matters
// when addr asks for port 0.
func listenAndServe(ctx context.Context, addr string, h http.Handler, drain func(context.Context) error, logger *slog.Logger, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "dingbridge listening on http://%s\n", ln.Addr())
	logger.InfoContext(ctx, "listening", "addr", ln.Addr().String())
	return serveUntilDone(ctx, newHTTPServer(h, logger), ln, drain, logger)
}

// newHTTPServer is the one place server limits are set.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// serveUntilDone runs srv on ln and shuts it down when ctx ends. Once srv
// has stopped, drain (when not nil) waits for the work its handlers started
// in the background (the console's imports), within the same grace: the
// caller closes the database after this returns.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, drain func(context.Context) error, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.InfoContext(ctx, "shutting down", "grace", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	if drain != nil {
		if err := drain(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return nil
}
