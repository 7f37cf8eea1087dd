package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
)

// Limits of the metrics and of the sign-in failure audit.
const (
	// pendingCacheFor is how long a count of pending requests is reused:
	// several Prometheus servers scraping every few seconds must not each
	// make the database count.
	pendingCacheFor = 15 * time.Second
	// pendingTimeout bounds one count, so a slow database cannot hold a
	// scrape past Prometheus's own timeout.
	pendingTimeout = 2 * time.Second
	// signInFailEventsPerSecond is how many signin.fail audit rows one
	// replica writes per failure reason per second; beyond that they are
	// only counted (dingbridge_signin_fail_events_dropped_total), so that a
	// flood of bad callbacks cannot flood the audit table.
	signInFailEventsPerSecond = 20
	// maxDingTalkCodes bounds how many distinct DingTalk error codes become
	// label values; later ones are reported as "other". The codes come from
	// DingTalk's answers, so their number is not ours to bound otherwise.
	maxDingTalkCodes = 64
	// auditTimeout bounds the write of one signin.fail row.
	auditTimeout = 2 * time.Second
)

// Histogram buckets, in seconds.
var (
	// A sign-in's last step makes one to four DingTalk calls.
	signInBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// One DingTalk call: tens of milliseconds to the 5 s timeout.
	dingTalkBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	// The rate limiter spaces calls by 1/rate (50 ms at 20/s).
	waitBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	// One Postgres statement.
	queryBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// metrics are dingbridge's Prometheus metrics, on a registry of their own
// (nothing is registered globally, so tests build as many as they like).
type metrics struct {
	registry *prometheus.Registry

	signIns        *prometheus.CounterVec
	signInDuration *prometheus.HistogramVec
	auditDropped   *prometheus.CounterVec
	dingTalkCalls  *prometheus.CounterVec
	dingTalkTime   *prometheus.HistogramVec
	limiterWaits   *prometheus.HistogramVec
	limiterRefused *prometheus.CounterVec
	tokens         *prometheus.CounterVec
	queries        *prometheus.HistogramVec
	// queryOps are queries' observers by operation, looked up once: a
	// statement's observation is then one atomic add, no map lookup.
	queryOps map[string]prometheus.Observer
	pending  *pendingGauge // nil until registerPending

	codesMu sync.Mutex
	codes   map[string]bool // DingTalk error codes given a label value
}

// newMetrics registers every metric, and the Go runtime and process
// collectors, on a new registry.
func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	f := promauto(reg)
	m := &metrics{
		registry: reg,
		signIns: f.counter("dingbridge_signins_total",
			"Sign-ins by mode (web, qr, sns, jsapi, sso) and outcome (ok or why it failed).", "mode", "outcome"),
		signInDuration: f.histogram("dingbridge_signin_duration_seconds",
			"Time dingbridge spent on a sign-in's last step (DingTalk's callback or the workbench code), DingTalk's answers included.",
			signInBuckets, "mode"),
		auditDropped: f.counter("dingbridge_signin_fail_events_dropped_total",
			"Failed sign-ins not written to the audit trail because the per-reason rate was exceeded.", "reason"),
		dingTalkCalls: f.counter("dingbridge_dingtalk_calls_total",
			"HTTP attempts at DingTalk's APIs by endpoint and result (ok, DingTalk's error code, transport, bad_response, throttled).",
			"endpoint", "result"),
		dingTalkTime: f.histogram("dingbridge_dingtalk_call_duration_seconds",
			"Latency of HTTP attempts at DingTalk's APIs.", dingTalkBuckets, "endpoint"),
		limiterWaits: f.histogram("dingbridge_dingtalk_limiter_wait_seconds",
			"Waits imposed by dingbridge's own per-endpoint DingTalk rate limiter (calls that passed at once are not counted).",
			waitBuckets, "endpoint"),
		limiterRefused: f.counter("dingbridge_dingtalk_limiter_refused_total",
			"DingTalk calls not made because the rate limiter's wait would pass the request's deadline, or the request ended.", "endpoint"),
		tokens: f.counter("dingbridge_token_requests_total",
			"Token endpoint answers by grant type, client (unknown for unconfigured ones) and result (ok or the OAuth error code).",
			"grant_type", "client_id", "result"),
		queries: f.histogram("dingbridge_store_query_duration_seconds",
			"Latency of Postgres statements by operation (select, insert, update, delete, other).", queryBuckets, "operation"),
		codes: map[string]bool{},
	}
	m.queryOps = map[string]prometheus.Observer{}
	for _, op := range []string{"select", "insert", "update", "delete", "other"} {
		m.queryOps[op] = m.queries.WithLabelValues(op)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dingbridge_build_info",
		Help: "Always 1; the labels say which build is running.", ConstLabels: prometheus.Labels{"version": version}})
	build.Set(1)
	reg.MustRegister(build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// factory registers metrics on one registry.
type factory struct{ reg *prometheus.Registry }

func promauto(reg *prometheus.Registry) factory { return factory{reg} }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// handler serves the registry in Prometheus's text format.
func (m *metrics) handler(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		Registry: m.registry, // counts its own errors
	}))
	return mux
}

// --- DingTalk ---

// dingTalkCodeLabel keeps the label values of DingTalk's error codes few and
// plain.
var dingTalkCodeLabel = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// observeDingTalkCall is dingtalk.Config.Observe.
func (m *metrics) observeDingTalkCall(c dingtalk.Call) {
	m.dingTalkCalls.WithLabelValues(c.Endpoint, m.resultLabel(c.Result)).Inc()
	m.dingTalkTime.WithLabelValues(c.Endpoint).Observe(c.Duration.Seconds())
}

// resultLabel returns the label value of a call's result: the fixed
// results as they are, and at most maxDingTalkCodes distinct error codes.
func (m *metrics) resultLabel(r string) string {
	switch r {
	case dingtalk.ResultOK, dingtalk.ResultTransport, dingtalk.ResultBadResponse, dingtalk.ResultThrottled:
		return r
	}
	if !dingTalkCodeLabel.MatchString(r) {
		return "other"
	}
	m.codesMu.Lock()
	defer m.codesMu.Unlock()
	if !m.codes[r] {
		if len(m.codes) >= maxDingTalkCodes {
			return "other"
		}
		m.codes[r] = true
	}
	return r
}

// observeLimiterWait is dingtalk.Config.ObserveWait.
func (m *metrics) observeLimiterWait(w dingtalk.Wait) {
	if w.Refused {
		m.limiterRefused.WithLabelValues(w.Endpoint).Inc()
		return
	}
	m.limiterWaits.WithLabelValues(w.Endpoint).Observe(w.Duration.Seconds())
}

// --- Postgres ---

// queryTracer times every statement a pgx pool runs (pgx.QueryTracer). It
// labels by operation only: never the SQL text or its arguments.
type queryTracer struct{ m *metrics }

var _ pgx.QueryTracer = queryTracer{}

type queryStartKey struct{}

// queryStart is what TraceQueryStart leaves for TraceQueryEnd.
type queryStart struct {
	op    prometheus.Observer
	start time.Time
}

// TraceQueryStart implements pgx.QueryTracer.
func (q queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStartKey{}, queryStart{op: q.m.queryOps[sqlOperation(data.SQL)], start: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (q queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if s, ok := ctx.Value(queryStartKey{}).(queryStart); ok {
		s.op.Observe(time.Since(s.start).Seconds())
	}
}

// sqlOperation is the statement's first keyword, if it is one of the four
// the label knows; anything else (with, begin, commit, set, …) is "other".
func sqlOperation(sql string) string {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	for _, op := range [...]string{"select", "insert", "update", "delete"} {
		if len(sql) >= len(op) && strings.EqualFold(sql[:len(op)], op) &&
			(len(sql) == len(op) || !isWordByte(sql[len(op)])) {
			return op
		}
	}
	return "other"
}

func isWordByte(b byte) bool {
	return b == '_' || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// --- pending requests ---

// pendingGauge reports how many DingTalk identities wait for an
// administrator. It counts at scrape time, at most once per
// pendingCacheFor; a failed count is logged and the gauge left out of that
// scrape rather than reported stale.
type pendingGauge struct {
	desc  *prometheus.Desc
	count func(context.Context) (int, error)
	now   func() time.Time
	log   *slog.Logger

	mu    sync.Mutex
	at    time.Time
	value int
	err   error
}

// registerPending adds the pending-requests gauge, counted by count.
func (m *metrics) registerPending(count func(context.Context) (int, error), logger *slog.Logger) {
	m.pending = &pendingGauge{
		desc: prometheus.NewDesc("dingbridge_pending_requests",
			"DingTalk identities waiting for an administrator to link them (open pending requests).", nil, nil),
		count: count, now: time.Now, log: logger,
	}
	m.registry.MustRegister(m.pending)
}

// Describe implements prometheus.Collector.
func (g *pendingGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector. Concurrent scrapes wait for one
// count instead of each starting their own.
func (g *pendingGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); g.at.IsZero() || now.Sub(g.at) >= pendingCacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), pendingTimeout)
		g.value, g.err = g.count(ctx)
		cancel()
		g.at = now
		if g.err != nil {
			g.log.Warn("count pending requests for metrics", "err", g.err)
		}
	}
	if g.err == nil {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.value))
	}
}

// pendingCounter is what countPending needs of the mapping.
type pendingCounter interface {
	CountOpenRequests(ctx context.Context) (mapping.Count, error)
}

// countPending counts open pending requests in one query: exact up to a
// hundred thousand, Postgres's estimate above (mapping.CountOpenRequests).
func countPending(store pendingCounter) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n, err := store.CountOpenRequests(ctx)
		return int(n.N), err
	}
}

// --- sign-ins and tokens ---

// eventRecorder is what the observer needs of the mapping: the audit trail.
type eventRecorder interface {
	RecordEvent(ctx context.Context, m mapping.Meta, e mapping.Event) error
}

// bridgeObserver is the provider's idp.Observer: it counts sign-ins and
// token requests, and writes a signin.fail audit row for each failed
// sign-in (successful ones write nothing: they are the hot path).
type bridgeObserver struct {
	m      *metrics
	events eventRecorder
	limit  *reasonLimiter
	log    *slog.Logger
}

var _ idp.Observer = (*bridgeObserver)(nil)

func newBridgeObserver(m *metrics, events eventRecorder, logger *slog.Logger) *bridgeObserver {
	return &bridgeObserver{m: m, events: events, limit: newReasonLimiter(signInFailEventsPerSecond, time.Now), log: logger}
}

// SignIn implements idp.Observer.
func (o *bridgeObserver) SignIn(ctx context.Context, s idp.SignIn) {
	o.m.signIns.WithLabelValues(s.Mode, s.Outcome).Inc()
	o.m.signInDuration.WithLabelValues(s.Mode).Observe(s.Duration.Seconds())
	// Not linked is no failure of the sign-in: the mapping has recorded a
	// pending request, audited when it opened.
	if s.Outcome == idp.OutcomeOK || s.Outcome == idp.OutcomeNotLinked {
		return
	}
	if !o.limit.allow(s.Outcome) {
		o.m.auditDropped.WithLabelValues(s.Outcome).Inc()
		return
	}
	detail := map[string]string{"reason": s.Outcome, "mode": s.Mode}
	if s.CorpID != "" {
		detail["corp_id"] = s.CorpID
	}
	// The row is written even if the browser has gone away meanwhile.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	err := o.events.RecordEvent(actx, mapping.Meta{Actor: mapping.ActorSystem, RequestID: requestIDFrom(ctx), ClientIP: s.ClientIP},
		mapping.Event{Action: "signin.fail", TargetType: "signin", Detail: detail})
	if err != nil {
		o.log.ErrorContext(ctx, "audit failed sign-in", "reason", s.Outcome, "err", err)
	}
}

// TokenRequest implements idp.Observer.
func (o *bridgeObserver) TokenRequest(_ context.Context, t idp.TokenRequest) {
	client, result := t.ClientID, t.Error
	if client == "" {
		client = "unknown"
	}
	if result == "" {
		result = "ok"
	}
	o.m.tokens.WithLabelValues(t.GrantType, client, result).Inc()
}

// reasonLimiter allows up to perSecond events per reason in each second of
// the clock.
type reasonLimiter struct {
	perSecond int
	now       func() time.Time

	mu     sync.Mutex
	second int64
	counts map[string]int
}

func newReasonLimiter(perSecond int, now func() time.Time) *reasonLimiter {
	return &reasonLimiter{perSecond: perSecond, now: now, counts: map[string]int{}}
}

// allow reports whether one more event for reason fits this second.
func (l *reasonLimiter) allow(reason string) bool {
	sec := l.now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec != l.second {
		l.second = sec
		clear(l.counts)
	}
	if l.counts[reason] >= l.perSecond {
		return false
	}
	l.counts[reason]++
	return true
}

// --- listener ---

// startMetricsServer serves m on addr until ctx ends; the returned channel
// yields the server's result once it has stopped, and failed is called if
// it stops on its own. It prints the bound address on stdout, which matters
// when addr asks for port 0.
func startMetricsServer(ctx context.Context, addr string, m *metrics, failed func(), logger *slog.Logger, stdout io.Writer) (<-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: listen on %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "dingbridge metrics on http://%s/metrics\n", ln.Addr())
	logger.InfoContext(ctx, "metrics listening", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() {
		err := serveUntilDone(ctx, newHTTPServer(m.handler(logger), logger), ln, nil, logger)
		if err != nil {
			err = fmt.Errorf("metrics: %w", err)
			failed()
		}
		done <- err
	}()
	return done, nil
}
