package idp

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientConfig is one relying party as the operator configured it.
type ClientConfig struct {
	ID                     string
	Name                   string
	Secret                 string // empty for a public client
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	InitiateLoginURI       string
	Scopes                 []string // scopes the client may request; must include openid
	Corps                  []string // corps whose employees may sign in; empty = all

	IDTokenAlgorithm     string        // "RS256" (default) or "ES256"
	AccessTokenJWT       bool          // RFC 9068 JWT access tokens instead of opaque ones
	IDTokenLifetime      time.Duration // default 1h
	AccessTokenLifetime  time.Duration // default 1h
	RefreshTokenLifetime time.Duration // idle lifetime of a refresh token; default 30 days
	RefreshFamilyLife    time.Duration // absolute lifetime of a refresh family; default 90 days
}

// Default token lifetimes, used where a client sets none.
const (
	defaultIDTokenLifetime      = time.Hour
	defaultAccessTokenLifetime  = time.Hour
	defaultRefreshTokenLifetime = 30 * 24 * time.Hour
	defaultRefreshFamilyLife    = 90 * 24 * time.Hour
)

// client is a configured relying party as zitadel's op package sees it.
// The secret is kept only as a SHA-256 digest: config secrets are long
// random strings, so a slow password hash would add latency to every token
// request without adding protection, and a digest keeps the plaintext out of
// memory after start-up.
type client struct {
	ClientConfig
	secretHash [sha256.Size]byte
	loginURL   func(authRequestID string) string
}

var _ op.Client = (*client)(nil)

// newClients validates the configured clients and builds their op view.
func newClients(cfgs []ClientConfig, loginURL func(string) string) (map[string]*client, error) {
	out := make(map[string]*client, len(cfgs))
	var errs []error
	for _, c := range cfgs {
		if c.ID == "" {
			errs = append(errs, errors.New("client without id"))
			continue
		}
		if _, dup := out[c.ID]; dup {
			errs = append(errs, fmt.Errorf("client %q configured twice", c.ID))
		}
		if c.Public != (c.Secret == "") {
			errs = append(errs, fmt.Errorf("client %q: a public client has no secret, a confidential one must have one", c.ID))
		}
		if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
			errs = append(errs, fmt.Errorf("client %q: scopes must include openid", c.ID))
		}
		switch c.IDTokenAlgorithm {
		case "":
			c.IDTokenAlgorithm = "RS256"
		case "RS256", "ES256":
		default:
			errs = append(errs, fmt.Errorf("client %q: id token algorithm %q is not RS256 or ES256", c.ID, c.IDTokenAlgorithm))
		}
		setDefault(&c.IDTokenLifetime, defaultIDTokenLifetime)
		setDefault(&c.AccessTokenLifetime, defaultAccessTokenLifetime)
		setDefault(&c.RefreshTokenLifetime, defaultRefreshTokenLifetime)
		setDefault(&c.RefreshFamilyLife, defaultRefreshFamilyLife)
		cl := &client{ClientConfig: c, loginURL: loginURL}
		if !c.Public {
			cl.secretHash = sha256.Sum256([]byte(c.Secret))
		}
		cl.Secret = "" // keep only the digest
		out[c.ID] = cl
	}
	return out, errors.Join(errs...)
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// secretMatches compares in constant time.
func (c *client) secretMatches(secret string) bool {
	if c.Public {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], c.secretHash[:]) == 1
}

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.ClientConfig.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.ClientConfig.PostLogoutRedirectURIs }
func (c *client) LoginURL(id string) string        { return c.loginURL(id) }
func (c *client) IDTokenLifetime() time.Duration   { return c.ClientConfig.IDTokenLifetime }
func (c *client) DevMode() bool                    { return false }
func (c *client) ClockSkew() time.Duration         { return 0 }

// IDTokenUserinfoClaimsAssertion is false: with an access token, profile
// claims come from userinfo, as OIDC Core 5.4 describes.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }

func (c *client) ApplicationType() op.ApplicationType {
	if c.Public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

// ResponseTypes is code only: no implicit or hybrid flows (RFC 9700 §2.1.2).
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	g := []oidc.GrantType{oidc.GrantTypeCode}
	if slices.Contains(c.Scopes, oidc.ScopeOfflineAccess) {
		g = append(g, oidc.GrantTypeRefreshToken)
	}
	return g
}

func (c *client) AccessTokenType() op.AccessTokenType {
	if c.AccessTokenJWT {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed reports whether the client may be granted scope.
func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(c.Scopes, scope) }

// grantable filters requested scopes to those this client may receive,
// keeping the request's order.
func (c *client) grantable(requested []string) []string {
	return slices.DeleteFunc(slices.Clone(requested), func(s string) bool { return !c.IsScopeAllowed(s) })
}

// allowsCorp reports whether employees of corp may sign in to this client.
func (c *client) allowsCorp(corp string) bool {
	return len(c.Corps) == 0 || slices.Contains(c.Corps, corp)
}
