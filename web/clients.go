package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ClientInfo is an OpenID Connect client as the clients page shows it. It
// has no field for the secret, so the page cannot show one.
type ClientInfo struct {
	ID   string
	Name string
	// Public clients have no secret and must use PKCE.
	Public bool
	// Internal marks dingbridge's own clients (the console's), which
	// nobody integrates.
	Internal bool
	// SecretSource says where the secret is configured, e.g. the
	// configuration key "clients[0].secret"; empty for public clients.
	SecretSource           string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	InitiateLoginURI       string
	Scopes                 []string
	// Corps are the corps whose employees may sign in; empty means all.
	Corps             []string
	IDTokenSigningAlg string
	AccessTokenFormat string // "jwt" or "opaque"
	IDTokenLifetime, AccessTokenLifetime,
	RefreshTokenLifetime, RefreshTokenAbsoluteLifetime time.Duration
	// WorkbenchURL is the home page to give the client's app in each corp's
	// DingTalk developer console, with DingTalk's $CORPID$ placeholder.
	WorkbenchURL string
}

// clientView is one client with what the page derives from it.
type clientView struct {
	ClientInfo
	Snippet   string
	Workbench []workbenchRow
	AllCorps  bool           // no corp restriction
	Allowed   []DingTalkCorp // the allowed corps, by name where configured
	Lifetimes []lifetime
}

// workbenchRow is one corp a client's workbench URL goes into.
type workbenchRow struct {
	Corp DingTalkCorp
	URL  string
}

type lifetime struct {
	Key   string // text key
	Value string
}

// clients shows every configured client, read-only, with a snippet to paste
// into the application's OIDC settings and its workbench URLs.
func (s *Server) clients(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "clients", "cl_title")
	views := make([]clientView, 0, len(s.cfg.Clients))
	for _, c := range s.cfg.Clients {
		views = append(views, s.clientView(c, p.T))
	}
	// The console's own client last: it is listed only so that its id in
	// logs and the audit trail is not a mystery.
	slices.SortStableFunc(views, func(a, b clientView) int {
		switch {
		case a.Internal == b.Internal:
			return 0
		case a.Internal:
			return 1
		}
		return -1
	})
	p.D = struct {
		Clients      []clientView
		Issuer       string
		DiscoveryURL string
	}{views, s.cfg.Issuer, s.discoveryURL()}
	s.render(w, r, http.StatusOK, "clients", p)
}

func (s *Server) discoveryURL() string {
	return strings.TrimRight(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
}

func (s *Server) clientView(c ClientInfo, t map[string]string) clientView {
	v := clientView{ClientInfo: c, AllCorps: len(c.Corps) == 0}
	for _, id := range c.Corps {
		corp, _ := s.corp(id)
		corp.ID = id
		v.Allowed = append(v.Allowed, corp)
	}
	for _, l := range []struct {
		key string
		d   time.Duration
	}{
		{"cl_id_token_lifetime", c.IDTokenLifetime}, {"cl_access_token_lifetime", c.AccessTokenLifetime},
		{"cl_refresh_token_lifetime", c.RefreshTokenLifetime}, {"cl_refresh_absolute_lifetime", c.RefreshTokenAbsoluteLifetime},
	} {
		if l.d > 0 {
			v.Lifetimes = append(v.Lifetimes, lifetime{l.key, configDuration(l.d)})
		}
	}
	if c.Internal {
		return v
	}
	if c.WorkbenchURL != "" {
		for _, corp := range s.cfg.DingTalkCorps {
			if v.AllCorps || slices.Contains(c.Corps, corp.ID) {
				v.Workbench = append(v.Workbench, workbenchRow{Corp: corp, URL: c.WorkbenchURL})
			}
		}
	}
	v.Snippet = s.snippet(c, t)
	return v
}

// snippet is the text an application owner pastes into their OIDC
// library's settings: plain "key: value" lines, the names the OIDC specs
// use, so that it reads the same in every language.
func (s *Server) snippet(c ClientInfo, t map[string]string) string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-26s %s\n", k+":", v) }
	line("issuer", s.cfg.Issuer)
	line("discovery", s.discoveryURL())
	line("client_id", c.ID)
	if c.Public {
		line("client_secret", t["cl_snippet_public"])
		line("token_endpoint_auth", "none")
	} else {
		line("client_secret", strings.ReplaceAll(t["cl_snippet_secret"], "{source}", c.SecretSource))
		line("token_endpoint_auth", "client_secret_basic")
	}
	line("response_type", "code")
	line("scope", strings.Join(c.Scopes, " "))
	for _, u := range c.RedirectURIs {
		line("redirect_uri", u)
	}
	for _, u := range c.PostLogoutRedirectURIs {
		line("post_logout_redirect_uri", u)
	}
	if c.InitiateLoginURI != "" {
		line("initiate_login_uri", c.InitiateLoginURI)
	}
	if c.Public {
		line("pkce", "S256 — "+t["cl_snippet_pkce_required"])
	} else {
		line("pkce", "S256 — "+t["cl_snippet_pkce_recommended"])
	}
	return b.String()
}

// configDuration writes d as the configuration file does: "1h", "720h",
// "30m", rather than Go's "720h0m0s".
func configDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
