package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations"
)

// demoAddrs are where the demo's four servers listen.
type demoAddrs struct {
	bridge, dingtalk, app1, app2 string
	metrics                      string // "": no metrics listener
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "demo [-listen addr] [-dingtalk-listen addr] [-app-listen addr] [-app2-listen addr] [-database-url url] [-auto-approve [corp/]userid] [-client-secret s]",
		"Runs the whole product on this machine: dingbridge, a simulated DingTalk (login\n"+
			"page, QR frame, workbench) and two sample applications that sign in through\n"+
			"dingbridge. Nothing leaves the machine. State is in memory (gone when it stops)\n"+
			"unless -database-url names a Postgres database.", stderr)
	var a demoAddrs
	fs.StringVar(&a.bridge, "listen", "127.0.0.1:8080", "address of dingbridge")
	fs.StringVar(&a.dingtalk, "dingtalk-listen", "127.0.0.1:8081", "address of the DingTalk simulator")
	fs.StringVar(&a.app1, "app-listen", "127.0.0.1:8082", "address of the first sample application")
	fs.StringVar(&a.app2, "app2-listen", "127.0.0.1:8083", "address of the second sample application")
	fs.StringVar(&a.metrics, "metrics-listen", "", "serve Prometheus metrics at /metrics on this address (default: none)")
	dbURL := fs.String("database-url", "", "keep state in this Postgres database instead of memory")
	logLevel := fs.String("log-level", "warn", "debug | info | warn | error")
	var x demoExtra
	fs.StringVar(&x.autoApprove, "auto-approve", "", "the simulated DingTalk approves every login at once as this person ([corp id/]userid; default corp: the first), without a page: for dingbridge bench -issuer")
	fs.StringVar(&x.clientSecret, "client-secret", "", "the sample applications' client secret (default: random), so that dingbridge bench can use client wiki or oa")
	fs.Float64Var(&x.rateLimit, "dingtalk-rate-limit", 0, "dingbridge's own limit of calls per second per DingTalk API (dingtalk.rate_limit; default 20)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	logger := newLogger(stderr, *logLevel, "text")
	if err := demo(ctx, a, *dbURL, logger, stdout, x); err != nil {
		fmt.Fprintf(stderr, "dingbridge demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// demoExtra are the demo's flags for driving it without a person.
type demoExtra struct {
	autoApprove  string // [corp/]userid the simulator approves every login as
	clientSecret string // the sample applications' secret; "" is random
	rateLimit    float64
}

// demoApp is one sample application of the demo.
type demoApp struct {
	clientID, name string
	ln             net.Listener
	secret         string
}

// demo wires the same parts as serve, with the DingTalk simulator in place
// of DingTalk and (by default) memory in place of Postgres.
func demo(ctx context.Context, addrs demoAddrs, dbURL string, logger *slog.Logger, stdout io.Writer, x demoExtra) error {
	w, err := newDemo(ctx, addrs, dbURL, logger, x)
	if err != nil {
		return err
	}
	defer w.close()
	return w.serve(stdout)
}

// demoServer is one of the demo's HTTP servers.
type demoServer struct {
	name  string
	ln    net.Listener
	h     http.Handler
	drain func(context.Context) error // nil, or what serveUntilDone drains
}

// demoWorld is the demo, wired but not yet serving: what newDemo builds
// and serve runs. Tests reach the simulator and the mapping through it.
type demoWorld struct {
	ctx      context.Context // ends when close is called
	cancel   context.CancelFunc
	logger   *slog.Logger
	cfg      *Config
	fixture  *fake.Fixture
	sim      *fake.Server
	store    idp.Store           // the provider's state
	login    *idp.DingTalkConfig // the sign-in, with the DingTalk clients it uses
	accounts mapping.Store
	apps     []*demoApp
	servers  []demoServer
	people   []string
	postgres bool
	metrics  *metrics
	// metricsURL is where the metrics are served; "" when they are not.
	metricsURL string
	closers    []func()
}

// close stops whatever newDemo started: the provider's background work,
// the database pool and the listeners.
func (w *demoWorld) close() {
	w.cancel()
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// newDemo listens on addrs and wires the simulator, dingbridge and the
// sample applications; nothing is served until serve.
func newDemo(ctx context.Context, addrs demoAddrs, dbURL string, logger *slog.Logger, extra ...demoExtra) (_ *demoWorld, err error) {
	var x demoExtra
	if len(extra) > 0 {
		x = extra[0]
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &demoWorld{ctx: ctx, cancel: cancel, logger: logger, postgres: dbURL != ""}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	lns := map[string]net.Listener{}
	for _, l := range []struct{ name, addr, flag string }{
		{"bridge", addrs.bridge, "-listen"}, {"dingtalk", addrs.dingtalk, "-dingtalk-listen"},
		{"app1", addrs.app1, "-app-listen"}, {"app2", addrs.app2, "-app2-listen"},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (choose another with %s): %w", l.addr, l.flag, err)
		}
		w.closers = append(w.closers, func() { ln.Close() })
		lns[l.name] = ln
	}
	apps := []*demoApp{
		{clientID: "wiki", name: "内部知识库 Wiki", ln: lns["app1"]},
		{clientID: "oa", name: "办公系统 OA", ln: lns["app2"]},
	}
	for _, app := range apps {
		app.secret = x.clientSecret
		if app.secret == "" {
			app.secret = randomKey()
		}
	}
	w.apps = apps

	fixture := fake.DefaultFixture()
	w.fixture = &fixture
	dtURL := "http://" + lns["dingtalk"].Addr().String()
	sim := fake.New(fake.Options{Fixture: &fixture, BaseURL: dtURL, Logger: logger})
	w.sim = sim
	if x.autoApprove != "" {
		corp, user, ok := strings.Cut(x.autoApprove, "/")
		if !ok {
			corp, user = fixture.Corps[0].ID, x.autoApprove
		}
		if c := fixtureCorp(&fixture, corp); c == nil || !slices.ContainsFunc(c.Employees, func(e fake.Employee) bool { return e.UserID == user }) {
			return nil, fmt.Errorf("-auto-approve %q: no such person in the simulated corps", x.autoApprove)
		}
		sim.SetAutoApprove(corp, user)
	}
	cfg := demoConfig("http://"+lns["bridge"].Addr().String(), dtURL, &fixture, apps)
	if dbURL != "" {
		cfg.Secrets.KeyEncryptionKey = demoDatabaseKEK
	}
	if x.rateLimit != 0 {
		cfg.DingTalk.RateLimit = x.rateLimit
	}
	if err := cfg.Validate(false); err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	w.cfg = cfg

	slog.SetDefault(logger) // the OIDC library logs through slog's default logger

	m := newMetrics()
	store, accounts, closeDB, err := demoStoresTraced(ctx, dbURL, queryTracer{m})
	if err != nil {
		return nil, err
	}
	w.closers = append(w.closers, closeDB)
	w.store, w.accounts = store, accounts
	people, err := seedDemo(ctx, accounts, &fixture)
	if err != nil {
		return nil, err
	}
	w.people = people
	b, err := buildBridgeWith(ctx, cfg, store, accounts, nil, m, logger)
	if err != nil {
		return nil, err
	}
	w.login, w.metrics = b.login, m

	w.servers = []demoServer{
		{"DingTalk simulator", lns["dingtalk"], sim, nil},
		{"dingbridge", lns["bridge"], b.router, b.drain},
	}
	if addrs.metrics != "" {
		ln, err := net.Listen("tcp", addrs.metrics)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (choose another with -metrics-listen): %w", addrs.metrics, err)
		}
		w.closers = append(w.closers, func() { ln.Close() })
		w.metricsURL = "http://" + ln.Addr().String() + "/metrics"
		w.servers = append(w.servers, demoServer{"metrics", ln, m.handler(logger), nil})
	}
	for _, app := range apps {
		base := "http://" + app.ln.Addr().String()
		h, err := newSampleApp(sampleAppConfig{Issuer: cfg.Issuer, ClientID: app.clientID, ClientSecret: app.secret,
			BaseURL: base, Name: app.name, Logger: logger})
		if err != nil {
			return nil, err
		}
		w.servers = append(w.servers, demoServer{app.name, app.ln, h, nil})
		for _, corp := range fixture.Corps {
			sim.AddWorkbenchApp(corp.ID, app.name, cfg.Issuer+"/workbench/"+app.clientID+"?corpId=$CORPID$")
		}
	}
	return w, nil
}

// serve runs the demo's servers until close is called or one fails,
// printing how to use it once the wiring is proven.
func (w *demoWorld) serve(stdout io.Writer) error {
	ctx, cancel, logger := w.ctx, w.cancel, w.logger
	var wg sync.WaitGroup
	errs := make([]error, len(w.servers))
	for i, s := range w.servers {
		srv := newHTTPServer(s.h, logger)
		wg.Go(func() {
			if err := serveUntilDone(ctx, srv, s.ln, s.drain, logger); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				cancel() // one server failing stops the demo
			}
		})
	}

	// Prove the wiring before telling anyone to use it: the real DingTalk
	// client fetches an app token from the simulator for every corp.
	checks, err := checkCorps(ctx, w.cfg, w.login)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	if w.metricsURL != "" {
		fmt.Fprintf(stdout, "dingbridge metrics on %s\n", w.metricsURL)
	}
	printDemo(stdout, w.cfg, w.fixture, w.apps, checks, w.people, w.postgres)
	wg.Wait()
	return errors.Join(errs...)
}

// demoStores returns the provider's and the mapping's stores: in memory,
// or in the Postgres database at dbURL (migrated first).
func demoStores(ctx context.Context, dbURL string) (idp.Store, mapping.Store, func(), error) {
	return demoStoresTraced(ctx, dbURL, nil)
}

// demoStoresTraced is demoStores with every Postgres statement reported to
// tracer (when not nil).
func demoStoresTraced(ctx context.Context, dbURL string, tracer pgx.QueryTracer) (idp.Store, mapping.Store, func(), error) {
	if dbURL == "" {
		return idp.NewMemoryStore(), mapping.NewMemory(mapping.Options{}), func() {}, nil
	}
	pool, err := openDatabaseTraced(ctx, DatabaseConfig{URL: dbURL}, tracer)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, nil, fmt.Errorf("migrate %s: %w", "-database-url", err)
	}
	return idp.NewPostgresStore(pool), mapping.NewPostgres(pool, mapping.Options{}), pool.Close, nil
}

// fixtureCorp returns the corp with id in f, or nil.
func fixtureCorp(f *fake.Fixture, id string) *fake.Corp {
	for i := range f.Corps {
		if f.Corps[i].ID == id {
			return &f.Corps[i]
		}
	}
	return nil
}

// demoDatabaseKEK is the demo's key-encryption key when its state is in
// Postgres (-database-url), so that a second run can decrypt the signing
// keys and app tokens the first one stored there: with a fresh random key
// each run, a reused database left the demo waiting forever for keys it
// could not read. It is public, like everything else about the demo; serve
// takes its key from the configuration only.
const demoDatabaseKEK = "ZGVtby1vbmx5OiBkaW5nYnJpZGdlIGRlbW8ga2V5ISE="

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.StdEncoding.EncodeToString(b)
}

// demoConfig is the configuration demo runs with: the simulator's corps and
// apps, the sample applications as clients, fresh random keys.
func demoConfig(issuer, dtURL string, fixture *fake.Fixture, apps []*demoApp) *Config {
	cfg := &Config{
		Issuer: issuer,
		Secrets: SecretsConfig{
			KeyEncryptionKey: randomKey(), CookieHashKey: randomKey(), CookieBlockKey: randomKey(),
		},
		DingTalk: DingTalkConfig{
			APIBaseURL: dtURL, OAPIBaseURL: dtURL, LoginBaseURL: dtURL,
			JSAPIScriptURL: dtURL + "/fake/jsapi.js",
			QRScriptURL:    dtURL + "/fake/ddlogin.js",
		},
		// 张三 is in the seed's admins group. The simulator has no call
		// quota to save: the self-check may run again at once, e.g. right
		// after a permission was changed on the simulator.
		Admin: AdminConfig{Groups: []string{"admins"}, SelfCheckInterval: time.Millisecond},
	}
	for _, corp := range fixture.Corps {
		if len(corp.Apps) == 0 {
			continue
		}
		app := corp.Apps[0]
		cfg.Corps = append(cfg.Corps, CorpConfig{
			ID: corp.ID, Name: corp.Name, AppKey: app.AppKey, AppSecret: app.AppSecret, AgentID: app.AgentID,
			SNS: SNSConfig{AppID: app.SNSAppID, AppSecret: app.SNSAppSecret},
			// The simulator pushes contact events (user_leave_org) signed
			// with these, as DingTalk would to <issuer>/dingtalk/events/<corp>.
			Events: EventsConfig{Token: app.CallbackToken, AESKey: app.CallbackAESKey},
		})
	}
	for _, app := range apps {
		base := "http://" + app.ln.Addr().String()
		cfg.Clients = append(cfg.Clients, ClientConfig{
			ID: app.clientID, Name: app.name, Secret: app.secret,
			RedirectURIs:           []string{base + "/callback"},
			PostLogoutRedirectURIs: []string{base + "/"},
			InitiateLoginURI:       base + "/login",
			Scopes:                 []string{"openid", "profile", "email", "phone", "groups", "offline_access", "dingtalk"},
		})
	}
	cfg.applyDefaults()
	return cfg
}

// checkCorps has each DingTalk client the sign-in uses fetch an app token
// (which also warms the shared token cache) and reports which succeeded;
// any failure is an error.
func checkCorps(ctx context.Context, cfg *Config, login *idp.DingTalkConfig) ([]string, error) {
	var out []string
	for i, corp := range login.Corps {
		c, ok := corp.Client.(interface {
			AppToken(context.Context) (string, error)
		})
		if !ok {
			return nil, fmt.Errorf("corp %s: the DingTalk client cannot fetch app tokens", corp.ID)
		}
		if _, err := c.AppToken(ctx); err != nil {
			return nil, fmt.Errorf("corp %s: app token from the simulator: %w", corp.ID, err)
		}
		out = append(out, fmt.Sprintf("%s (%s): app %s, app token OK", corp.Name, corp.ID, cfg.Corps[i].AppKey))
	}
	return out, nil
}

func printDemo(w io.Writer, cfg *Config, fixture *fake.Fixture, apps []*demoApp, checks, people []string, postgres bool) {
	store := "in memory: everything is gone when it stops"
	if postgres {
		store = "in Postgres (-database-url)"
	}
	fmt.Fprintf(w, "dingbridge demo is running on this machine; nothing leaves it. State is %s.\n\n", store)
	fmt.Fprintln(w, "Try it:")
	fmt.Fprintf(w, "  1. Open the sample app %s → 使用 dingbridge 登录 / Sign in → pick a\n", "http://"+apps[0].ln.Addr().String()+"/")
	fmt.Fprintln(w, "     corp → the simulated QR frame asks who \"scans\": pick 张三 → you are in.")
	fmt.Fprintf(w, "  2. Open the second app %s → Sign in: no QR, single sign-on.\n", "http://"+apps[1].ln.Addr().String()+"/")
	fmt.Fprintf(w, "  3. Open the simulated DingTalk workbench %s/fake/workbench?corpId=%s\n", cfg.DingTalk.APIBaseURL, fixture.Corps[0].ID)
	fmt.Fprintln(w, "     and tap an app: the one-tap (JSAPI) sign-in of the DingTalk workbench.")
	fmt.Fprintln(w, "  Sign in as 陈静 to see \"not linked yet\" (a request for an administrator is recorded),")
	fmt.Fprintln(w, "  as 赵六 (who left the corp) to see \"not a member\", or as someone of 星河制造集团 for a second corp.")
	fmt.Fprintf(w, "  4. Open the admin console %s%s/ and sign in as 张三 (group admins): approve 陈静's request.\n", cfg.Issuer, adminPath)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  dingbridge (OIDC issuer)  %s\n", cfg.Issuer)
	fmt.Fprintf(w, "    OIDC discovery          %s/.well-known/openid-configuration\n", cfg.Issuer)
	fmt.Fprintf(w, "    liveness                %s/healthz/live\n", cfg.Issuer)
	fmt.Fprintf(w, "    readiness               %s/healthz/ready\n", cfg.Issuer)
	fmt.Fprintf(w, "    admin console           %s%s/\n", cfg.Issuer, adminPath)
	fmt.Fprintf(w, "  DingTalk simulator        %s/fake/\n", cfg.DingTalk.APIBaseURL)
	fmt.Fprintf(w, "    JSAPI shim              %s\n", cfg.DingTalk.JSAPIScriptURL)
	for _, app := range apps {
		fmt.Fprintf(w, "  sample app %-14s http://%s/  (client_id %s)\n", app.clientID, app.ln.Addr(), app.clientID)
	}
	fmt.Fprintln(w, "\nSimulated corps, checked with the real DingTalk client:")
	for _, c := range checks {
		fmt.Fprintf(w, "  ✓ %s\n", c)
	}
	fmt.Fprintln(w, "\nPeople (the mapping starts like this):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range people {
		fmt.Fprintf(tw, "  %s\n", p)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}
