package main

import (
	"encoding/json"
	"flag"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// benchRun runs dingbridge bench with args and -json, and returns the report.
func benchRun(t *testing.T, args ...string) benchReport {
	t.Helper()
	var stdout, stderr lockedBuffer
	if code := run(t.Context(), append([]string{"bench", "-json"}, args...), &stdout, &stderr); code != exitOK {
		t.Fatalf("dingbridge bench %s exited %d:\n%s", strings.Join(args, " "), code, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("bench -json output does not parse: %v\n%s", err, stdout.String())
	}
	return rep
}

func checkBenchReport(t *testing.T, rep benchReport, steps ...string) {
	t.Helper()
	if rep.Completed == 0 || rep.Errors != 0 || rep.PerSecond <= 0 {
		t.Errorf("%s: %d completed, %d errors (%v), %.1f/s; want >0 completed and no errors",
			rep.Scenario, rep.Completed, rep.Errors, rep.ErrorKinds, rep.PerSecond)
	}
	if rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Latency.P99 < rep.Latency.P50 {
		t.Errorf("%s: latency %+v is not ordered", rep.Scenario, rep.Latency)
	}
	have := map[string]bool{}
	for _, s := range rep.Steps {
		have[s.Step] = true
	}
	for _, s := range steps {
		if !have[s] {
			t.Errorf("%s: no step %q in %+v", rep.Scenario, s, rep.Steps)
		}
	}
}

func TestBenchDemoFreshSignIns(t *testing.T) {
	rep := benchRun(t, "-demo", "-d", "1s", "-c", "4", "-dingtalk-rate-limit", "1000")
	checkBenchReport(t, rep, "authorize", "login", "upstream", "callback", "token", "verify")
	p := rep.Process
	if p == nil || p.CPUSeconds <= 0 || p.PeakRSSMB <= 0 {
		t.Fatalf("process figures missing: %+v", p)
	}
	// Each fresh sign-in asks DingTalk for the user's token and profile.
	if p.DingTalkCallsPer < 1.5 || p.DingTalkCallsPer > 4 {
		t.Errorf("DingTalk calls per sign-in = %.2f (%v), want about 2", p.DingTalkCallsPer, p.DingTalkEndpoints)
	}
}

func TestBenchDemoOtherScenarios(t *testing.T) {
	for _, sc := range []struct {
		name  string
		steps []string
	}{
		{scenarioSSO, []string{"authorize", "token", "verify"}},
		{scenarioRefresh, []string{"refresh"}},
		{scenarioJWKS, []string{"jwks"}},
		{scenarioDiscovery, []string{"discovery"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			rep := benchRun(t, "-demo", "-scenario", sc.name, "-d", "300ms", "-c", "2")
			checkBenchReport(t, rep, sc.steps...)
			if sc.name == scenarioSSO {
				// The session is present: DingTalk is not asked again.
				for _, s := range rep.Steps {
					if s.Step == "upstream" {
						t.Errorf("sso sign-ins went to DingTalk %d times", s.Count)
					}
				}
			}
		})
	}
}

func TestBenchDemoWithPostgres(t *testing.T) {
	rep := benchRun(t, "-demo", "-database-url", pgtest.NewDatabaseURL(t), "-d", "500ms", "-c", "2", "-dingtalk-rate-limit", "1000")
	checkBenchReport(t, rep, "callback", "token")
	if rep.Storage != "postgres" {
		t.Errorf("storage = %q, want postgres", rep.Storage)
	}
}

func TestBenchDemoBurstUnderDingTalkLimit(t *testing.T) {
	// 30 different people in half a second, against a simulator that
	// refuses more than 20 calls per second to one API, with the product's
	// rate_limit (20): everyone gets in, DingTalk refuses nothing, and the
	// limiter is what made it so: 30 sign-ins need over a second.
	rep := benchRun(t, "-demo", "-scenario", "burst", "-n", "30", "-arrive", "500ms")
	if rep.Completed != 30 || rep.Errors != 0 {
		t.Errorf("%d of 30 sign-ins completed, %d errors (%v); want all", rep.Completed, rep.Errors, rep.ErrorKinds)
	}
	if rep.DingTalkThrottled == nil || *rep.DingTalkThrottled != 0 {
		t.Errorf("DingTalk throttled = %v, want 0", rep.DingTalkThrottled)
	}
	if rep.DurationSeconds < 1 {
		t.Errorf("the burst took %.2fs, want over 1s: 30 calls to one API at 20/s", rep.DurationSeconds)
	}
	if p := rep.Process; p == nil || p.DingTalkEndpoints["POST /v1.0/oauth2/userAccessToken"] != 30 {
		t.Errorf("user token calls = %v, want 30 (one per person)", p)
	}
}

func TestBenchDemoTwoReplicas(t *testing.T) {
	// Two bridges on one Postgres; every browser sends each request to
	// the other bridge than the one before: sign-ins still complete, so
	// nothing a flow needs lives in one replica's memory.
	rep := benchRun(t, "-demo", "-database-url", pgtest.NewDatabaseURL(t), "-replicas", "2", "-d", "1s", "-c", "4", "-dingtalk-rate-limit", "1000")
	checkBenchReport(t, rep, "authorize", "login", "upstream", "callback", "token", "verify")
	if rep.Replicas != 2 || len(rep.ReplicaRequests) != 2 || rep.ReplicaRequests[0] == 0 || rep.ReplicaRequests[1] == 0 {
		t.Errorf("replicas %d served %v requests, want 2 both serving", rep.Replicas, rep.ReplicaRequests)
	}
}

func TestBenchDemoBurstTwoReplicasUnderDingTalkLimit(t *testing.T) {
	// The burst of TestBenchDemoBurstUnderDingTalkLimit split over two
	// bridges on one Postgres: their shared limit keeps DingTalk's count
	// at 20 a second for both together, so DingTalk refuses nothing. (Each
	// limiting itself, they would send up to 40 a second.)
	rep := benchRun(t, "-demo", "-database-url", pgtest.NewDatabaseURL(t), "-replicas", "2",
		"-scenario", "burst", "-n", "30", "-arrive", "500ms")
	if rep.Completed != 30 || rep.Errors != 0 {
		t.Errorf("%d of 30 sign-ins completed, %d errors (%v); want all", rep.Completed, rep.Errors, rep.ErrorKinds)
	}
	if rep.DingTalkThrottled == nil || *rep.DingTalkThrottled != 0 {
		t.Errorf("DingTalk throttled = %s, want 0", fmtCount(rep.DingTalkThrottled))
	}
	if rep.DurationSeconds < 1 {
		t.Errorf("the burst took %.2fs, want over 1s: 30 calls to one API at 20/s", rep.DurationSeconds)
	}
	if len(rep.ReplicaRequests) != 2 || rep.ReplicaRequests[0] == 0 || rep.ReplicaRequests[1] == 0 {
		t.Errorf("replicas served %v requests, want both serving", rep.ReplicaRequests)
	}
	if p := rep.Process; p == nil || p.DingTalkEndpoints["POST /v1.0/oauth2/userAccessToken"] != 30 {
		t.Errorf("user token calls = %v, want 30 (one per person)", p)
	}
}

func fmtCount(n *int) string {
	if n == nil {
		return "none reported"
	}
	return strconv.Itoa(*n)
}

func TestDingTalkLimitsShared(t *testing.T) {
	// The DingTalk clients share one limit in Postgres when the bridge
	// runs on it, unless dingtalk.shared_rate_limit is off; the in-memory
	// demo keeps each client's own.
	pg := mapping.NewPostgres(pgtest.NewDatabase(t), mapping.Options{})
	off := false
	tests := []struct {
		name     string
		accounts mapping.Store
		shared   *bool
		want     bool
	}{
		{"postgres", pg, nil, true},
		{"postgres, shared_rate_limit false", pg, &off, false},
		{"memory", mapping.NewMemory(mapping.Options{}), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{DingTalk: DingTalkConfig{SharedRateLimit: tt.shared}}
			cfg.applyDefaults()
			limits, err := dingTalkLimits(cfg, tt.accounts, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got := limits != nil; got != tt.want {
				t.Errorf("shared limit = %v, want %v", got, tt.want)
			}
			dc := dingtalkConfig(cfg, CorpConfig{AppKey: "k"}, limits, slog.New(slog.DiscardHandler))
			if got := dc.Limiter != nil; got != tt.want {
				t.Errorf("client config has a limiter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope", "-demo"},
		{"-c", "0", "-demo"},
		{"-issuer", "http://127.0.0.1:1"},          // no client
		{"-database-url", "postgres://x/y"},        // needs -demo
		{"-demo", "-issuer", "http://127.0.0.1:1"}, // demo brings its own
		{"-scenario", "burst", "-issuer", "http://127.0.0.1:1", "-client-id", "x", "-redirect-uri", "http://x/cb"}, // burst needs -demo
		{"-demo", "-scenario", "burst", "-n", "0"},
		{"-demo", "-replicas", "2"}, // replicas share state only through Postgres
		{"-demo", "-replicas", "0", "-database-url", "postgres://x/y"},
	} {
		var out lockedBuffer
		if code := run(t.Context(), append([]string{"bench"}, args...), &out, &out); code != exitUsage {
			t.Errorf("bench %v exited %d, want %d:\n%s", args, code, exitUsage, out.String())
		}
	}
}

// BenchmarkLoadPostgres runs the load command once against a throwaway
// Postgres, for the figures in the README: it is a measurement, so it runs
// only with -bench, e.g.
//
//	go test -run '^$' -bench LoadPostgres -benchtime 1x ./cmd/dingbridge/ -args -- -scenario fresh -c 32 -d 10s -dingtalk-rate-limit 1000
//
// The arguments after -args -- go to dingbridge bench (default: fresh, 32
// concurrent, 10 s).
func BenchmarkLoadPostgres(b *testing.B) {
	args := flag.Args()
	if len(args) == 0 {
		args = []string{"-scenario", "fresh", "-c", "32", "-d", "10s"}
	}
	for b.Loop() {
		var stdout, stderr lockedBuffer
		all := append([]string{"bench", "-demo", "-database-url", pgtest.NewDatabaseURL(b)}, args...)
		if code := run(b.Context(), all, &stdout, &stderr); code != exitOK {
			b.Fatalf("dingbridge bench exited %d:\n%s", code, stderr.String())
		}
		b.Logf("dingbridge bench -demo -database-url <pgtest> %s\n%s", strings.Join(args, " "), stdout.String())
	}
}
