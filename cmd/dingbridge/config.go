package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of dingbridge's configuration: one YAML file, secrets
// pulled in from the environment as ${VAR}. Every key is documented in
// config.example.yaml, which a test loads.
type Config struct {
	Issuer string `yaml:"issuer"`
	Listen string `yaml:"listen"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client (see clientAddr).
	TrustedProxies []string       `yaml:"trusted_proxies"`
	Log            LogConfig      `yaml:"log"`
	Metrics        MetricsConfig  `yaml:"metrics"`
	Database       DatabaseConfig `yaml:"database"`
	Secrets        SecretsConfig  `yaml:"secrets"`
	OIDC           OIDCConfig     `yaml:"oidc"`
	DingTalk       DingTalkConfig `yaml:"dingtalk"`
	Corps          []CorpConfig   `yaml:"corps"`
	Clients        []ClientConfig `yaml:"clients"`
	Admin          AdminConfig    `yaml:"admin"`
}

// AdminConfig configures the admin console at issuer + "/admin". It is on
// when Groups or Usernames name someone.
type AdminConfig struct {
	Groups          []string      `yaml:"groups"`
	Usernames       []string      `yaml:"usernames"`
	SessionIdle     time.Duration `yaml:"session_idle"`
	SessionAbsolute time.Duration `yaml:"session_absolute"`
	// SelfCheckInterval is how long after a corp's DingTalk self-check the
	// next may run: each run spends DingTalk's call quota.
	SelfCheckInterval time.Duration `yaml:"self_check_interval"`
}

// Enabled reports whether anyone can be an administrator.
func (a AdminConfig) Enabled() bool { return len(a.Groups) > 0 || len(a.Usernames) > 0 }

// LogConfig chooses the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is the address of a second HTTP listener that serves /metrics
	// and nothing else; empty (the default) serves no metrics. Never the
	// public listener: the metrics name clients and corps.
	Listen string `yaml:"listen"`
}

// DatabaseConfig says where Postgres is and how to use it.
type DatabaseConfig struct {
	URL         string `yaml:"url"`
	AutoMigrate *bool  `yaml:"auto_migrate"`
	MaxConns    int32  `yaml:"max_conns"`
}

// SecretsConfig holds the keys dingbridge uses to protect what it stores and
// what it hands to browsers. Each is base64 (standard alphabet) and usually
// comes from the environment.
type SecretsConfig struct {
	KeyEncryptionKey string `yaml:"key_encryption_key"`
	CookieHashKey    string `yaml:"cookie_hash_key"`
	CookieBlockKey   string `yaml:"cookie_block_key"`
}

// OIDCConfig tunes the provider: sessions, signing keys, clean-up.
type OIDCConfig struct {
	SessionLifetime   time.Duration `yaml:"session_lifetime"`
	KeyRotationPeriod time.Duration `yaml:"key_rotation_period"`
	KeyRetireAfter    time.Duration `yaml:"key_retire_after"`
	CleanupInterval   time.Duration `yaml:"cleanup_interval"`
	CleanupRetention  time.Duration `yaml:"cleanup_retention"`
}

// DingTalkConfig holds the DingTalk endpoints. They are configuration so that
// tests and the demo can point them at the simulator.
type DingTalkConfig struct {
	APIBaseURL        string        `yaml:"api_base_url"`
	OAPIBaseURL       string        `yaml:"oapi_base_url"`
	LoginBaseURL      string        `yaml:"login_base_url"`
	JSAPIScriptURL    string        `yaml:"jsapi_script_url"`
	QRScriptURL       string        `yaml:"qr_script_url"`
	Timeout           time.Duration `yaml:"timeout"`
	ProfileMaxAge     time.Duration `yaml:"profile_max_age"`
	VerifyMembership  bool          `yaml:"verify_membership"`
	WorkbenchStartURL string        `yaml:"workbench_start_url"`
	RateLimit         float64       `yaml:"rate_limit"`
	// SharedRateLimit keeps rate_limit for all replicas together, in
	// Postgres (package dingtalk/sharedlimit), instead of for each replica alone.
	SharedRateLimit *bool         `yaml:"shared_rate_limit"`
	ThrottleBudget  time.Duration `yaml:"throttle_budget"`
}

// CorpConfig is one DingTalk organisation and the internal app dingbridge
// uses inside it.
type CorpConfig struct {
	ID                  string       `yaml:"id"`
	Name                string       `yaml:"name"`
	AppKey              string       `yaml:"app_key"`
	AppSecret           string       `yaml:"app_secret"`
	AgentID             string       `yaml:"agent_id"`
	LegacyTokenEndpoint bool         `yaml:"legacy_token_endpoint"`
	SNS                 SNSConfig    `yaml:"sns"`
	AutoLink            string       `yaml:"auto_link"`
	JIT                 JITConfig    `yaml:"jit"`
	Events              EventsConfig `yaml:"events"`
}

// EventsConfig is the corp's DingTalk event subscription (HTTP push).
type EventsConfig struct {
	Token  string `yaml:"token"`
	AESKey string `yaml:"aes_key"`
}

// JITConfig turns on just-in-time account creation for a corp.
type JITConfig struct {
	Username      string   `yaml:"username"`
	Groups        []string `yaml:"groups"`
	TrustOrgEmail bool     `yaml:"trust_org_email"`
}

// SNSConfig is an optional legacy "scan login" app (connect/qrconnect).
type SNSConfig struct {
	AppID     string `yaml:"app_id"`
	AppSecret string `yaml:"app_secret"`
}

// ClientConfig is one relying party: an internal system that signs its users
// in through dingbridge.
type ClientConfig struct {
	ID                     string   `yaml:"id"`
	Name                   string   `yaml:"name"`
	Secret                 string   `yaml:"secret"`
	Public                 bool     `yaml:"public"`
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	InitiateLoginURI       string   `yaml:"initiate_login_uri"`
	Scopes                 []string `yaml:"scopes"`
	Corps                  []string `yaml:"corps"`

	IDTokenSigningAlg            string        `yaml:"id_token_signing_alg"`
	AccessTokenFormat            string        `yaml:"access_token_format"`
	IDTokenLifetime              time.Duration `yaml:"id_token_lifetime"`
	AccessTokenLifetime          time.Duration `yaml:"access_token_lifetime"`
	RefreshTokenLifetime         time.Duration `yaml:"refresh_token_lifetime"`
	RefreshTokenAbsoluteLifetime time.Duration `yaml:"refresh_token_absolute_lifetime"`
}

// Defaults for keys a config file may leave out.
const (
	defaultListen         = ":8080"
	defaultAPIBaseURL     = "https://api.dingtalk.com"
	defaultOAPIBaseURL    = "https://oapi.dingtalk.com"
	defaultLoginBaseURL   = "https://login.dingtalk.com"
	defaultJSAPIScriptURL = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"
	defaultQRScriptURL    = "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js"
	defaultTimeout        = 5 * time.Second
)

// knownScopes are the scopes a client may be allowed to request.
var knownScopes = []string{"openid", "profile", "email", "phone", "groups", "offline_access", "dingtalk"}

// LoadConfig reads the YAML file at path, rejects unknown keys, expands
// ${VAR} references from lookup, and applies defaults. It does not validate:
// call Validate for that, so that every problem is reported at once.
func LoadConfig(path string, lookup func(string) (string, bool)) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(raw, lookup)
}

// ParseConfig is LoadConfig on bytes already read.
func ParseConfig(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []error
	expandEnv(reflect.ValueOf(&cfg).Elem(), "", lookup, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.applyDefaults()
	return &cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} in every string field, naming the YAML key of
// each reference to an unset variable. It walks the struct rather than the
// raw text so that a secret containing YAML syntax cannot change the file's
// structure.
func expandEnv(v reflect.Value, path string, lookup func(string) (string, bool), errs *[]error) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		v.SetString(envRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			val, ok := lookup(name)
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: environment variable %s is not set", path, name))
			}
			return val
		}))
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			expandEnv(v.Field(i), joinKey(path, key), lookup, errs)
		}
	case reflect.Slice:
		for i := range v.Len() {
			expandEnv(v.Index(i), fmt.Sprintf("%s[%d]", path, i), lookup, errs)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			expandEnv(v.Elem(), path, lookup, errs)
		}
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Database.AutoMigrate == nil {
		on := true
		c.Database.AutoMigrate = &on
	}
	d := &c.DingTalk
	if d.APIBaseURL == "" {
		d.APIBaseURL = defaultAPIBaseURL
	}
	if d.OAPIBaseURL == "" {
		d.OAPIBaseURL = defaultOAPIBaseURL
	}
	if d.LoginBaseURL == "" {
		d.LoginBaseURL = defaultLoginBaseURL
	}
	if d.JSAPIScriptURL == "" {
		d.JSAPIScriptURL = defaultJSAPIScriptURL
	}
	if d.Timeout == 0 {
		d.Timeout = defaultTimeout
	}
	setDefault(&d.QRScriptURL, defaultQRScriptURL)
	setDefault(&d.ProfileMaxAge, 24*time.Hour)
	setDefault(&d.RateLimit, 20)
	if d.SharedRateLimit == nil {
		on := true
		d.SharedRateLimit = &on
	}
	setDefault(&d.ThrottleBudget, 3*time.Second)
	o := &c.OIDC
	setDefault(&o.SessionLifetime, 12*time.Hour)
	setDefault(&o.KeyRotationPeriod, 30*24*time.Hour)
	setDefault(&o.KeyRetireAfter, 24*time.Hour)
	setDefault(&o.CleanupInterval, 5*time.Minute)
	setDefault(&o.CleanupRetention, time.Hour)
	setDefault(&c.Admin.SessionIdle, 30*time.Minute)
	setDefault(&c.Admin.SessionAbsolute, 8*time.Hour)
	setDefault(&c.Admin.SelfCheckInterval, time.Minute)
	for i := range c.Clients {
		cl := &c.Clients[i]
		if len(cl.Scopes) == 0 {
			cl.Scopes = []string{"openid", "profile", "email", "phone", "groups"}
		}
		setDefault(&cl.IDTokenSigningAlg, "RS256")
		setDefault(&cl.AccessTokenFormat, "opaque")
		setDefault(&cl.IDTokenLifetime, time.Hour)
		setDefault(&cl.AccessTokenLifetime, time.Hour)
		setDefault(&cl.RefreshTokenLifetime, 30*24*time.Hour)
		setDefault(&cl.RefreshTokenAbsoluteLifetime, 90*24*time.Hour)
	}
}

// Validate reports every problem in the configuration at once, each named by
// its YAML key, joined with errors.Join. needDatabase is false for the demo,
// which keeps its state in memory.
func (c *Config) Validate(needDatabase bool) error {
	var p problems
	p.url("issuer", c.Issuer, urlRules{required: true, noQuery: true})
	if strings.HasSuffix(c.Issuer, "/") {
		p.add("issuer", "must not end with /: the issuer is compared as an exact string by every client")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "must be host:port (e.g. :8080): %v", err)
	}
	if c.Metrics.Listen != "" {
		p.metricsListen(c.Metrics.Listen, c.Listen)
	}
	for i, e := range c.TrustedProxies {
		if _, err := parseProxies([]string{e}); err != nil {
			p.add(fmt.Sprintf("trusted_proxies[%d]", i), "must be an IP address or a CIDR prefix (e.g. 10.0.0.0/8); got %q", e)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		p.add("log.format", "must be json or text; got %q", c.Log.Format)
	}
	if needDatabase && c.Database.URL == "" {
		p.add("database.url", "is required (e.g. postgres://dingbridge@db:5432/dingbridge)")
	}
	if c.Database.MaxConns < 0 {
		p.add("database.max_conns", "must not be negative")
	}
	p.key("secrets.key_encryption_key", c.Secrets.KeyEncryptionKey, 32)
	p.key("secrets.cookie_hash_key", c.Secrets.CookieHashKey, 32, 64)
	p.key("secrets.cookie_block_key", c.Secrets.CookieBlockKey, 32)

	o := c.OIDC
	for _, d := range []struct {
		key      string
		v        time.Duration
		min, max time.Duration
	}{
		{"oidc.session_lifetime", o.SessionLifetime, time.Minute, 30 * 24 * time.Hour},
		{"oidc.key_rotation_period", o.KeyRotationPeriod, time.Hour, 365 * 24 * time.Hour},
		{"oidc.key_retire_after", o.KeyRetireAfter, time.Hour, 365 * 24 * time.Hour},
		{"oidc.cleanup_interval", o.CleanupInterval, time.Second, 24 * time.Hour},
		{"oidc.cleanup_retention", o.CleanupRetention, 0, 30 * 24 * time.Hour},
	} {
		p.duration(d.key, d.v, d.min, d.max)
	}

	a := c.Admin
	p.duration("admin.session_idle", a.SessionIdle, time.Minute, 24*time.Hour)
	p.duration("admin.session_absolute", a.SessionAbsolute, time.Minute, 7*24*time.Hour)
	p.duration("admin.self_check_interval", a.SelfCheckInterval, 0, 24*time.Hour)
	if a.SessionAbsolute < a.SessionIdle {
		p.add("admin.session_absolute", "must not be shorter than admin.session_idle (%s)", a.SessionIdle)
	}
	for i, g := range a.Groups {
		if strings.TrimSpace(g) == "" {
			p.add(fmt.Sprintf("admin.groups[%d]", i), "must not be empty")
		}
	}
	for i, u := range a.Usernames {
		if strings.TrimSpace(u) == "" {
			p.add(fmt.Sprintf("admin.usernames[%d]", i), "must not be empty")
		}
	}

	d := c.DingTalk
	p.url("dingtalk.api_base_url", d.APIBaseURL, urlRules{required: true, noQuery: true})
	p.url("dingtalk.oapi_base_url", d.OAPIBaseURL, urlRules{required: true, noQuery: true})
	p.url("dingtalk.login_base_url", d.LoginBaseURL, urlRules{required: true, noQuery: true})
	p.url("dingtalk.jsapi_script_url", d.JSAPIScriptURL, urlRules{required: true})
	p.url("dingtalk.qr_script_url", d.QRScriptURL, urlRules{required: true})
	p.url("dingtalk.workbench_start_url", d.WorkbenchStartURL, urlRules{})
	p.duration("dingtalk.profile_max_age", d.ProfileMaxAge, 0, 365*24*time.Hour)
	p.duration("dingtalk.throttle_budget", d.ThrottleBudget, 0, time.Minute)
	if d.RateLimit <= 0 || d.RateLimit > 1000 {
		p.add("dingtalk.rate_limit", "must be between 0 and 1000 calls per second; got %v", d.RateLimit)
	}
	if d.Timeout < 0 || d.Timeout > time.Minute {
		p.add("dingtalk.timeout", "must be between 0 and 1m; got %s", d.Timeout)
	}

	if len(c.Corps) == 0 {
		p.add("corps", "at least one DingTalk corp is required")
	}
	corpIDs := map[string]bool{}
	for i, corp := range c.Corps {
		k := fmt.Sprintf("corps[%d]", i)
		switch {
		case corp.ID == "":
			p.add(k+".id", "is required (the corpId, starting with ding…)")
		case corpIDs[corp.ID]:
			p.add(k+".id", "%q is configured twice", corp.ID)
		}
		corpIDs[corp.ID] = true
		if corp.AppKey == "" {
			p.add(k+".app_key", "is required (the internal app's Client ID / AppKey)")
		}
		if corp.AppSecret == "" {
			p.add(k+".app_secret", "is required (the internal app's Client Secret / AppSecret)")
		}
		if (corp.SNS.AppID == "") != (corp.SNS.AppSecret == "") {
			p.add(k+".sns", "app_id and app_secret must be set together (or both left out)")
		}
		switch corp.AutoLink {
		case "", "job_number", "org_email", "mobile":
		default:
			p.add(k+".auto_link", "must be job_number, org_email or mobile (directory attributes the corp assigns), or empty; got %q", corp.AutoLink)
		}
		if e := corp.Events; e.Token != "" || e.AESKey != "" {
			if e.Token == "" || e.AESKey == "" {
				p.add(k+".events", "token and aes_key must be set together (or both left out)")
			} else if len(e.AESKey) != 43 {
				p.add(k+".events.aes_key", "must be the 43 characters DingTalk's console shows; got %d", len(e.AESKey))
			}
		}
		if corp.JIT.Username != "" {
			if _, err := template.New("jit").Parse(corp.JIT.Username); err != nil {
				p.add(k+".jit.username", "is not a valid template: %v", err)
			}
		}
	}

	clientIDs := map[string]bool{}
	for i, cl := range c.Clients {
		k := fmt.Sprintf("clients[%d]", i)
		switch {
		case cl.ID == "":
			p.add(k+".id", "is required")
		case clientIDs[cl.ID]:
			p.add(k+".id", "%q is configured twice", cl.ID)
		}
		clientIDs[cl.ID] = true
		if cl.ID == adminClientID && c.Admin.Enabled() {
			p.add(k+".id", "%q is the admin console's own client; choose another id", cl.ID)
		}
		switch {
		case cl.Public && cl.Secret != "":
			p.add(k+".secret", "must be empty for a public client (public clients use PKCE instead)")
		case !cl.Public && len(cl.Secret) < 16:
			p.add(k+".secret", "is required for a confidential client and must be at least 16 characters")
		}
		if len(cl.RedirectURIs) == 0 {
			p.add(k+".redirect_uris", "at least one redirect URI is required")
		}
		for j, u := range cl.RedirectURIs {
			p.url(fmt.Sprintf("%s.redirect_uris[%d]", k, j), u, urlRules{required: true})
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			p.url(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", k, j), u, urlRules{required: true})
		}
		p.url(k+".initiate_login_uri", cl.InitiateLoginURI, urlRules{})
		if !slices.Contains(cl.Scopes, "openid") {
			p.add(k+".scopes", "must include openid")
		}
		for _, s := range cl.Scopes {
			if !slices.Contains(knownScopes, s) {
				p.add(k+".scopes", "unknown scope %q (known: %s)", s, strings.Join(knownScopes, ", "))
			}
		}
		for _, corp := range cl.Corps {
			if !corpIDs[corp] {
				p.add(k+".corps", "%q is not a configured corp id", corp)
			}
		}
		if cl.IDTokenSigningAlg != "RS256" && cl.IDTokenSigningAlg != "ES256" {
			p.add(k+".id_token_signing_alg", "must be RS256 or ES256; got %q", cl.IDTokenSigningAlg)
		}
		if cl.AccessTokenFormat != "opaque" && cl.AccessTokenFormat != "jwt" {
			p.add(k+".access_token_format", "must be opaque or jwt; got %q", cl.AccessTokenFormat)
		}
		p.duration(k+".id_token_lifetime", cl.IDTokenLifetime, time.Minute, 24*time.Hour)
		p.duration(k+".access_token_lifetime", cl.AccessTokenLifetime, time.Minute, 24*time.Hour)
		p.duration(k+".refresh_token_lifetime", cl.RefreshTokenLifetime, time.Minute, 365*24*time.Hour)
		p.duration(k+".refresh_token_absolute_lifetime", cl.RefreshTokenAbsoluteLifetime, time.Minute, 365*24*time.Hour)
		if cl.RefreshTokenAbsoluteLifetime < cl.RefreshTokenLifetime {
			p.add(k+".refresh_token_absolute_lifetime", "must not be shorter than refresh_token_lifetime")
		}
	}
	if o.KeyRetireAfter > 0 {
		for i, cl := range c.Clients {
			if cl.IDTokenLifetime > o.KeyRetireAfter || cl.AccessTokenLifetime > o.KeyRetireAfter {
				p.add(fmt.Sprintf("clients[%d]", i), "token lifetimes must not exceed oidc.key_retire_after (%s): "+
					"a token must stay verifiable until it expires", o.KeyRetireAfter)
			}
		}
	}
	return errors.Join(p...)
}

// problems collects validation failures, each prefixed by its YAML key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// metricsListen checks metrics.listen: host:port, and not the public
// listener's port (both would fail to bind, or metrics would be public).
func (p *problems) metricsListen(addr, public string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add("metrics.listen", "must be host:port (e.g. 127.0.0.1:9090 or :9090), or empty for no metrics: %v", err)
		return
	}
	if _, publicPort, err := net.SplitHostPort(public); err == nil && port == publicPort && port != "0" {
		p.add("metrics.listen", "must not use the port of listen (%s): /metrics is never served on the public listener", public)
	}
}

// duration checks that a duration lies within [min, max].
func (p *problems) duration(name string, v, min, max time.Duration) {
	if v < min || v > max {
		p.add(name, "must be between %s and %s; got %s", min, max, v)
	}
}

// key checks a base64-encoded secret. It never prints the value.
func (p *problems) key(name, value string, sizes ...int) {
	want := fmt.Sprint(sizes[0])
	if len(sizes) > 1 {
		want = fmt.Sprintf("%d or %d", sizes[0], sizes[1])
	}
	if value == "" {
		p.add(name, "is required: %s random bytes, base64 (e.g. openssl rand -base64 %d)", want, sizes[0])
		return
	}
	b, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		p.add(name, "is not valid base64")
		return
	}
	if !slices.Contains(sizes, len(b)) {
		p.add(name, "must decode to %s bytes; got %d", want, len(b))
	}
}

type urlRules struct {
	required bool
	noQuery  bool
}

// url checks an absolute https URL; plain http is accepted only for
// loopback hosts (local development and the demo). Fragments are refused
// everywhere: OAuth forbids them in redirect URIs and they mean nothing to an
// issuer or an API base.
func (p *problems) url(name, raw string, r urlRules) {
	if raw == "" {
		if r.required {
			p.add(name, "is required")
		}
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		p.add(name, "is not a valid URL: %v", err)
		return
	case !u.IsAbs() || u.Host == "":
		p.add(name, "must be an absolute URL; got %q", raw)
		return
	case u.Fragment != "" || strings.Contains(raw, "#"):
		p.add(name, "must not contain a fragment (#…)")
	case r.noQuery && u.RawQuery != "":
		p.add(name, "must not contain a query string")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			p.add(name, "must use https (plain http only for localhost/127.0.0.1); got %q", raw)
		}
	default:
		p.add(name, "must use https; got scheme %q", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
