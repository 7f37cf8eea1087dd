package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

var (
	key32 = base64.StdEncoding.EncodeToString(make([]byte, 32))
	key64 = base64.StdEncoding.EncodeToString(make([]byte, 64))
)

// exampleEnv supplies every variable config.example.yaml refers to.
func exampleEnv(name string) (string, bool) {
	switch name {
	case "DINGBRIDGE_DATABASE_URL":
		return "postgres://dingbridge@localhost/dingbridge", true
	case "DINGBRIDGE_KEY_ENCRYPTION_KEY", "DINGBRIDGE_COOKIE_BLOCK_KEY":
		return key32, true
	case "DINGBRIDGE_COOKIE_HASH_KEY":
		return key64, true
	case "DINGTALK_APP_SECRET":
		return "app-secret-from-env", true
	case "WIKI_CLIENT_SECRET":
		return "wiki-secret-0123456789", true
	}
	return "", false
}

func noEnv(string) (string, bool) { return "", false }

func TestExampleConfigLoadsAndValidates(t *testing.T) {
	cfg, err := LoadConfig("../../config.example.yaml", exampleEnv)
	if err != nil {
		t.Fatalf("LoadConfig(config.example.yaml) = %v", err)
	}
	if err := cfg.Validate(true); err != nil {
		t.Fatalf("Validate(config.example.yaml) = %v", err)
	}
	if got, want := cfg.Corps[0].AppSecret, "app-secret-from-env"; got != want {
		t.Errorf("corps[0].app_secret = %q, want %q (from ${DINGTALK_APP_SECRET})", got, want)
	}
	if got, want := cfg.Clients[0].Secret, "wiki-secret-0123456789"; got != want {
		t.Errorf("clients[0].secret = %q, want %q", got, want)
	}
	if got, want := cfg.DingTalk.Timeout, 5*time.Second; got != want {
		t.Errorf("dingtalk.timeout = %v, want %v", got, want)
	}
}

func TestExampleConfigWithoutEnvNamesEveryMissingVariable(t *testing.T) {
	_, err := LoadConfig("../../config.example.yaml", noEnv)
	if err == nil {
		t.Fatal("LoadConfig with no environment succeeded, want errors for every ${VAR}")
	}
	for _, want := range []string{
		"database.url: environment variable DINGBRIDGE_DATABASE_URL is not set",
		"secrets.key_encryption_key: environment variable DINGBRIDGE_KEY_ENCRYPTION_KEY is not set",
		"secrets.cookie_hash_key: environment variable DINGBRIDGE_COOKIE_HASH_KEY is not set",
		"secrets.cookie_block_key: environment variable DINGBRIDGE_COOKIE_BLOCK_KEY is not set",
		"corps[0].app_secret: environment variable DINGTALK_APP_SECRET is not set",
		"clients[0].secret: environment variable WIKI_CLIENT_SECRET is not set",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
}

// minimal is the smallest valid configuration; tests change one thing at a time.
func minimal() string {
	return `
issuer: https://sso.example.com
database: {url: "postgres://localhost/db"}
secrets:
  key_encryption_key: ` + key32 + `
  cookie_hash_key: ` + key32 + `
  cookie_block_key: ` + key32 + `
corps:
  - {id: dingcorp1, app_key: k1, app_secret: s1}
clients:
  - id: app
    secret: a-long-enough-secret
    redirect_uris: [https://app.example.com/cb]
`
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimal()), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(true); err != nil {
		t.Fatalf("Validate(minimal) = %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"listen", cfg.Listen, ":8080"},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "json"},
		{"dingtalk.api_base_url", cfg.DingTalk.APIBaseURL, "https://api.dingtalk.com"},
		{"dingtalk.oapi_base_url", cfg.DingTalk.OAPIBaseURL, "https://oapi.dingtalk.com"},
		{"dingtalk.login_base_url", cfg.DingTalk.LoginBaseURL, "https://login.dingtalk.com"},
		{"dingtalk.jsapi_script_url", cfg.DingTalk.JSAPIScriptURL, defaultJSAPIScriptURL},
		{"dingtalk.timeout", cfg.DingTalk.Timeout.String(), "5s"},
		{"clients[0].scopes", strings.Join(cfg.Clients[0].Scopes, " "), "openid profile email phone groups"},
		{"clients[0].id_token_signing_alg", cfg.Clients[0].IDTokenSigningAlg, "RS256"},
		{"clients[0].access_token_format", cfg.Clients[0].AccessTokenFormat, "opaque"},
		{"clients[0].refresh_token_lifetime", cfg.Clients[0].RefreshTokenLifetime.String(), "720h0m0s"},
		{"oidc.session_lifetime", cfg.OIDC.SessionLifetime.String(), "12h0m0s"},
		{"oidc.key_rotation_period", cfg.OIDC.KeyRotationPeriod.String(), "720h0m0s"},
		{"oidc.key_retire_after", cfg.OIDC.KeyRetireAfter.String(), "24h0m0s"},
		{"admin.session_idle", cfg.Admin.SessionIdle.String(), "30m0s"},
		{"admin.session_absolute", cfg.Admin.SessionAbsolute.String(), "8h0m0s"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !*cfg.Database.AutoMigrate {
		t.Error("database.auto_migrate defaults to false, want true")
	}
	if !*cfg.DingTalk.SharedRateLimit {
		t.Error("dingtalk.shared_rate_limit defaults to false, want true")
	}
}

func TestParseConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level key", minimal() + "issuerr: x\n", "field issuerr not found"},
		{"unknown nested key", strings.Replace(minimal(), "database: {url:", "database: {auto_migrat: true, url:", 1), "field auto_migrat not found"},
		{"not yaml", "issuer: [", "parse config"},
		{"wrong type", minimal() + "listen: [1, 2]\n", "parse config"},
		{"shared_rate_limit not a bool", minimal() + "dingtalk: {shared_rate_limit: sometimes}\n", "parse config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEnvExpansionDoesNotReinterpretYAML(t *testing.T) {
	// A secret full of YAML syntax must land verbatim in its one field.
	tricky := "a: b\n- [c] # d"
	cfg, err := ParseConfig([]byte(strings.Replace(minimal(), "app_secret: s1", `app_secret: "${TRICKY}"`, 1)),
		func(n string) (string, bool) { return tricky, n == "TRICKY" })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Corps[0].AppSecret; got != tricky {
		t.Errorf("app_secret = %q, want %q", got, tricky)
	}
}

func TestValidateNamesEachProblemByKey(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // old, new in minimal()
		want    string
	}{
		{"issuer missing", [2]string{"issuer: https://sso.example.com", "issuer: \"\""}, "issuer: is required"},
		{"issuer http", [2]string{"https://sso.example.com", "http://sso.example.com"}, "issuer: must use https"},
		{"issuer trailing slash", [2]string{"https://sso.example.com", "https://sso.example.com/"}, "issuer: must not end with /"},
		{"issuer query", [2]string{"https://sso.example.com", "https://sso.example.com?x=1"}, "issuer: must not contain a query"},
		{"issuer relative", [2]string{"https://sso.example.com", "/sso"}, "issuer: must be an absolute URL"},
		{"listen", [2]string{"issuer:", "listen: \"8080\"\nissuer:"}, "listen: must be host:port"},
		{"admin idle", [2]string{"issuer:", "admin: {groups: [admins], session_idle: 10s}\nissuer:"}, "admin.session_idle: must be between"},
		{"admin absolute before idle", [2]string{"issuer:", "admin: {groups: [admins], session_idle: 2h, session_absolute: 1h}\nissuer:"}, "admin.session_absolute: must not be shorter than admin.session_idle"},
		{"admin empty group", [2]string{"issuer:", "admin: {groups: [\"\"]}\nissuer:"}, "admin.groups[0]: must not be empty"},
		{"log level", [2]string{"issuer:", "log: {level: loud}\nissuer:"}, "log.level: must be one of"},
		{"log format", [2]string{"issuer:", "log: {format: xml}\nissuer:"}, "log.format: must be json or text"},
		{"metrics listen", [2]string{"issuer:", "metrics: {listen: \"9090\"}\nissuer:"}, "metrics.listen: must be host:port"},
		{"trusted proxy", [2]string{"issuer:", "trusted_proxies: [10.0.0.0/8, \"lb.internal\"]\nissuer:"}, "trusted_proxies[1]: must be an IP address or a CIDR prefix"},
		{"self-check interval", [2]string{"issuer:", "admin: {groups: [admins], self_check_interval: 48h}\nissuer:"}, "admin.self_check_interval"},
		{"metrics on the public port", [2]string{"issuer:", "listen: \":8080\"\nmetrics: {listen: \"127.0.0.1:8080\"}\nissuer:"}, "metrics.listen: must not use the port of listen"},
		{"database url", [2]string{`database: {url: "postgres://localhost/db"}`, ""}, "database.url: is required"},
		{"kek missing", [2]string{"key_encryption_key: " + key32, "key_encryption_key: \"\""}, "secrets.key_encryption_key: is required"},
		{"kek short", [2]string{"key_encryption_key: " + key32, "key_encryption_key: " + base64.StdEncoding.EncodeToString(make([]byte, 16))}, "secrets.key_encryption_key: must decode to 32 bytes; got 16"},
		{"kek not base64", [2]string{"key_encryption_key: " + key32, "key_encryption_key: not*base64"}, "secrets.key_encryption_key: is not valid base64"},
		{"hash key size", [2]string{"cookie_hash_key: " + key32, "cookie_hash_key: " + base64.StdEncoding.EncodeToString(make([]byte, 40))}, "secrets.cookie_hash_key: must decode to 32 or 64 bytes; got 40"},
		{"block key missing", [2]string{"cookie_block_key: " + key32, "cookie_block_key: \"\""}, "secrets.cookie_block_key: is required"},
		{"api base", [2]string{"issuer:", "dingtalk: {api_base_url: \"ftp://x\"}\nissuer:"}, "dingtalk.api_base_url: must use https"},
		{"oapi base", [2]string{"issuer:", "dingtalk: {oapi_base_url: \"http://oapi.dingtalk.com\"}\nissuer:"}, "dingtalk.oapi_base_url: must use https"},
		{"login base", [2]string{"issuer:", "dingtalk: {login_base_url: \"https://x/?a=b\"}\nissuer:"}, "dingtalk.login_base_url: must not contain a query"},
		{"jsapi", [2]string{"issuer:", "dingtalk: {jsapi_script_url: \"dingtalk.js\"}\nissuer:"}, "dingtalk.jsapi_script_url: must be an absolute URL"},
		{"timeout", [2]string{"issuer:", "dingtalk: {timeout: 2h}\nissuer:"}, "dingtalk.timeout: must be between"},
		{"no corps", [2]string{"  - {id: dingcorp1, app_key: k1, app_secret: s1}", ""}, "corps: at least one DingTalk corp is required"},
		{"corp id", [2]string{"id: dingcorp1,", "id: \"\","}, "corps[0].id: is required"},
		{"corp twice", [2]string{"  - {id: dingcorp1, app_key: k1, app_secret: s1}", "  - {id: dingcorp1, app_key: k1, app_secret: s1}\n  - {id: dingcorp1, app_key: k2, app_secret: s2}"}, `corps[1].id: "dingcorp1" is configured twice`},
		{"app key", [2]string{"app_key: k1,", ""}, "corps[0].app_key: is required"},
		{"app secret", [2]string{", app_secret: s1", ""}, "corps[0].app_secret: is required"},
		{"sns half", [2]string{"app_secret: s1}", "app_secret: s1, sns: {app_id: x}}"}, "corps[0].sns: app_id and app_secret must be set together"},
		{"client id", [2]string{"  - id: app", "  - id: \"\""}, "clients[0].id: is required"},
		{"client secret short", [2]string{"a-long-enough-secret", "short"}, "clients[0].secret: is required for a confidential client"},
		{"public with secret", [2]string{"    secret: a-long-enough-secret", "    public: true\n    secret: a-long-enough-secret"}, "clients[0].secret: must be empty for a public client"},
		{"no redirect", [2]string{"    redirect_uris: [https://app.example.com/cb]", ""}, "clients[0].redirect_uris: at least one"},
		{"redirect http", [2]string{"https://app.example.com/cb", "http://app.example.com/cb"}, "clients[0].redirect_uris[0]: must use https"},
		{"redirect fragment", [2]string{"https://app.example.com/cb", "https://app.example.com/cb#x"}, "clients[0].redirect_uris[0]: must not contain a fragment"},
		{"post logout", [2]string{"    redirect_uris:", "    post_logout_redirect_uris: [\"javascript:alert(1)\"]\n    redirect_uris:"}, "clients[0].post_logout_redirect_uris[0]: must be an absolute URL"},
		{"initiate login", [2]string{"    redirect_uris:", "    initiate_login_uri: http://app.example.com/login\n    redirect_uris:"}, "clients[0].initiate_login_uri: must use https"},
		{"scopes without openid", [2]string{"    redirect_uris:", "    scopes: [profile]\n    redirect_uris:"}, "clients[0].scopes: must include openid"},
		{"unknown scope", [2]string{"    redirect_uris:", "    scopes: [openid, admin]\n    redirect_uris:"}, `clients[0].scopes: unknown scope "admin"`},
		{"unknown corp", [2]string{"    redirect_uris:", "    corps: [dingother]\n    redirect_uris:"}, `clients[0].corps: "dingother" is not a configured corp id`},
		{"auto link on personal email", [2]string{"app_secret: s1}", "app_secret: s1, auto_link: email}"}, `corps[0].auto_link: must be job_number, org_email or mobile`},
		{"jit template", [2]string{"app_secret: s1}", "app_secret: s1, jit: {username: \"{{.JobNumber\"}}"}, `corps[0].jit.username: is not a valid template`},
		{"events half", [2]string{"app_secret: s1}", "app_secret: s1, events: {token: t}}"}, `corps[0].events: token and aes_key must be set together`},
		{"events aes key", [2]string{"app_secret: s1}", "app_secret: s1, events: {token: t, aes_key: short}}"}, `corps[0].events.aes_key: must be the 43 characters`},
		{"qr script", [2]string{"issuer:", "dingtalk: {qr_script_url: \"ddlogin.js\"}\nissuer:"}, "dingtalk.qr_script_url: must be an absolute URL"},
		{"profile max age", [2]string{"issuer:", "dingtalk: {profile_max_age: -1h}\nissuer:"}, "dingtalk.profile_max_age: must be between"},
		{"id token alg", [2]string{"    redirect_uris:", "    id_token_signing_alg: none\n    redirect_uris:"}, `clients[0].id_token_signing_alg: must be RS256 or ES256; got "none"`},
		{"access token format", [2]string{"    redirect_uris:", "    access_token_format: paseto\n    redirect_uris:"}, `clients[0].access_token_format: must be opaque or jwt`},
		{"access token lifetime", [2]string{"    redirect_uris:", "    access_token_lifetime: 48h\n    redirect_uris:"}, `clients[0].access_token_lifetime: must be between 1m0s and 24h0m0s`},
		{"refresh chain shorter than one token", [2]string{"    redirect_uris:", "    refresh_token_lifetime: 100h\n    refresh_token_absolute_lifetime: 10h\n    redirect_uris:"}, `clients[0].refresh_token_absolute_lifetime: must not be shorter`},
		{"session lifetime", [2]string{"issuer:", "oidc: {session_lifetime: 10s}\nissuer:"}, "oidc.session_lifetime: must be between"},
		{"rotation period", [2]string{"issuer:", "oidc: {key_rotation_period: 10m}\nissuer:"}, "oidc.key_rotation_period: must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := strings.Replace(minimal(), tt.replace[0], tt.replace[1], 1)
			if raw == minimal() {
				t.Fatalf("test setup: %q not found in minimal config", tt.replace[0])
			}
			cfg, err := ParseConfig([]byte(raw), noEnv)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			err = cfg.Validate(true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}

// TestMetricsListen: metrics are off unless metrics.listen names an
// address, which may be any host:port but the public listener's.
func TestMetricsListen(t *testing.T) {
	for _, tt := range []struct {
		yaml, want string
	}{
		{"", ""},
		{"metrics: {listen: \"127.0.0.1:9090\"}\n", "127.0.0.1:9090"},
		{"metrics: {listen: \":9090\"}\n", ":9090"},
		{"listen: 127.0.0.1:0\nmetrics: {listen: \"127.0.0.1:0\"}\n", "127.0.0.1:0"},
	} {
		cfg, err := ParseConfig([]byte(tt.yaml+minimal()), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(true); err != nil {
			t.Errorf("%q: Validate() = %v, want nil", tt.yaml, err)
		}
		if cfg.Metrics.Listen != tt.want {
			t.Errorf("%q: metrics.listen = %q, want %q", tt.yaml, cfg.Metrics.Listen, tt.want)
		}
	}
}

func TestValidateReportsAllProblemsAtOnce(t *testing.T) {
	cfg, err := ParseConfig([]byte("issuer: http://evil.example\nclients: [{id: x}]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(true)
	if err == nil {
		t.Fatal("Validate() = nil, want many problems")
	}
	for _, key := range []string{"issuer:", "database.url:", "secrets.key_encryption_key:",
		"secrets.cookie_hash_key:", "secrets.cookie_block_key:", "corps:", "clients[0].secret:", "clients[0].redirect_uris:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() does not mention %s; got:\n%v", key, err)
		}
	}
}

func TestValidateAllowsLoopbackHTTPAndNoDatabaseForDemo(t *testing.T) {
	raw := strings.NewReplacer(
		"https://sso.example.com", "http://127.0.0.1:8080",
		"https://app.example.com/cb", "http://localhost:3000/cb",
		`database: {url: "postgres://localhost/db"}`, "",
	).Replace(minimal())
	cfg, err := ParseConfig([]byte(raw), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Errorf("Validate(needDatabase=false) = %v, want nil", err)
	}
}

func TestValidateNeverPrintsSecrets(t *testing.T) {
	secret := "sup3r-s3cret-value-that-is-not-base64!"
	raw := strings.Replace(minimal(), "key_encryption_key: "+key32, "key_encryption_key: "+secret, 1)
	cfg, err := ParseConfig([]byte(raw), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(true)
	if err == nil {
		t.Fatal("Validate() = nil, want a key error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Validate() error shows the secret: %v", err)
	}
}

func TestValidateTokensMustNotOutliveTheirSigningKey(t *testing.T) {
	raw := strings.NewReplacer(
		"issuer:", "oidc: {key_retire_after: 2h}\nissuer:",
		"    redirect_uris:", "    access_token_lifetime: 3h\n    redirect_uris:",
	).Replace(minimal())
	cfg, err := ParseConfig([]byte(raw), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := "clients[0]: token lifetimes must not exceed oidc.key_retire_after"
	if err := cfg.Validate(true); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

func TestValidateReservesTheAdminClientID(t *testing.T) {
	raw := strings.Replace(minimal(), "  - id: app", "  - id: "+adminClientID, 1)
	for _, tt := range []struct {
		admin string
		want  bool
	}{{"", false}, {"admin: {usernames: [root]}\n", true}} {
		cfg, err := ParseConfig([]byte(tt.admin+raw), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.Validate(true)
		if got := err != nil && strings.Contains(err.Error(), "is the admin console's own client"); got != tt.want {
			t.Errorf("admin %q: Validate() = %v, want the reserved-id error: %v", tt.admin, err, tt.want)
		}
	}
}
