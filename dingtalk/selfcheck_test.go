package dingtalk

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// zhangsan of the simulator's first corp.
var probeZhangsan = Probe{UnionID: "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ"}

// selfCheckClient is a client of the simulator's first corp, logging at
// debug level into log; edit may change its config.
func selfCheckClient(t *testing.T, sim *fake.Server, log *bytes.Buffer, edit func(*Config)) *Client {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := Config{
		APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: srv.URL,
		CorpID: fake.DemoCorpID, AppKey: fake.DemoAppKey, AppSecret: fake.DemoAppSecret,
		// One attempt only: a throttled call is not retried for seconds.
		ThrottleBudget: time.Nanosecond,
		Logger:         slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statuses maps each API of rep to its status.
func statuses(rep Report) map[API]CheckStatus {
	m := map[API]CheckStatus{}
	for _, c := range rep.Checks {
		m[c.API] = c.Status
	}
	return m
}

func check(t *testing.T, rep Report, api API) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.API == api {
			return c
		}
	}
	t.Fatalf("report has no check of %s: %+v", api, rep.Checks)
	return Check{}
}

func TestSelfCheck(t *testing.T) {
	atSignIn := map[API]CheckStatus{APIUserToken: CheckAtSignIn, APIMe: CheckAtSignIn, APIUserByAuthCode: CheckAtSignIn}
	with := func(m map[API]CheckStatus) map[API]CheckStatus {
		out := map[API]CheckStatus{}
		for k, v := range atSignIn {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name   string
		probe  Probe
		edit   func(*Config)
		setup  func(*fake.Server)
		want   map[API]CheckStatus
		scopes map[API][]string // of the missing permissions
		codes  map[API]string
		userID string // the probe's userid after the check
		calls  map[string]int
	}{
		{
			name: "all OK", probe: probeZhangsan,
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckOK, APIUser: CheckOK}),
			userID: "zhangsan",
			// The fresh token is kept: U1 and U2 need no second fetch.
			calls: map[string]int{fake.EndpointAppToken: 1, fake.EndpointUserByUnionID: 1, fake.EndpointUser: 1,
				fake.EndpointUserToken: 0, fake.EndpointContactUser: 0, fake.EndpointUserInfoByCode: 0},
		},
		{
			name: "legacy token endpoint", probe: probeZhangsan,
			edit:   func(c *Config) { c.LegacyTokenEndpoint = true },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckOK, APIUser: CheckOK}),
			userID: "zhangsan",
			calls:  map[string]int{fake.EndpointGetToken: 1, fake.EndpointAppToken: 0},
		},
		{
			name: "userid only", probe: Probe{UserID: "wangwu"},
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckSkipped, APIUser: CheckOK}),
			userID: "wangwu",
			calls:  map[string]int{fake.EndpointUserByUnionID: 0, fake.EndpointUser: 1},
		},
		{
			name:  "nobody known",
			want:  with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckSkipped, APIUser: CheckSkipped}),
			calls: map[string]int{fake.EndpointUserByUnionID: 0, fake.EndpointUser: 0},
		},
		{
			name: "member permission denied", probe: probeZhangsan,
			setup:  func(s *fake.Server) { s.SetDeniedScopes(fake.DemoAppKey, "qyapi_get_member") },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckMissingPermission, APIUser: CheckSkipped}),
			scopes: map[API][]string{APIUserByUnionID: {"qyapi_get_member"}},
			codes:  map[API]string{APIUserByUnionID: "60011"},
		},
		{
			name: "member permission denied, userid known", probe: Probe{UserID: "zhangsan", UnionID: probeZhangsan.UnionID},
			setup:  func(s *fake.Server) { s.SetDeniedScopes(fake.DemoAppKey, "qyapi_get_member") },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckMissingPermission, APIUser: CheckMissingPermission}),
			scopes: map[API][]string{APIUserByUnionID: {"qyapi_get_member"}, APIUser: {"qyapi_get_member"}},
			userID: "zhangsan",
		},
		{
			name: "bad secret", probe: probeZhangsan,
			edit:  func(c *Config) { c.AppSecret = "not-the-secret" },
			want:  with(map[API]CheckStatus{APIAppToken: CheckBadCredentials, APIUserByUnionID: CheckSkipped, APIUser: CheckSkipped}),
			codes: map[API]string{APIAppToken: "invalidClientIdOrSecret"},
			calls: map[string]int{fake.EndpointAppToken: 1, fake.EndpointUserByUnionID: 0, fake.EndpointUser: 0},
		},
		{
			name: "bad secret, legacy", probe: probeZhangsan,
			edit:  func(c *Config) { c.AppSecret, c.LegacyTokenEndpoint = "not-the-secret", true },
			want:  with(map[API]CheckStatus{APIAppToken: CheckBadCredentials, APIUserByUnionID: CheckSkipped, APIUser: CheckSkipped}),
			codes: map[API]string{APIAppToken: "40096"},
		},
		{
			name: "throttled", probe: probeZhangsan,
			setup:  func(s *fake.Server) { s.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 90018}) },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckOK, APIUser: CheckThrottled}),
			codes:  map[API]string{APIUser: "90018"},
			userID: "zhangsan",
		},
		{
			name: "monthly quota", probe: probeZhangsan,
			setup:  func(s *fake.Server) { s.InjectFault(fake.EndpointUserByUnionID, fake.Fault{Errcode: 90020}) },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckThrottled, APIUser: CheckSkipped}),
			codes:  map[API]string{APIUserByUnionID: "90020"},
			userID: "",
		},
		{
			name: "ip not allowed", probe: probeZhangsan,
			setup: func(s *fake.Server) { s.InjectFault(fake.EndpointUserByUnionID, fake.Fault{Errcode: 60020}) },
			want:  with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckIPNotAllowed, APIUser: CheckSkipped}),
		},
		{
			name: "outside the contact range", probe: Probe{UserID: "zhangsan"},
			setup:  func(s *fake.Server) { s.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 50002}) },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckSkipped, APIUser: CheckOutsideRange}),
			userID: "zhangsan",
		},
		{
			name: "token endpoint down", probe: probeZhangsan,
			setup: func(s *fake.Server) { s.InjectFault(fake.EndpointAppToken, fake.Fault{HTTPStatus: 502}) },
			want:  with(map[API]CheckStatus{APIAppToken: CheckUnreachable, APIUserByUnionID: CheckSkipped, APIUser: CheckSkipped}),
		},
		{
			name: "person left the corp", probe: Probe{UserID: "zhaoliu"},
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckSkipped, APIUser: CheckOK}),
			userID: "zhaoliu",
		},
		{
			name: "other error", probe: Probe{UserID: "zhangsan"},
			setup:  func(s *fake.Server) { s.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 400002}) },
			want:   with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckSkipped, APIUser: CheckFailed}),
			codes:  map[API]string{APIUser: "400002"},
			userID: "zhangsan",
		},
		{
			name: "with SNS", probe: probeZhangsan,
			edit: func(c *Config) { c.SNSAppID, c.SNSAppSecret = fake.DemoSNSAppID, fake.DemoSNSAppSecret },
			want: with(map[API]CheckStatus{APIAppToken: CheckOK, APIUserByUnionID: CheckOK, APIUser: CheckOK,
				APISNSUser: CheckAtSignIn}),
			userID: "zhangsan",
			calls:  map[string]int{fake.EndpointSNSUserInfo: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := fake.New(fake.Options{})
			if tt.setup != nil {
				tt.setup(sim)
			}
			var log bytes.Buffer
			c := selfCheckClient(t, sim, &log, tt.edit)
			rep := c.SelfCheck(t.Context(), tt.probe)
			got := statuses(rep)
			for api, want := range tt.want {
				if got[api] != want {
					t.Errorf("%s: status %q, want %q", api, got[api], want)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("checked %v, want %v", got, tt.want)
			}
			for api, want := range tt.scopes {
				if ck := check(t, rep, api); !slices.Equal(ck.Scopes, want) {
					t.Errorf("%s: scopes %v, want %v", api, ck.Scopes, want)
				}
			}
			for api, want := range tt.codes {
				if ck := check(t, rep, api); ck.Code != want {
					t.Errorf("%s: code %q, want %q", api, ck.Code, want)
				}
			}
			for _, ck := range rep.Checks {
				if ck.Status.Problem() != (ck.Err != nil) {
					t.Errorf("%s: status %s with error %v: a problem, and only a problem, carries its error", ck.API, ck.Status, ck.Err)
				}
				if ck.Status == CheckOK && len(ck.Scopes) > 0 {
					t.Errorf("%s: OK with scopes %v", ck.API, ck.Scopes)
				}
			}
			if rep.Probe.UserID != tt.userID {
				t.Errorf("probe userid %q, want %q", rep.Probe.UserID, tt.userID)
			}
			problems := 0
			for _, s := range tt.want {
				if s.Problem() {
					problems++
				}
			}
			if rep.Problems() != problems {
				t.Errorf("Problems() = %d, want %d", rep.Problems(), problems)
			}
			for ep, want := range tt.calls {
				if got := sim.Calls(ep); got != want {
					t.Errorf("calls of %s = %d, want %d", ep, got, want)
				}
			}
			if rep.CorpID != fake.DemoCorpID || rep.AppKey != fake.DemoAppKey {
				t.Errorf("report of %s/%s, want %s/%s", rep.CorpID, rep.AppKey, fake.DemoCorpID, fake.DemoAppKey)
			}
			// Neither the secret nor a token reaches the log or the report.
			text := log.String() + strings.Join(errTexts(rep), "\n")
			for _, secret := range []string{fake.DemoAppSecret, "not-the-secret", c.tokens.token} {
				if secret != "" && strings.Contains(text, secret) {
					t.Errorf("log or report errors contain a secret or token")
				}
			}
		})
	}
}

func errTexts(rep Report) []string {
	var out []string
	for _, c := range rep.Checks {
		if c.Err != nil {
			out = append(out, c.Err.Error())
		}
	}
	return out
}

// The permission a 403 names (accessdenieddetail.requiredScopes) wins over
// the API's documented one.
func TestSelfCheckRequiredScopesFromAnswer(t *testing.T) {
	ck := outcomeOf(Check{API: APIUser, Scopes: []string{ScopeMember}}, &APIError{
		Endpoint: "/topapi/v2/user/get", HTTPStatus: 403, Code: "Forbidden.AccessDenied.AccessTokenPermissionDenied",
		RequiredScopes: []string{"qyapi_get_member_by_mobile"},
	})
	if ck.Status != CheckMissingPermission || !slices.Equal(ck.Scopes, []string{"qyapi_get_member_by_mobile"}) {
		t.Errorf("outcome = %s %v, want missing_permission [qyapi_get_member_by_mobile]", ck.Status, ck.Scopes)
	}
}

// A check that finds a cached token still verifies the secret with a fresh
// fetch: the cached token may predate a changed secret.
func TestSelfCheckFetchesAFreshToken(t *testing.T) {
	sim := fake.New(fake.Options{})
	var log bytes.Buffer
	c := selfCheckClient(t, sim, &log, nil)
	if _, err := c.AppToken(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.SelfCheck(t.Context(), probeZhangsan)
	if got := sim.Calls(fake.EndpointAppToken); got != 2 {
		t.Errorf("token fetches = %d, want 2 (one before, one by the check)", got)
	}
}
