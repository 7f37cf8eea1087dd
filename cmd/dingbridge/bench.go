package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// dingbridge bench drives complete OpenID Connect sign-ins, as many virtual
// browsers at once, against a running provider (or an in-process demo with
// -demo) and reports throughput, latency per step and errors by kind. It
// uses only standard OIDC (x/oauth2, go-oidc) plus the redirects the
// provider answers with, so it also measures any provider whose upstream
// login completes without a person.

// Bench scenarios.
const (
	scenarioFresh     = "fresh"     // a new browser signs in through DingTalk each time
	scenarioSSO       = "sso"       // the browser has a session; a second app signs in
	scenarioRefresh   = "refresh"   // refresh-token grants
	scenarioJWKS      = "jwks"      // GET of the JWKS
	scenarioDiscovery = "discovery" // GET of the discovery document
	scenarioBurst     = "burst"     // -n different people sign in once each, arriving over -arrive
)

// burstSimulatorLimit is what the simulator enforces in the burst
// scenario: DingTalk's 20 calls per second per app per API (§9.3).
const burstSimulatorLimit = 20

// benchUserAgent is DingTalk's in-app WebView, so that dingbridge's /login
// redirects straight to DingTalk instead of showing the QR page.
const benchUserAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) DingTalk/7.6.0 dingbridge-bench"

// benchOptions are the bench command's flags.
type benchOptions struct {
	issuer, clientID, clientSecret, redirectURI string
	// The second app of the sso scenario; empty means the first one.
	client2ID, client2Secret, redirect2URI string
	scopes                                 string
	corp                                   string // which corp to pick when a corp picker appears
	scenario                               string
	concurrency                            int
	duration                               time.Duration
	timeout                                time.Duration
	jsonOut                                bool
	demo                                   bool
	databaseURL                            string
	cpuProfile                             string
	pid                                    int
	dingTalkRateLimit                      float64
	sharedRateLimit                        bool
	demoAlg                                string
	// replicas > 1 runs that many bridges on one Postgres (-demo); the
	// demo fills in their addresses, replicaAddrs[0] being the issuer's.
	replicas     int
	replicaAddrs []string
	// burst: how many sign-ins, arriving evenly over how long.
	n      int
	arrive time.Duration
	// users > 1 signs in that many different people in turn (-demo).
	users int
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "bench [-demo [-database-url url] | -issuer url -client-id id -client-secret s -redirect-uri uri] [-scenario s] [-c n] [-d duration] [-json]",
		"Drives complete OpenID Connect sign-ins with -c concurrent virtual browsers for\n"+
			"-d and reports sign-ins/s, latency of the whole flow and of each step, and\n"+
			"errors by kind. Each browser has its own cookies; a sign-in is authorize\n"+
			"(PKCE S256, state, nonce) → the provider's login → the upstream (DingTalk\n"+
			"simulator with auto-approve) → callback → code exchange → ID token verified\n"+
			"with the JWKS. Scenarios: fresh (a new browser each time), sso (a session is\n"+
			"present, the second client signs in), refresh (refresh-token grants), jwks and\n"+
			"discovery (GETs). -demo starts the demo in-process (memory, or Postgres with\n"+
			"-database-url) and also reports DingTalk calls, CPU and peak RSS per sign-in.", stderr)
	var o benchOptions
	fs.StringVar(&o.issuer, "issuer", "", "the provider's issuer URL")
	fs.StringVar(&o.clientID, "client-id", "", "client id")
	fs.StringVar(&o.clientSecret, "client-secret", "", "client secret")
	fs.StringVar(&o.redirectURI, "redirect-uri", "", "a registered redirect URI of the client (never fetched)")
	fs.StringVar(&o.client2ID, "client2-id", "", "sso scenario: the second client (default -client-id)")
	fs.StringVar(&o.client2Secret, "client2-secret", "", "sso scenario: the second client's secret")
	fs.StringVar(&o.redirect2URI, "redirect2-uri", "", "sso scenario: the second client's redirect URI")
	fs.StringVar(&o.scopes, "scopes", "openid profile email offline_access", "scopes to request, space separated")
	fs.StringVar(&o.corp, "corp", "", "corp to choose when the provider shows a corp picker (default: the first)")
	fs.StringVar(&o.scenario, "scenario", scenarioFresh, "fresh | sso | refresh | jwks | discovery | burst")
	fs.IntVar(&o.n, "n", 600, "burst: how many people sign in, once each")
	fs.DurationVar(&o.arrive, "arrive", 10*time.Second, "burst: the sign-ins start evenly spread over this time")
	fs.IntVar(&o.users, "users", 1, "with -demo: how many different people the sign-ins take turns as (1: always the same)")
	fs.IntVar(&o.concurrency, "c", 32, "concurrent virtual browsers")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long to run")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one HTTP request")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.demo, "demo", false, "start the demo in-process and bench it")
	fs.StringVar(&o.databaseURL, "database-url", "", "with -demo: keep state in this Postgres database")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to the file")
	fs.Float64Var(&o.dingTalkRateLimit, "dingtalk-rate-limit", 20, "with -demo: dingbridge's own limit of calls per second per DingTalk API (dingtalk.rate_limit; at most 1000)")
	fs.BoolVar(&o.sharedRateLimit, "shared-rate-limit", true, "with -demo -database-url: the bridges keep -dingtalk-rate-limit together, in Postgres (dingtalk.shared_rate_limit)")
	fs.IntVar(&o.replicas, "replicas", 1, "with -demo -database-url: run this many bridges on the one database, KEK and simulator; each browser sends each request to the next one")
	fs.StringVar(&o.demoAlg, "id-token-alg", "", "with -demo: the bench clients' id_token_signing_alg (default: the product's, RS256)")
	fs.IntVar(&o.pid, "pid", 0, "a local provider's process id: report its CPU and peak RSS (Linux)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(stderr, "dingbridge bench: %v\n", err)
		fs.Usage()
		return exitUsage
	}
	rep, err := bench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dingbridge bench: %v\n", err)
		return exitFailure
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	return exitOK
}

func (o *benchOptions) check() error {
	switch o.scenario {
	case scenarioFresh, scenarioSSO, scenarioRefresh, scenarioJWKS, scenarioDiscovery:
	case scenarioBurst:
		if !o.demo {
			return errors.New("-scenario burst needs -demo: it sets up the simulator's people and limits")
		}
		if o.n < 1 || o.arrive < 0 {
			return errors.New("-n must be at least 1 and -arrive not negative")
		}
	default:
		return fmt.Errorf("unknown -scenario %q", o.scenario)
	}
	if o.users < 1 || (o.users > 1 && !o.demo) {
		return errors.New("-users must be at least 1, and more than 1 needs -demo")
	}
	if o.concurrency < 1 || o.duration <= 0 {
		return errors.New("-c must be at least 1 and -d positive")
	}
	if o.databaseURL != "" && !o.demo {
		return errors.New("-database-url needs -demo")
	}
	if o.replicas < 1 || (o.replicas > 1 && o.databaseURL == "") {
		return errors.New("-replicas must be at least 1, and more than 1 needs -demo -database-url: replicas share state only through Postgres")
	}
	if o.demo {
		if o.issuer != "" || o.clientID != "" {
			return errors.New("-demo brings its own issuer and clients: leave out -issuer and -client-id")
		}
		return nil
	}
	if o.issuer == "" {
		return errors.New("say -issuer (or -demo)")
	}
	if o.scenario != scenarioJWKS && o.scenario != scenarioDiscovery && (o.clientID == "" || o.redirectURI == "") {
		return errors.New("say -client-id and -redirect-uri (and -client-secret for a confidential client)")
	}
	return nil
}

// benchReport is what bench prints; -json prints it as is.
type benchReport struct {
	Scenario        string          `json:"scenario"`
	Issuer          string          `json:"issuer"`
	Storage         string          `json:"storage,omitempty"` // -demo only: memory | postgres
	Concurrency     int             `json:"concurrency"`
	DurationSeconds float64         `json:"duration_seconds"`
	Unit            string          `json:"unit"` // what one operation is
	Completed       int             `json:"completed"`
	Errors          int             `json:"errors"`
	PerSecond       float64         `json:"per_second"`
	Latency         latencySummary  `json:"latency_ms"`
	Steps           []stepSummary   `json:"steps"`
	ErrorKinds      map[string]int  `json:"error_kinds"`
	Process         *processSummary `json:"process,omitempty"`
	// burst only: calls the simulator refused for DingTalk's rate limit.
	DingTalkThrottled *int `json:"dingtalk_throttled,omitempty"`
	// -replicas only: how many bridges, and how many requests each served.
	Replicas        int     `json:"replicas,omitempty"`
	ReplicaRequests []int64 `json:"replica_requests,omitempty"`
}

// latencySummary is in milliseconds.
type latencySummary struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type stepSummary struct {
	Step    string         `json:"step"`
	Count   int            `json:"count"`
	Latency latencySummary `json:"latency_ms"`
}

// processSummary is what a local provider process spent: this process with
// -demo (provider, simulator and load generator together), or -pid.
type processSummary struct {
	What       string  `json:"what"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// -demo -database-url on a local server: what Postgres spent (the
	// postmaster and its processes), which this process's figure leaves out.
	PostgresCPUSeconds *float64       `json:"postgres_cpu_seconds,omitempty"`
	CPUMsPerOp         float64        `json:"cpu_ms_per_op"`
	PeakRSSMB          float64        `json:"peak_rss_mb"`
	DingTalkCalls      int            `json:"dingtalk_calls,omitempty"`
	DingTalkCallsPer   float64        `json:"dingtalk_calls_per_op,omitempty"`
	DingTalkEndpoints  map[string]int `json:"dingtalk_endpoints,omitempty"`
}

func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s against %s", r.Scenario, r.Issuer)
	if r.Storage != "" {
		fmt.Fprintf(w, " (demo, %s", r.Storage)
		if r.Replicas > 1 {
			fmt.Fprintf(w, ", %d replicas serving %v requests, each browser alternating", r.Replicas, r.ReplicaRequests)
		}
		fmt.Fprint(w, ")")
	}
	if r.Scenario == scenarioBurst {
		fmt.Fprintf(w, ", %d people arriving over the run, all done after %.1fs\n", r.Concurrency, r.DurationSeconds)
	} else {
		fmt.Fprintf(w, ", %d concurrent, %.1fs\n", r.Concurrency, r.DurationSeconds)
	}
	fmt.Fprintf(w, "%d %s, %d errors: %.1f %s/s\n\n", r.Completed, r.Unit, r.Errors, r.PerSecond, r.Unit)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tcount\tp50 ms\tp95 ms\tp99 ms\tmax ms\tmean ms\t")
	row := func(name string, n int, l latencySummary) {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, n, l.P50, l.P95, l.P99, l.Max, l.Mean)
	}
	row("total", r.Completed, r.Latency)
	for _, s := range r.Steps {
		row(s.Step, s.Count, s.Latency)
	}
	_ = tw.Flush()
	if len(r.ErrorKinds) > 0 {
		fmt.Fprintln(w, "\nerrors by kind:")
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k := range r.ErrorKinds {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			fmt.Fprintf(w, "  %6d  %s\n", r.ErrorKinds[k], k)
		}
	}
	if r.DingTalkThrottled != nil {
		fmt.Fprintf(w, "\nDingTalk calls refused by the simulator's limit of %d/s per API: %d\n", burstSimulatorLimit, *r.DingTalkThrottled)
	}
	if p := r.Process; p != nil {
		fmt.Fprintf(w, "\n%s: %.2f CPU s, %.2f CPU ms per %s, peak RSS %.1f MB\n",
			p.What, p.CPUSeconds, p.CPUMsPerOp, strings.TrimSuffix(r.Unit, "s"), p.PeakRSSMB)
		if p.PostgresCPUSeconds != nil {
			perOp := 0.0
			if r.Completed > 0 {
				perOp = *p.PostgresCPUSeconds * 1000 / float64(r.Completed)
			}
			fmt.Fprintf(w, "Postgres (local server): %.2f CPU s, %.2f CPU ms per %s\n", *p.PostgresCPUSeconds, perOp, strings.TrimSuffix(r.Unit, "s"))
		}
		if p.DingTalkEndpoints != nil {
			fmt.Fprintf(w, "DingTalk API calls: %d, %.2f per %s", p.DingTalkCalls, p.DingTalkCallsPer, strings.TrimSuffix(r.Unit, "s"))
			eps := make([]string, 0, len(p.DingTalkEndpoints))
			for e := range p.DingTalkEndpoints {
				eps = append(eps, e)
			}
			slices.Sort(eps)
			for _, e := range eps {
				fmt.Fprintf(w, "; %s: %d", e, p.DingTalkEndpoints[e])
			}
			fmt.Fprintln(w)
		}
	}
}

// benchTarget is what the load runs against.
type benchTarget struct {
	o         benchOptions
	transport *http.Transport
	served    []atomic.Int64 // requests sent to each replica
	started   atomic.Uint64  // transports made: where the next one starts
	plain     *http.Client   // no cookies, for the back channel
	provider  *oidc.Provider
	clients   [2]benchClient // the app, and the sso scenario's second app
	jwksURL   string
}

type benchClient struct {
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// benchDingTalkEndpoints are the simulator's server-to-server APIs: what
// counts against DingTalk's limits.
var benchDingTalkEndpoints = []string{
	fake.EndpointAppToken, fake.EndpointCorpToken, fake.EndpointUserToken, fake.EndpointContactUser,
	fake.EndpointGetToken, fake.EndpointUserByUnionID, fake.EndpointUser, fake.EndpointUserInfoByCode,
	fake.EndpointLegacyUserInfo, fake.EndpointSNSUserInfo, fake.EndpointDepartmentSub,
	fake.EndpointDepartmentSubIDs, fake.EndpointDepartment, fake.EndpointUserIDs, fake.EndpointUserList,
}

// bench sets up (and with -demo starts) the target, runs the load and
// returns the report.
func bench(ctx context.Context, o benchOptions, stderr io.Writer) (*benchReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sim *fake.Server
	storage := ""
	if o.demo {
		w, err := startBenchDemo(ctx, &o, stderr)
		if err != nil {
			return nil, err
		}
		defer w.stop()
		sim = w.sim
		storage = "memory"
		if w.postgres {
			storage = "postgres"
		}
	}
	t, err := newBenchTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer t.transport.CloseIdleConnections()

	// Browsers that need a session or a refresh token sign in first; that
	// is not measured.
	if o.scenario == scenarioBurst {
		o.concurrency = 0 // the burst's browsers come and go
	}
	browsers := make([]*benchBrowser, o.concurrency)
	var prepErr error
	var prepMu sync.Mutex
	var wg sync.WaitGroup
	for i := range browsers {
		browsers[i] = t.newBrowser()
		wg.Go(func() {
			if err := t.prepare(ctx, browsers[i]); err != nil {
				prepMu.Lock()
				prepErr = err
				prepMu.Unlock()
			}
		})
	}
	wg.Wait()
	if prepErr != nil {
		return nil, fmt.Errorf("preparing the browsers (a first sign-in each): %w", prepErr)
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if sim != nil {
		sim.ResetCalls()
	}
	cpu0, err := benchCPU(o)
	if err != nil {
		return nil, err
	}
	pgPID := localPostgresPID(ctx, o.databaseURL)
	pgCPU0 := postgresCPU(pgPID)
	start := time.Now()
	var results []benchResults
	if o.scenario == scenarioBurst {
		results = t.burst(ctx)
	} else {
		results = make([]benchResults, o.concurrency)
		for i, b := range browsers {
			wg.Go(func() { t.loop(ctx, start.Add(o.duration), b, &results[i]) })
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	cpu1, err := benchCPU(o)
	if err != nil {
		return nil, err
	}
	pgCPU1 := postgresCPU(pgPID)

	rep := summarize(o, results, elapsed)
	rep.Storage = storage
	if o.replicas > 1 {
		rep.Replicas = o.replicas
		for i := range t.served {
			rep.ReplicaRequests = append(rep.ReplicaRequests, t.served[i].Load())
		}
	}
	if o.scenario == scenarioBurst && sim != nil {
		n := 0
		for _, e := range benchDingTalkEndpoints {
			n += sim.Throttled(e)
		}
		rep.DingTalkThrottled = &n
	}
	if o.demo || o.pid != 0 {
		p := &processSummary{What: "this process (provider + DingTalk simulator + load generator)", CPUSeconds: cpu1 - cpu0}
		if pgPID != 0 {
			s := pgCPU1 - pgCPU0
			p.PostgresCPUSeconds = &s
		}
		if o.pid != 0 {
			p.What = fmt.Sprintf("process %d", o.pid)
		}
		if rep.Completed > 0 {
			p.CPUMsPerOp = p.CPUSeconds * 1000 / float64(rep.Completed)
		}
		p.PeakRSSMB, err = benchPeakRSS(o.pid)
		if err != nil {
			return nil, err
		}
		if sim != nil {
			p.DingTalkEndpoints = map[string]int{}
			for _, e := range benchDingTalkEndpoints {
				if n := sim.Calls(e); n > 0 {
					p.DingTalkEndpoints[e] = n
					p.DingTalkCalls += n
				}
			}
			if rep.Completed > 0 {
				p.DingTalkCallsPer = float64(p.DingTalkCalls) / float64(rep.Completed)
			}
		}
		rep.Process = p
	}
	return rep, nil
}

// benchDemo is the demo's wiring as bench runs it: the DingTalk simulator
// and dingbridge on loopback ports, two bench clients (a second one for the
// sso scenario) restricted to one corp, and the simulator approving every
// DingTalk login at once as a linked person. The sample applications are
// left out: the bench itself is the relying party.
type benchDemo struct {
	sim      *fake.Server
	postgres bool
	stop     func()
}

// startBenchDemo starts the demo's wiring and points o at it.
func startBenchDemo(ctx context.Context, o *benchOptions, stderr io.Writer) (_ *benchDemo, err error) {
	ctx, cancel := context.WithCancel(ctx)
	logger := newLogger(stderr, "error", "text")
	slog.SetDefault(logger) // the OIDC library logs through slog's default logger, as in demo
	var closers []func()
	var wg sync.WaitGroup
	d := &benchDemo{postgres: o.databaseURL != ""}
	d.stop = func() {
		cancel()
		wg.Wait()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	// The bridges' listeners, then the simulator's.
	lns := make([]net.Listener, o.replicas+1)
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		closers = append(closers, func() { lns[i].Close() })
	}
	simLn := lns[o.replicas]
	fixture := fake.DefaultFixture()
	if o.corp == "" {
		o.corp = fake.DemoCorpID
	}
	dtURL := "http://" + simLn.Addr().String()
	people := 0
	switch {
	case o.scenario == scenarioBurst:
		people = o.n
	case o.users > 1:
		people = o.users
	}
	population := fixture.AddPopulation(o.corp, people) // seedDemo links them all
	d.sim = fake.New(fake.Options{Fixture: &fixture, BaseURL: dtURL, Logger: logger})
	if len(population) > 0 {
		d.sim.SetAutoApproveEach(o.corp, population)
	} else {
		d.sim.SetAutoApprove(o.corp, "zhangsan")
	}
	if o.scenario == scenarioBurst {
		d.sim.SetRateLimit(burstSimulatorLimit)
	}

	issuer := "http://" + lns[0].Addr().String()
	cfg := demoConfig(issuer, dtURL, &fixture, nil)
	if o.databaseURL != "" {
		cfg.Secrets.KeyEncryptionKey = demoDatabaseKEK // a database may be benched twice
	}
	cfg.DingTalk.RateLimit = o.dingTalkRateLimit
	cfg.DingTalk.SharedRateLimit = &o.sharedRateLimit
	for _, id := range []string{"bench", "bench-sso"} {
		cfg.Clients = append(cfg.Clients, ClientConfig{
			ID: id, Name: id, Secret: randomKey(),
			RedirectURIs:      []string{"http://127.0.0.1:9/" + id + "/callback"}, // never fetched
			Scopes:            []string{"openid", "profile", "email", "phone", "groups", "offline_access", "dingtalk"},
			Corps:             []string{o.corp},
			IDTokenSigningAlg: o.demoAlg,
		})
	}
	cfg.applyDefaults()
	if err := cfg.Validate(false); err != nil {
		return nil, fmt.Errorf("bench demo configuration: %w", err)
	}
	c1, c2 := cfg.Clients[0], cfg.Clients[1]
	o.issuer = issuer
	o.clientID, o.clientSecret, o.redirectURI = c1.ID, c1.Secret, c1.RedirectURIs[0]
	o.client2ID, o.client2Secret, o.redirect2URI = c2.ID, c2.Secret, c2.RedirectURIs[0]

	// Each replica is wired as a process of its own would be, with its own
	// database pool; they share the database, the configuration (KEK,
	// cookie keys, clients) and the simulator.
	handlers := []http.Handler{}
	for i := range o.replicas {
		store, accounts, closeDB, err := demoStores(ctx, o.databaseURL)
		if err != nil {
			return nil, err
		}
		closers = append(closers, closeDB)
		if i == 0 {
			if _, err := seedDemo(ctx, accounts, &fixture); err != nil {
				return nil, err
			}
		}
		b, err := buildBridge(ctx, cfg, store, accounts, nil, logger)
		if err != nil {
			return nil, err
		}
		handlers = append(handlers, b.router)
		o.replicaAddrs = append(o.replicaAddrs, lns[i].Addr().String())
	}
	for i, h := range append(handlers, d.sim) {
		srv := newHTTPServer(h, logger)
		wg.Go(func() { _ = serveUntilDone(ctx, srv, lns[i], nil, logger) })
	}

	// Wait until every provider is ready (its signing keys exist).
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range o.replicaAddrs {
		for {
			resp, err := http.Get("http://" + addr + "/healthz/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return nil, errors.New("the demo was not ready within 30s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return d, nil
}

func newBenchTarget(ctx context.Context, o benchOptions) (*benchTarget, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4 * o.concurrency
	tr.MaxIdleConnsPerHost = 2 * o.concurrency
	t := &benchTarget{o: o, transport: tr, served: make([]atomic.Int64, max(len(o.replicaAddrs), 1))}
	plain := &http.Client{Transport: t.alternate(), Timeout: o.timeout}
	t.plain = plain
	pctx := oidc.ClientContext(ctx, plain)
	p, err := oidc.NewProvider(pctx, o.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	t.provider = p
	var claims struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&claims); err != nil || claims.JWKSURI == "" {
		return nil, fmt.Errorf("discovery document names no jwks_uri (%v)", err)
	}
	t.jwksURL = claims.JWKSURI
	if o.client2ID == "" {
		o.client2ID, o.client2Secret, o.redirect2URI = o.clientID, o.clientSecret, o.redirectURI
	}
	scopes := strings.Fields(o.scopes)
	for i, c := range [][3]string{{o.clientID, o.clientSecret, o.redirectURI}, {o.client2ID, o.client2Secret, o.redirect2URI}} {
		t.clients[i] = benchClient{
			oauth: &oauth2.Config{ClientID: c[0], ClientSecret: c[1], RedirectURL: c[2], Endpoint: p.Endpoint(), Scopes: scopes},
			// The key set is fetched once and cached by go-oidc, as a relying party does.
			verifier: p.Verifier(&oidc.Config{ClientID: c[0]}),
		}
	}
	return t, nil
}

// alternate returns the transport of one browser (or of the back
// channel): with several replicas, it sends each request for the issuer to
// the replica after the one the previous request went to, as a load
// balancer without session affinity would at worst. Nothing a sign-in
// needs may then live in one replica's memory.
func (t *benchTarget) alternate() http.RoundTripper {
	if len(t.o.replicaAddrs) < 2 {
		return t.transport
	}
	u, _ := url.Parse(t.o.issuer)
	a := &alternating{next: t.transport, host: u.Host, addrs: t.o.replicaAddrs, served: t.served}
	// Browsers start on different replicas, so that no step of the flow
	// always lands on the same one.
	a.n.Store(t.started.Add(1))
	return a
}

// alternating is a RoundTripper that spreads requests for host over addrs
// in turn; the Host header stays host.
type alternating struct {
	next   http.RoundTripper
	host   string
	addrs  []string
	served []atomic.Int64
	n      atomic.Uint64
}

func (a *alternating) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != a.host {
		return a.next.RoundTrip(r)
	}
	i := int((a.n.Add(1) - 1) % uint64(len(a.addrs)))
	a.served[i].Add(1)
	r2 := r.Clone(r.Context())
	r2.URL.Host, r2.Host = a.addrs[i], a.host
	return a.next.RoundTrip(r2)
}

// benchBrowser is one virtual browser.
type benchBrowser struct {
	http         *http.Client // with its cookies, following no redirects
	refreshToken string
}

func (t *benchTarget) newBrowser() *benchBrowser {
	jar, _ := cookiejar.New(nil)
	return &benchBrowser{http: &http.Client{
		Transport: t.alternate(), Jar: jar, Timeout: t.o.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// prepare signs b in once for the scenarios that need a session or a
// refresh token.
func (t *benchTarget) prepare(ctx context.Context, b *benchBrowser) error {
	if t.o.scenario != scenarioSSO && t.o.scenario != scenarioRefresh {
		return nil
	}
	var r benchResults
	tok, err := t.signIn(ctx, b, &t.clients[0], &r)
	if err != nil {
		return err
	}
	if t.o.scenario == scenarioRefresh {
		if tok.RefreshToken == "" {
			return errors.New("no refresh token issued (does the client allow offline_access?)")
		}
		b.refreshToken = tok.RefreshToken
	}
	return nil
}

// benchResults are one browser's measurements.
type benchResults struct {
	total  []time.Duration
	steps  map[string][]time.Duration
	errors map[string]int
}

func (r *benchResults) step(name string, d time.Duration) {
	if r.steps == nil {
		r.steps = map[string][]time.Duration{}
	}
	r.steps[name] = append(r.steps[name], d)
}

// benchError is a failed operation, with the kind it is counted under.
type benchError struct {
	kind string
	err  error
}

func (e *benchError) Error() string { return e.kind + ": " + e.err.Error() }

func failed(kind string, err error) error { return &benchError{kind, err} }

// loop runs operations until the deadline (or ctx ends).
//
// A browser starts sign-ins until the deadline and finishes the one under
// way then, which is counted: cutting it off would count nothing for the
// work the provider did, and make it log errors for requests whose
// browser went away. The run's elapsed time includes that tail.
func (t *benchTarget) loop(ctx context.Context, deadline time.Time, b *benchBrowser, r *benchResults) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		var steps benchResults
		start := time.Now()
		err := t.once(ctx, b, &steps)
		d := time.Since(start)
		if ctx.Err() != nil {
			return // interrupted (^C): not counted
		}
		for name, ds := range steps.steps {
			for _, d := range ds {
				r.step(name, d)
			}
		}
		if err != nil {
			if r.errors == nil {
				r.errors = map[string]int{}
			}
			kind := "other"
			var be *benchError
			if errors.As(err, &be) {
				kind = be.kind
			}
			r.errors[kind]++
			continue
		}
		r.total = append(r.total, d)
	}
}

// burst starts o.n fresh sign-ins, each in a new browser, evenly over
// o.arrive, and waits for all of them. A browser waits as long as a person
// would for a page (burstPageTimeout), not the -timeout of the other
// scenarios: a sign-in that queues for DingTalk is slow, not failed.
func (t *benchTarget) burst(ctx context.Context) []benchResults {
	results := make([]benchResults, t.o.n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range t.o.n {
		at := start.Add(time.Duration(int64(t.o.arrive) * int64(i) / int64(t.o.n)))
		wg.Go(func() {
			if err := sleepUntil(ctx, at); err != nil {
				return
			}
			b := t.newBrowser()
			b.http.Timeout = burstPageTimeout
			var steps benchResults
			begin := time.Now()
			_, err := t.signIn(ctx, b, &t.clients[0], &steps)
			r := &results[i]
			r.steps = steps.steps
			if err != nil {
				kind := "other"
				if be, ok := errors.AsType[*benchError](err); ok {
					kind = be.kind
				}
				r.errors = map[string]int{kind: 1}
				return
			}
			r.total = []time.Duration{time.Since(begin)}
		})
	}
	wg.Wait()
	return results
}

// burstPageTimeout is how long a burst's browser waits for one page: a
// minute, as browsers wait much longer than the server's write timeout.
const burstPageTimeout = time.Minute

func sleepUntil(ctx context.Context, at time.Time) error {
	tm := time.NewTimer(time.Until(at))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *benchTarget) once(ctx context.Context, b *benchBrowser, r *benchResults) error {
	switch t.o.scenario {
	case scenarioFresh:
		b.http.Jar, _ = cookiejar.New(nil) // a new browser each time
		_, err := t.signIn(ctx, b, &t.clients[0], r)
		return err
	case scenarioSSO:
		_, err := t.signIn(ctx, b, &t.clients[1], r)
		return err
	case scenarioRefresh:
		return t.refresh(ctx, b, r)
	case scenarioJWKS:
		return t.get(ctx, b, t.jwksURL, "jwks", r)
	default:
		return t.get(ctx, b, t.o.issuer+"/.well-known/openid-configuration", "discovery", r)
	}
}

// pickerLink finds the corp picker's links on a page.
var pickerLink = regexp.MustCompile(`href="([^"]*/login/corp\?[^"]*)"`)

// signIn runs one complete sign-in of b with c and returns the tokens.
func (t *benchTarget) signIn(ctx context.Context, b *benchBrowser, c *benchClient, r *benchResults) (*oauth2.Token, error) {
	state, nonce, verifier := benchRandom(), benchRandom(), oauth2.GenerateVerifier()
	next := c.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	issuer, _ := url.Parse(t.o.issuer)
	var code string
	for hop := 0; ; hop++ {
		if hop == 12 {
			return nil, failed("too_many_redirects", errors.New(next))
		}
		u, err := url.Parse(next)
		if err != nil {
			return nil, failed("bad_location", err)
		}
		if strings.HasPrefix(next, c.oauth.RedirectURL) {
			q := u.Query()
			if e := q.Get("error"); e != "" {
				return nil, failed("authorize_error:"+e, errors.New(q.Get("error_description")))
			}
			if q.Get("state") != state {
				return nil, failed("state_mismatch", errors.New(next))
			}
			code = q.Get("code")
			break
		}
		step := benchStep(issuer, u)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, failed("bad_location", err)
		}
		req.Header.Set("User-Agent", benchUserAgent)
		req.Header.Set("Accept", "text/html")
		start := time.Now()
		resp, err := b.http.Do(req)
		if err != nil {
			return nil, failed("transport@"+step, err)
		}
		var body []byte
		if resp.StatusCode == http.StatusOK {
			body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		r.step(step, time.Since(start))
		if err != nil {
			return nil, failed("transport@"+step, err)
		}
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusTemporaryRedirect:
			loc, err := resp.Location()
			if err != nil {
				return nil, failed("bad_location@"+step, err)
			}
			next = loc.String()
		case resp.StatusCode == http.StatusOK:
			link := t.corpLink(body)
			if link == "" {
				return nil, failed("stuck_on_page@"+step, fmt.Errorf("%s answered a page the bench cannot complete", u.Path))
			}
			ref, err := u.Parse(link)
			if err != nil {
				return nil, failed("bad_location@"+step, err)
			}
			next = ref.String()
		default:
			return nil, failed(fmt.Sprintf("http_%d@%s", resp.StatusCode, step), errors.New(u.Path))
		}
	}

	start := time.Now()
	tok, err := c.oauth.Exchange(oidc.ClientContext(ctx, t.plain), code, oauth2.VerifierOption(verifier))
	r.step("token", time.Since(start))
	if err != nil {
		return nil, failed(tokenErrorKind("token", err), err)
	}
	start = time.Now()
	err = t.verify(ctx, c, tok, nonce)
	r.step("verify", time.Since(start))
	return tok, err
}

// corpLink returns the corp picker's link for the chosen corp, or "".
func (t *benchTarget) corpLink(body []byte) string {
	var first string
	for _, m := range pickerLink.FindAllSubmatch(body, -1) {
		link := html.UnescapeString(string(m[1]))
		if first == "" {
			first = link
		}
		if t.o.corp != "" {
			if u, err := url.Parse(link); err == nil && u.Query().Get("corp") == t.o.corp {
				return link
			}
		}
	}
	return first
}

func (t *benchTarget) verify(ctx context.Context, c *benchClient, tok *oauth2.Token, nonce string) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return failed("no_id_token", errors.New("the token response has no id_token"))
	}
	idt, err := c.verifier.Verify(oidc.ClientContext(ctx, t.plain), raw)
	if err != nil {
		return failed("id_token_invalid", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		return failed("nonce_mismatch", errors.New("the ID token's nonce is not the request's"))
	}
	return nil
}

// refresh runs one refresh-token grant (tokens rotate) and verifies the new
// ID token, if one is issued.
func (t *benchTarget) refresh(ctx context.Context, b *benchBrowser, r *benchResults) error {
	c := &t.clients[0]
	start := time.Now()
	tok, err := c.oauth.TokenSource(oidc.ClientContext(ctx, t.plain), &oauth2.Token{RefreshToken: b.refreshToken, Expiry: time.Unix(1, 0)}).Token()
	r.step("refresh", time.Since(start))
	if err != nil {
		return failed(tokenErrorKind("refresh", err), err)
	}
	if tok.RefreshToken != "" {
		b.refreshToken = tok.RefreshToken
	}
	if _, ok := tok.Extra("id_token").(string); !ok {
		return nil
	}
	start = time.Now()
	err = t.verify(ctx, c, tok, "")
	r.step("verify", time.Since(start))
	return err
}

func (t *benchTarget) get(ctx context.Context, b *benchBrowser, u, step string, r *benchResults) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return failed("bad_url", err)
	}
	start := time.Now()
	resp, err := t.plain.Do(req)
	if err != nil {
		return failed("transport@"+step, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.step(step, time.Since(start))
	if err != nil {
		return failed("transport@"+step, err)
	}
	if resp.StatusCode != http.StatusOK {
		return failed(fmt.Sprintf("http_%d@%s", resp.StatusCode, step), errors.New(u))
	}
	return nil
}

// tokenErrorKind names a token endpoint failure by its OAuth error code.
func tokenErrorKind(step string, err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return step + ":" + re.ErrorCode
		}
		if re.Response != nil {
			return fmt.Sprintf("%s:http_%d", step, re.Response.StatusCode)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "transport@" + step
	}
	return step + ":other"
}

// benchStep names the step a URL is: "upstream" off the issuer's host, else
// the first segment of its path below the issuer ("authorize", "login",
// "callback" for DingTalk's return leg, …).
func benchStep(issuer, u *url.URL) string {
	if u.Host != issuer.Host {
		return "upstream"
	}
	rel := strings.TrimPrefix(u.Path, strings.TrimRight(issuer.Path, "/"))
	rel = strings.Trim(rel, "/")
	parts := strings.SplitN(rel, "/", 3)
	switch {
	case len(parts) >= 2 && parts[0] == "login" && parts[1] == "callback":
		return "callback"
	case len(parts) >= 2 && parts[0] == "authorize" && parts[1] == "callback":
		return "authorize_callback"
	case len(parts) >= 2 && parts[0] == "login" && parts[1] == "corp":
		return "corp_picker"
	case parts[0] == "":
		return "root"
	}
	return parts[0]
}

func benchRandom() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func summarize(o benchOptions, results []benchResults, elapsed time.Duration) *benchReport {
	rep := &benchReport{
		Scenario: o.scenario, Issuer: o.issuer, Concurrency: o.concurrency,
		DurationSeconds: elapsed.Seconds(), ErrorKinds: map[string]int{},
	}
	switch o.scenario {
	case scenarioFresh, scenarioSSO, scenarioBurst:
		rep.Unit = "sign-ins"
	case scenarioRefresh:
		rep.Unit = "refresh grants"
	default:
		rep.Unit = "requests"
	}
	var total []time.Duration
	steps := map[string][]time.Duration{}
	var order []string
	for _, r := range results {
		total = append(total, r.total...)
		for k, ds := range r.steps {
			if _, ok := steps[k]; !ok {
				order = append(order, k)
			}
			steps[k] = append(steps[k], ds...)
		}
		for k, n := range r.errors {
			rep.ErrorKinds[k] += n
			rep.Errors += n
		}
	}
	rep.Completed = len(total)
	if o.scenario == scenarioBurst {
		rep.Concurrency = o.n
	}
	rep.PerSecond = float64(rep.Completed) / elapsed.Seconds()
	rep.Latency = summarizeLatency(total)
	rank := map[string]int{"authorize": 1, "login": 2, "corp_picker": 3, "upstream": 4, "callback": 5, "authorize_callback": 6, "token": 7, "refresh": 7, "verify": 8}
	slices.SortFunc(order, func(a, b string) int {
		if ra, rb := rank[a], rank[b]; ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	for _, k := range order {
		rep.Steps = append(rep.Steps, stepSummary{Step: k, Count: len(steps[k]), Latency: summarizeLatency(steps[k])})
	}
	return rep
}

func summarizeLatency(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ms(ds[max(0, min(i, len(ds)-1))])
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latencySummary{P50: pct(0.50), P95: pct(0.95), P99: pct(0.99), Max: ms(ds[len(ds)-1]), Mean: ms(sum / time.Duration(len(ds)))}
}

// benchCPU returns the CPU seconds (user + system) of this process, or of
// -pid.
func benchCPU(o benchOptions) (float64, error) {
	if o.pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, fmt.Errorf("getrusage: %w", err)
		}
		tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
		return tv(ru.Utime) + tv(ru.Stime), nil
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.pid))
	if err != nil {
		return 0, fmt.Errorf("-pid: %w", err)
	}
	// Fields after the command name (which may contain spaces): state is
	// field 3, utime 14, stime 15, in clock ticks (100 per second on Linux).
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("-pid: /proc/%d/stat is short", o.pid)
	}
	ut, err1 := strconv.ParseFloat(fields[11], 64)
	st, err2 := strconv.ParseFloat(fields[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("-pid: %w", err)
	}
	return (ut + st) / 100, nil
}

// benchPeakRSS returns VmHWM of this process (pid 0) or of pid, in MB.
func benchPeakRSS(pid int) (float64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, nil // not Linux: no figure
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: VmHWM: %w", path, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, nil
}

// localPostgresPID returns the postmaster's process id of the database at
// dbURL when it runs on this machine and its data directory is readable
// (postmaster.pid), else 0: then no Postgres CPU is reported.
func localPostgresPID(ctx context.Context, dbURL string) int {
	if dbURL == "" {
		return 0
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var dir string
	if err := conn.QueryRow(ctx, "select current_setting('data_directory')").Scan(&dir); err != nil {
		return 0
	}
	raw, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		return 0
	}
	return pid
}

// postgresCPU returns the CPU seconds of the postmaster pid, of the
// processes it has reaped (cutime, cstime) and of its live children
// (backends), from /proc; 0 for pid 0.
func postgresCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	total := 0.0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		s := string(raw)
		// After the command name: state (3), ppid (4), …, utime (14),
		// stime (15), cutime (16), cstime (17), in clock ticks.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if child != pid && ppid != pid {
			continue
		}
		n := 2 // utime, stime
		if child == pid {
			n = 4 // and what the processes it reaped spent
		}
		for _, v := range f[11 : 11+n] {
			x, _ := strconv.ParseFloat(v, 64)
			total += x / 100
		}
	}
	return total
}
