package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// server is the library's endpoint implementation with the checks the
// library leaves to us (SECURITY.md §1): client authentication reported as
// 401 and checked before the code is read, PKCE enforced whenever a
// challenge was sent, no token in a URL query, and every grant type we do
// not offer refused.
type server struct {
	*op.LegacyServer
	p *Provider
}

// VerifyClient authenticates the client of a token, introspection or
// revocation request. A failure is 401 invalid_client (RFC 6749 §5.2); an
// authorization code sent with failed client authentication is burned, so
// that a stolen code is worth one guess at the secret, not many.
func (s *server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	c, ok := s.p.clients[r.Data.ClientID]
	if !ok {
		return nil, invalidClient("unknown client")
	}
	if r.Data.ClientAssertion != "" || r.Data.ClientAssertionType != "" {
		return nil, invalidClient("client assertions are not supported")
	}
	if c.Public {
		if r.Data.ClientSecret != "" {
			return nil, invalidClient("a public client has no secret")
		}
		return c, nil
	}
	limitKey := clientIPFrom(ctx) + "|" + c.ID
	if wait := s.p.limiter.blocked(limitKey); wait > 0 {
		return nil, op.NewStatusError(&oidc.Error{ErrorType: "temporarily_unavailable",
			Description: fmt.Sprintf("too many failed attempts; retry in %d seconds", int(wait.Seconds())+1)}, http.StatusTooManyRequests)
	}
	if !c.secretMatches(r.Data.ClientSecret) {
		s.p.limiter.fail(limitKey)
		if code := r.Form.Get("code"); code != "" && r.Form.Get("grant_type") == string(oidc.GrantTypeCode) {
			if ar, err := s.p.store.ConsumeCode(ctx, hashToken(code), s.p.now()); err == nil && ar.ClientID == c.ID {
				s.p.log.WarnContext(ctx, "authorization code burned after failed client authentication", "client_id", c.ID)
			}
		}
		return nil, invalidClient("client authentication failed")
	}
	return c, nil
}

func invalidClient(desc string) error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", desc), http.StatusUnauthorized)
}

// codeVerifierSyntax is RFC 7636 §4.1: 43 to 128 unreserved characters.
var codeVerifierSyntax = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// CodeExchange redeems an authorization code. The code is consumed first
// and atomically (so a failed check below still burns it, RFC-08), then
// bound to the client, the redirect URI and the PKCE challenge.
func (s *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	if v := r.Data.CodeVerifier; v != "" && !codeVerifierSyntax.MatchString(v) {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_verifier must be 43 to 128 unreserved characters")
	}
	got, err := s.p.storage.AuthRequestByCode(ctx, r.Data.Code)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	ar := got.(*authRequest)
	switch {
	case ar.ClientID != r.Client.GetID():
		return nil, oidc.ErrInvalidGrant().WithDescription("code was issued to another client")
	case r.Data.RedirectURI != ar.RedirectURI:
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	case !ar.AuthRequest.Done:
		return nil, oidc.ErrInvalidGrant().WithDescription("authorization request is not complete")
	}
	// op.AuthorizeCodeChallenge: verifier required iff a challenge was sent
	// (the library's own CodeExchange skips this for confidential clients
	// that omit the verifier).
	if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, ar.GetCodeChallenge()); err != nil {
		return nil, err
	}
	if err := s.p.storage.accountActive(ctx, ar.Subject); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("the account cannot sign in")
	}
	resp, err := op.CreateTokenResponse(withClientContext(ctx, r.Client), ar, r.Client, s.p.op, true, r.Data.Code, "")
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

// RefreshToken is the library's, with the client in the context so that the
// ID token is signed with the client's algorithm. (Clients without
// offline_access never reach it: the library checks their grant types.)
func (s *server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	return s.LegacyServer.RefreshToken(withClientContext(ctx, r.Client), r)
}

// UserInfo refuses tokens in the URL query (RFC 9700 §4.3.2: they leak
// through logs and Referer) and answers every unusable token with 401
// invalid_token; bearerChallenge adds the RFC 6750 header.
func (s *server) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	if r.URL.Query().Has("access_token") {
		return nil, op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("access tokens are not accepted in the URL query"), http.StatusBadRequest)
	}
	resp, err := s.LegacyServer.UserInfo(ctx, r)
	if err != nil {
		return nil, op.NewStatusError(&oidc.Error{ErrorType: "invalid_token", Description: "the access token is invalid, expired or revoked"}, http.StatusUnauthorized)
	}
	return resp, nil
}

// Introspect requires client authentication (401 otherwise) and reports a
// token active only to the client it was issued to.
func (s *server) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	cc := r.Data.ClientCredentials
	c, ok := s.p.clients[cc.ClientID]
	if !ok || !c.secretMatches(cc.ClientSecret) {
		return nil, invalidClient("client authentication failed")
	}
	return s.LegacyServer.Introspect(ctx, r)
}

var errGrantNotOffered = op.NewStatusError(oidc.ErrUnsupportedGrantType().WithDescription("grant type not offered"), http.StatusBadRequest)

// Grants dingbridge does not offer.
func (s *server) JWTProfile(context.Context, *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return nil, errGrantNotOffered
}

func (s *server) TokenExchange(context.Context, *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	return nil, errGrantNotOffered
}

func (s *server) ClientCredentialsExchange(context.Context, *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	return nil, errGrantNotOffered
}

func (s *server) DeviceToken(context.Context, *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	return nil, errGrantNotOffered
}

func (s *server) DeviceAuthorization(context.Context, *op.ClientRequest[oidc.DeviceAuthorizationRequest]) (*op.Response, error) {
	return nil, errors.New("device authorization is not offered")
}

// jwksBody is the JWKS as served, for one key set.
type jwksBody struct {
	kids string // the key set it was made from: every kid, in order
	body json.RawMessage
}

// Keys serves the JWKS from a body cached per key set: marshalling the
// public keys is most of what a JWKS request costs, and the set changes
// only when keys rotate (a new kid, or one retired, changes the cache key).
func (s *server) Keys(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	keys, err := s.p.storage.KeySet(ctx)
	if err != nil {
		return nil, op.AsStatusError(err, http.StatusInternalServerError)
	}
	var kids strings.Builder
	for _, k := range keys {
		kids.WriteString(k.ID())
		kids.WriteByte(' ')
	}
	cached := s.p.jwks.Load()
	if cached == nil || cached.kids != kids.String() {
		set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
		for _, k := range keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{KeyID: k.ID(), Algorithm: string(k.Algorithm()), Use: k.Use(), Key: k.Key()})
		}
		body, err := json.Marshal(set)
		if err != nil {
			return nil, op.AsStatusError(err, http.StatusInternalServerError)
		}
		cached = &jwksBody{kids: kids.String(), body: body}
		s.p.jwks.Store(cached)
	}
	resp := op.NewResponse(cached.body)
	// Clients may cache the set briefly: a key is published as next for a
	// whole rotation period before it signs, far longer than this.
	resp.Header.Set("Cache-Control", "public, max-age=300")
	return resp, nil
}
