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
	"sync"
	"text/tabwriter"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "demo [-listen addr] [-dingtalk-listen addr]",
		"Runs dingbridge and a simulated DingTalk on this machine, in memory, with no\n"+
			"configuration and no network access. Nothing is kept after it stops.", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the bridge")
	dtListen := fs.String("dingtalk-listen", "127.0.0.1:8081", "address of the DingTalk simulator")
	logLevel := fs.String("log-level", "warn", "debug | info | warn | error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	logger := newLogger(stderr, *logLevel, "text")
	if err := demo(ctx, *listen, *dtListen, logger, stdout); err != nil {
		fmt.Fprintf(stderr, "dingbridge demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// demo wires the same parts as serve, with the DingTalk simulator in place
// of DingTalk and memory in place of Postgres.
func demo(ctx context.Context, listen, dtListen string, logger *slog.Logger, stdout io.Writer) error {
	bridgeLn, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s (choose another with -listen): %w", listen, err)
	}
	defer bridgeLn.Close()
	dtLn, err := net.Listen("tcp", dtListen)
	if err != nil {
		return fmt.Errorf("listen on %s (choose another with -dingtalk-listen): %w", dtListen, err)
	}
	defer dtLn.Close()

	fixture := fake.DefaultFixture()
	fixturePtr := &fixture
	dtURL := "http://" + dtLn.Addr().String()
	sim := fake.New(fake.Options{Fixture: fixturePtr, BaseURL: dtURL, Logger: logger})

	cfg, err := demoConfig("http://"+bridgeLn.Addr().String(), dtURL, fixturePtr)
	if err != nil {
		return err
	}
	if err := cfg.Validate(false); err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slog.SetDefault(logger) // the OIDC library logs through slog's default logger
	provider, keysReady, err := startProvider(ctx, cfg, oidcParts{
		store:    idp.NewMemoryStore(),
		accounts: accountSource{mapping.NewMemory(mapping.Options{})},
		// The DingTalk login is not built yet: /login says so.
	}, logger)
	if err != nil {
		return err
	}
	bridge := newRouter(logger, func(context.Context) error {
		if !keysReady() {
			return errKeysNotReady
		}
		return nil
	})
	mountProvider(bridge, cfg.Issuer, provider)
	servers := []struct {
		name string
		ln   net.Listener
		h    http.Handler
	}{
		{"DingTalk simulator", dtLn, sim},
		{"bridge", bridgeLn, bridge},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		srv := newHTTPServer(s.h, logger)
		wg.Go(func() {
			if err := serveUntilDone(ctx, srv, s.ln, logger); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				cancel() // one server failing stops the demo
			}
		})
	}

	// Prove the wiring before telling anyone to use it: the real DingTalk
	// client fetches an app token from the simulator for every corp.
	checks, err := checkCorps(ctx, cfg)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	printDemo(stdout, cfg, fixturePtr, checks)
	wg.Wait()
	return errors.Join(errs...)
}

// demoConfig is the configuration demo runs with: the simulator's corps and
// apps, fresh random keys, no database.
func demoConfig(issuer, dtURL string, fixture *fake.Fixture) (*Config, error) {
	var keys [3]string
	for i := range keys {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		keys[i] = base64.StdEncoding.EncodeToString(b)
	}
	cfg := &Config{
		Issuer: issuer,
		Secrets: SecretsConfig{
			KeyEncryptionKey: keys[0], CookieHashKey: keys[1], CookieBlockKey: keys[2],
		},
		DingTalk: DingTalkConfig{
			APIBaseURL: dtURL, OAPIBaseURL: dtURL, LoginBaseURL: dtURL,
			JSAPIScriptURL: dtURL + "/fake/jsapi.js",
		},
	}
	for _, corp := range fixture.Corps {
		if len(corp.Apps) == 0 {
			continue
		}
		app := corp.Apps[0]
		cfg.Corps = append(cfg.Corps, CorpConfig{
			ID: corp.ID, Name: corp.Name, AppKey: app.AppKey, AppSecret: app.AppSecret, AgentID: app.AgentID,
			SNS: SNSConfig{AppID: app.SNSAppID, AppSecret: app.SNSAppSecret},
		})
	}
	cfg.applyDefaults()
	return cfg, nil
}

// dingtalkConfig turns one configured corp into a DingTalk client config.
func dingtalkConfig(cfg *Config, corp CorpConfig, logger *slog.Logger) dingtalk.Config {
	return dingtalk.Config{
		APIBaseURL:          cfg.DingTalk.APIBaseURL,
		OAPIBaseURL:         cfg.DingTalk.OAPIBaseURL,
		LoginBaseURL:        cfg.DingTalk.LoginBaseURL,
		CorpID:              corp.ID,
		AppKey:              corp.AppKey,
		AppSecret:           corp.AppSecret,
		AgentID:             corp.AgentID,
		SNSAppID:            corp.SNS.AppID,
		SNSAppSecret:        corp.SNS.AppSecret,
		LegacyTokenEndpoint: corp.LegacyTokenEndpoint,
		Timeout:             cfg.DingTalk.Timeout,
		Logger:              logger,
	}
}

// checkCorps fetches an app token for every configured corp and reports which
// succeeded; any failure is an error.
func checkCorps(ctx context.Context, cfg *Config) ([]string, error) {
	var out []string
	for _, corp := range cfg.Corps {
		c, err := dingtalk.New(dingtalkConfig(cfg, corp, slog.New(slog.DiscardHandler)))
		if err != nil {
			return nil, fmt.Errorf("corp %s: %w", corp.ID, err)
		}
		if _, err := c.AppToken(ctx); err != nil {
			return nil, fmt.Errorf("corp %s: app token from the simulator: %w", corp.ID, err)
		}
		out = append(out, fmt.Sprintf("%s (%s): app %s, app token OK", corp.Name, corp.ID, corp.AppKey))
	}
	return out, nil
}

func printDemo(w io.Writer, cfg *Config, fixture *fake.Fixture, checks []string) {
	fmt.Fprintf(w, "dingbridge demo is running on this machine; nothing leaves it.\n\n")
	fmt.Fprintf(w, "  bridge (OIDC issuer)  %s\n", cfg.Issuer)
	fmt.Fprintf(w, "    liveness            %s/healthz/live\n", cfg.Issuer)
	fmt.Fprintf(w, "    readiness           %s/healthz/ready\n", cfg.Issuer)
	fmt.Fprintf(w, "    OIDC discovery      %s/.well-known/openid-configuration\n", cfg.Issuer)
	fmt.Fprintf(w, "  DingTalk simulator    %s\n", cfg.DingTalk.APIBaseURL)
	fmt.Fprintf(w, "    JSAPI shim          %s\n\n", cfg.DingTalk.JSAPIScriptURL)
	fmt.Fprintln(w, "Simulated corps, checked with the real DingTalk client:")
	for _, c := range checks {
		fmt.Fprintf(w, "  ✓ %s\n", c)
	}
	fmt.Fprintln(w, "\nSimulated employees:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, corp := range fixture.Corps {
		for _, e := range corp.Employees {
			note := ""
			if e.Left {
				note = "(left the corp)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", corp.Name, e.Name, e.UserID, note)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nThe OpenID Connect endpoints are live; signing in with DingTalk (and the sample")
	fmt.Fprintln(w, "app) arrive with the next issues, so /login says sign-in is not available yet.")
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
