package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// startDemoWith runs the demo with a metrics listener at metricsAddr,
// state in dbURL ("" for memory) and logger, until the end of the test.
func startDemoWith(t *testing.T, metricsAddr, dbURL string, logger *slog.Logger) *signinWorld {
	t.Helper()
	w := startDemoWorld(t, demoOptions{dbURL: dbURL, metricsAddr: metricsAddr, logger: logger})
	if metricsAddr != "" && !strings.Contains(w.output.String(), "dingbridge metrics on "+w.metricsURL) {
		t.Errorf("the demo does not say where its metrics are; output:\n%s", w.output.String())
	}
	return w
}

// scrape reads /metrics with a plain HTTP client: series (name and labels,
// as exposed) → value.
func scrape(t *testing.T, u string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s = %d %s, want 200 text/plain", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsEndToEnd runs the demo on Postgres with a metrics listener,
// signs in through the sample app (one DingTalk failure, one success, one
// person not linked yet) and sends a forged callback, then scrapes
// /metrics over HTTP and checks that each part of the bridge counted what
// happened, that the failures are in the audit trail, and that the public
// listener serves no metrics.
func TestMetricsEndToEnd(t *testing.T) {
	logs := &lockedBuffer{}
	w := startDemoWith(t, "127.0.0.1:0", pgtest.NewEmptyDatabaseURL(t), newLogger(logs, "info", "json"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo log:\n%s", logs)
		}
	})
	before := scrape(t, w.metricsURL)

	// DingTalk refuses the first code exchange: a failed sign-in.
	w.sim.InjectFault(fake.EndpointUserToken, fake.Fault{Errcode: 90018, Times: 1})
	if status, u, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "zhangsan"); status != http.StatusServiceUnavailable {
		t.Fatalf("sign-in with DingTalk throttling: %d at %s, want 503:\n%.400s", status, u, body)
	}
	// Then it works.
	if status, u, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "zhangsan"); status != http.StatusOK || "http://"+u.Host != w.wikiURL {
		t.Fatalf("sign-in: %d at %s, want the sample app:\n%.400s", status, u, body)
	}
	// 陈静 is not linked yet: a pending request.
	if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "manager4927"); !strings.Contains(body, "账号尚未开通") {
		t.Fatalf("陈静's sign-in did not end on the not-linked page:\n%.400s", body)
	}
	// A forged callback.
	resp, err := http.Get(w.bridgeURL + "/login/callback/qr?" + url.Values{"state": {"forged"}, "authCode": {"x"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	forgedRequestID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusBadRequest || forgedRequestID == "" {
		t.Fatalf("forged callback = %d, request id %q; want 400 with a request id", resp.StatusCode, forgedRequestID)
	}

	after := scrape(t, w.metricsURL)
	moved := func(series string, want float64) {
		t.Helper()
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	movedAtLeast := func(series string, want float64) {
		t.Helper()
		if got := after[series] - before[series]; got < want {
			t.Errorf("%s moved by %v, want at least %v", series, got, want)
		}
	}
	moved(`dingbridge_signins_total{mode="web",outcome="ok"}`, 1)
	moved(`dingbridge_signins_total{mode="web",outcome="dingtalk_error"}`, 1)
	moved(`dingbridge_signins_total{mode="web",outcome="not_linked"}`, 1)
	moved(`dingbridge_signins_total{mode="qr",outcome="state_invalid"}`, 1)
	moved(`dingbridge_signin_duration_seconds_count{mode="web"}`, 3)
	// Each sign-in exchanges a code; the first was throttled.
	moved(`dingbridge_dingtalk_calls_total{endpoint="/v1.0/oauth2/userAccessToken",result="Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}`, 1)
	moved(`dingbridge_dingtalk_calls_total{endpoint="/v1.0/oauth2/userAccessToken",result="ok"}`, 2)
	moved(`dingbridge_dingtalk_calls_total{endpoint="/v1.0/contact/users/me",result="ok"}`, 2)
	moved(`dingbridge_dingtalk_call_duration_seconds_count{endpoint="/v1.0/oauth2/userAccessToken"}`, 3)
	moved(`dingbridge_token_requests_total{client_id="wiki",grant_type="authorization_code",result="ok"}`, 1)
	// The bridge's own statements on Postgres: reads and writes.
	movedAtLeast(`dingbridge_store_query_duration_seconds_count{operation="select"}`, 1)
	movedAtLeast(`dingbridge_store_query_duration_seconds_count{operation="insert"}`, 1)
	movedAtLeast(`dingbridge_store_query_duration_seconds_count{operation="update"}`, 1)
	for _, s := range []string{"go_goroutines", "process_resident_memory_bytes", `dingbridge_build_info{version="dev"}`} {
		if _, ok := after[s]; !ok {
			t.Errorf("metrics have no %s", s)
		}
	}
	// The pending gauge counted at the first scrape; make it count again.
	w.metrics.pending.mu.Lock()
	w.metrics.pending.at = time.Time{}
	w.metrics.pending.mu.Unlock()
	if got := scrape(t, w.metricsURL)["dingbridge_pending_requests"]; got != 1 {
		t.Errorf("dingbridge_pending_requests = %v, want 1 (陈静)", got)
	}

	// The failures are audited with their reason; nothing else is.
	var reasons []string
	for _, e := range w.audit(t, "signin.fail") {
		var d map[string]string
		if err := json.Unmarshal(e.After, &d); err != nil {
			t.Fatalf("signin.fail detail %s: %v", e.After, err)
		}
		reasons = append(reasons, d["mode"]+"/"+d["reason"]+"/"+d["corp_id"])
		if e.TargetType != "signin" || e.RequestID == "" || e.Actor != mapping.ActorSystem {
			t.Errorf("signin.fail row %+v, want target type signin, a request id and actor %s", e, mapping.ActorSystem)
		}
		if d["reason"] == idp.OutcomeStateInvalid && e.RequestID != forgedRequestID {
			t.Errorf("the forged callback's row has request id %q, want the response's %q", e.RequestID, forgedRequestID)
		}
	}
	want := []string{"qr/state_invalid/", "web/dingtalk_error/" + fake.DemoCorpID} // newest first
	if strings.Join(reasons, " ") != strings.Join(want, " ") {
		t.Errorf("signin.fail rows = %v, want %v", reasons, want)
	}

	// The public listener has no metrics.
	resp, err = http.Get(w.bridgeURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "dingbridge_") {
		t.Errorf("public /metrics = %d, want 404 without metrics:\n%.300s", resp.StatusCode, body)
	}
}

// TestRequestIDOnEveryLogLine: every JSON log line written while a request
// is served (ours, the DingTalk client's, the OIDC library's) carries the
// request id the response names in X-Request-Id; an acceptable incoming
// X-Request-Id is kept and an unsafe one replaced.
func TestRequestIDOnEveryLogLine(t *testing.T) {
	logs := &lockedBuffer{}
	w := startDemoWith(t, "", "", newLogger(logs, "debug", "json"))
	w.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")

	type request struct {
		name, method, url, body, incomingID string
		wantLog                             []string // messages the request must log
		keepID                              bool
	}
	tests := []request{
		{name: "forged callback", method: http.MethodGet, url: w.bridgeURL + "/login/callback/web?state=forged&authCode=x",
			wantLog: []string{"dingtalk callback refused: state unknown, used or expired, or its request gone", "http request"}},
		{name: "token request of an unknown client", method: http.MethodPost, url: w.bridgeURL + "/oauth/token",
			body: "grant_type=authorization_code&code=x&redirect_uri=x&client_id=nobody&client_secret=nothing-here-at-all",
			// "request error" is the OIDC library's line.
			wantLog: []string{"request error", "http request"}},
		{name: "acceptable incoming id", method: http.MethodGet, url: w.bridgeURL + "/login/callback/web?state=forged",
			incomingID: "lb-7f3a.01_x", keepID: true, wantLog: []string{"http request"}},
		{name: "unsafe incoming id", method: http.MethodGet, url: w.bridgeURL + "/login/callback/web?state=forged",
			incomingID: "a\"b c=1 <x>", wantLog: []string{"http request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := len(logs.String())
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tt.incomingID != "" {
				req.Header.Set("X-Request-Id", tt.incomingID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("X-Request-Id")
			switch {
			case tt.keepID && id != tt.incomingID:
				t.Errorf("X-Request-Id = %q, want the incoming %q kept", id, tt.incomingID)
			case !tt.keepID && (len(id) != 16 || id == tt.incomingID):
				t.Errorf("X-Request-Id = %q, want a fresh random id", id)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()[start:]), "\n")
			seen := map[string]bool{}
			for _, line := range lines {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line is not JSON: %q", line)
				}
				if rec["request_id"] != id {
					t.Errorf("log line has request_id %v, want %q: %s", rec["request_id"], id, line)
				}
				seen[fmt.Sprint(rec["msg"])] = true
			}
			for _, m := range tt.wantLog {
				if !seen[m] {
					t.Errorf("the request logged no %q; it logged:\n%s", m, strings.Join(lines, "\n"))
				}
			}
		})
	}
}

// TestSignInFailureAuditIsBounded: a flood of failures of one reason writes
// at most signInFailEventsPerSecond audit rows per second, counts the rest,
// and leaves other reasons and the next second alone; successful and
// not-linked sign-ins write nothing.
func TestSignInFailureAuditIsBounded(t *testing.T) {
	var rec eventsFunc
	var n int
	rec.fn = func(_ context.Context, m mapping.Meta, e mapping.Event) error {
		n++
		if e.Action != "signin.fail" || e.TargetType != "signin" || m.Actor == "" {
			t.Errorf("event %+v by %q, want signin.fail on signin by someone", e, m.Actor)
		}
		return nil
	}
	m := newMetrics()
	o := newBridgeObserver(m, &rec, slog.New(slog.DiscardHandler))
	now := time.Unix(1_800_000_000, 0)
	o.limit.now = func() time.Time { return now }
	ctx := t.Context()
	fail := func(reason string, times int) {
		for range times {
			o.SignIn(ctx, idp.SignIn{Mode: "web", Outcome: reason})
		}
	}
	fail(idp.OutcomeOK, 50)
	fail(idp.OutcomeNotLinked, 50)
	if n != 0 {
		t.Fatalf("ok and not-linked sign-ins wrote %d audit rows, want 0", n)
	}
	fail(idp.OutcomeStateInvalid, signInFailEventsPerSecond+5)
	fail(idp.OutcomeCancelled, 1)
	if want := signInFailEventsPerSecond + 1; n != want {
		t.Errorf("audit rows = %d, want %d", n, want)
	}
	now = now.Add(time.Second)
	fail(idp.OutcomeStateInvalid, 1)
	if want := signInFailEventsPerSecond + 2; n != want {
		t.Errorf("audit rows after a second = %d, want %d", n, want)
	}
	got := scrapeRegistry(t, m)
	if v := got[`dingbridge_signin_fail_events_dropped_total{reason="state_invalid"}`]; v != 5 {
		t.Errorf("dropped state_invalid = %v, want 5", v)
	}
	if v := got[`dingbridge_signins_total{mode="web",outcome="state_invalid"}`]; v != signInFailEventsPerSecond+6 {
		t.Errorf("state_invalid sign-ins = %v, want all %d counted", v, signInFailEventsPerSecond+6)
	}
}

// eventsFunc is a hand-written eventRecorder.
type eventsFunc struct {
	fn func(ctx context.Context, m mapping.Meta, e mapping.Event) error
}

func (e *eventsFunc) RecordEvent(ctx context.Context, m mapping.Meta, ev mapping.Event) error {
	return e.fn(ctx, m, ev)
}

// scrapeRegistry reads m's metrics through its handler.
func scrapeRegistry(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(m.handler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	return scrape(t, srv.URL+"/metrics")
}

// TestTokenRequestLabels: unconfigured clients share one label value.
func TestTokenRequestLabels(t *testing.T) {
	m := newMetrics()
	o := newBridgeObserver(m, &eventsFunc{}, slog.New(slog.DiscardHandler))
	o.TokenRequest(t.Context(), idp.TokenRequest{GrantType: "authorization_code", ClientID: "wiki"})
	o.TokenRequest(t.Context(), idp.TokenRequest{GrantType: "refresh_token", ClientID: "", Error: "invalid_client"})
	got := scrapeRegistry(t, m)
	for _, s := range []string{
		`dingbridge_token_requests_total{client_id="wiki",grant_type="authorization_code",result="ok"}`,
		`dingbridge_token_requests_total{client_id="unknown",grant_type="refresh_token",result="invalid_client"}`,
	} {
		if got[s] != 1 {
			t.Errorf("%s = %v, want 1", s, got[s])
		}
	}
}

// TestDingTalkResultLabelsAreBounded: DingTalk's codes become label values
// only while they are plain and few.
func TestDingTalkResultLabelsAreBounded(t *testing.T) {
	m := newMetrics()
	for i := range maxDingTalkCodes {
		if got := m.resultLabel(strconv.Itoa(60000 + i)); got != strconv.Itoa(60000+i) {
			t.Fatalf("code %d labelled %q", 60000+i, got)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"60000", "60000"}, // already known
		{"99999", "other"}, // one too many
		{dingtalk.ResultTransport, dingtalk.ResultTransport},
		{dingtalk.ResultOK, dingtalk.ResultOK},
	} {
		if got := m.resultLabel(tt.in); got != tt.want {
			t.Errorf("resultLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := newMetrics().resultLabel(`bad"code{}`); got != "other" {
		t.Errorf("resultLabel(unsafe) = %q, want other", got)
	}
}

func TestSQLOperation(t *testing.T) {
	for _, tt := range []struct{ sql, want string }{
		{"select 1", "select"},
		{"\n\t  SELECT id FROM accounts", "select"},
		{"(select 1) union (select 2)", "select"},
		{"insert into audit values ($1)", "insert"},
		{"Update accounts set x = 1", "update"},
		{"delete from sessions where expires_at < $1", "delete"},
		{"with d as (delete from codes returning 1) select count(*) from d", "other"},
		{"selection", "other"},
		{"begin", "other"},
		{"", "other"},
	} {
		if got := sqlOperation(tt.sql); got != tt.want {
			t.Errorf("sqlOperation(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
}

// TestPendingGaugeCachesAndOmitsFailures: one count serves the scrapes of
// pendingCacheFor; a failed count leaves the gauge out rather than stale.
func TestPendingGaugeCachesAndOmitsFailures(t *testing.T) {
	m := newMetrics()
	var (
		mu    sync.Mutex
		calls int
		fail  bool
	)
	m.registerPending(func(ctx context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("count without a deadline")
		}
		if fail {
			return 0, errors.New("database down")
		}
		return 7, nil
	}, slog.New(slog.DiscardHandler))
	now := time.Unix(1_800_000_000, 0)
	m.pending.now = func() time.Time { return now }

	for range 3 {
		if got := scrapeRegistry(t, m)["dingbridge_pending_requests"]; got != 7 {
			t.Errorf("pending = %v, want 7", got)
		}
	}
	if calls != 1 {
		t.Errorf("counted %d times for 3 scrapes within %v, want 1", calls, pendingCacheFor)
	}
	now = now.Add(pendingCacheFor)
	fail = true
	if _, ok := scrapeRegistry(t, m)["dingbridge_pending_requests"]; ok {
		t.Error("a failed count is still reported")
	}
	if calls != 2 {
		t.Errorf("counted %d times, want 2 after the cache expired", calls)
	}
}

// TestCountPending: the gauge's count is the mapping's count of open
// requests, one query however many there are.
func TestCountPending(t *testing.T) {
	store := mapping.NewMemory(mapping.Options{})
	r, err := mapping.NewResolver(mapping.ResolverConfig{Store: store, Corps: []mapping.Corp{{ID: "dingcorp1"}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"a", "b", "c"} {
		id := mapping.Identity{CorpID: "dingcorp1", UserID: user, Name: user, Active: true}
		if _, err := r.Resolve(t.Context(), id, mapping.Meta{}); !errors.Is(err, mapping.ErrNotLinked) {
			t.Fatalf("Resolve %s = %v, want not linked (a pending request)", user, err)
		}
	}
	if n, err := countPending(store)(t.Context()); err != nil || n != 3 {
		t.Errorf("countPending = %d, %v; want 3", n, err)
	}
}

var metricsLine = regexp.MustCompile(`dingbridge metrics on (http://\S+)`)

// TestServeServesMetricsApart: serve with metrics.listen answers /metrics
// on that listener (with the statements of its start-up migrations
// counted) and not on the public one.
func TestServeServesMetricsApart(t *testing.T) {
	path := writeConfig(t, pgtest.NewEmptyDatabaseURL(t), true)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("metrics: {listen: \"127.0.0.1:0\"}\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	// serve prints the metrics address first, then the public one.
	s, public := start(t, []string{"serve", "-config", path}, listeningLine)
	m := metricsLine.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("serve printed no metrics address; output:\n%s", s.out)
	}
	metricsURL := m[1]
	got := scrape(t, metricsURL)
	if got[`dingbridge_store_query_duration_seconds_count{operation="insert"}`] < 1 {
		t.Errorf("no insert statement counted after the migrations; metrics:\n%v", got)
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	resp, err := http.Get(public + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /metrics = %d, want 404", resp.StatusCode)
	}
}
