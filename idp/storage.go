package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Account is what the provider needs to know of an enterprise account to
// issue claims and to decide whether it may still sign in.
type Account struct {
	ID            string // the OIDC sub
	Username      string
	DisplayName   string
	Email         string
	EmailVerified bool
	Phone         string
	Groups        []string
	Disabled      bool
}

// AccountSource gives the provider the accounts it issues claims for; the
// mapping supplies it (cmd adapts). An unknown id is an error.
type AccountSource interface {
	Account(ctx context.Context, id string) (Account, error)
}

// errAccountDisabled refuses tokens and sign-ins of disabled accounts.
var errAccountDisabled = errors.New("account disabled")

// signer is what the provider needs from the key manager.
type signer interface {
	SigningKey(ctx context.Context, alg string) (op.SigningKey, error)
	KeySet(ctx context.Context) ([]op.Key, error)
	Algorithms(ctx context.Context) []jose.SignatureAlgorithm
}

// Lifetimes the provider applies to everything that is not per client.
const (
	authRequestLifetime = 15 * time.Minute
	codeLifetime        = 60 * time.Second // RFC-06: at most 60 s
)

// storage adapts Store, the key manager, the clients and the account source
// to zitadel's op.Storage. It holds no state of its own.
type storage struct {
	store    Store
	keys     signer
	accounts AccountSource
	clients  map[string]*client
	now      func() time.Time
	log      *slog.Logger
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

// errTokenInactive is returned for tokens that exist but may not be used.
var errTokenInactive = errors.New("token revoked, expired or its account disabled")

// --- authorization requests and codes ---

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	now := s.now()
	ar := &AuthRequest{
		ID:                  randomID(),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		Scopes:              req.Scopes,
		State:               req.State,
		Nonce:               req.Nonce,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              req.Prompt,
		UILocales:           localeStrings(req.UILocales),
		LoginHint:           req.LoginHint,
		HintSubject:         hintSubject,
		BrowserID:           browserIDFrom(ctx),
		CreatedAt:           now,
		ExpiresAt:           now.Add(authRequestLifetime),
	}
	if req.MaxAge != nil {
		d := time.Duration(*req.MaxAge) * time.Second
		ar.MaxAge = &d
	}
	if err := s.store.CreateAuthRequest(ctx, ar); err != nil {
		return nil, fmt.Errorf("create auth request: %w", err)
	}
	return &authRequest{ar}, nil
}

func localeStrings(tags oidc.Locales) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		out = append(out, t.String())
	}
	return out
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.store.AuthRequest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("auth request: %w", err)
	}
	if !s.now().Before(ar.ExpiresAt) {
		return nil, fmt.Errorf("auth request %s expired", id)
	}
	return &authRequest{ar}, nil
}

// AuthRequestByCode consumes the code: it is the single place a code is
// redeemed, atomically, so that of concurrent exchanges exactly one wins and
// a replay revokes what the first produced (BR-04).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ar, err := s.store.ConsumeCode(ctx, hashToken(code), s.now())
	if errors.Is(err, ErrCodeReplayed) {
		s.log.WarnContext(ctx, "authorization code replayed; tokens of the grant revoked")
	}
	if err != nil {
		return nil, fmt.Errorf("consume code: %w", err)
	}
	return &authRequest{ar}, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.store.SaveCode(ctx, id, hashToken(code), s.now().Add(codeLifetime))
}

// DeleteAuthRequest keeps the consumed request: it is the tombstone that
// lets a late code replay be detected. DeleteExpired removes it.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// --- tokens ---

// grantOf is what every token request carries, whatever its origin.
type grantOf interface {
	op.TokenRequest
	grant() grantInfo
}

// grantInfo describes the grant a token is issued under.
type grantInfo struct {
	ClientID  string
	GrantID   string
	FamilyID  string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	DingTalk  DingTalkIDs
}

func (s *storage) grantFrom(req op.TokenRequest) (grantInfo, error) {
	g, ok := req.(grantOf)
	if !ok {
		return grantInfo{}, fmt.Errorf("unsupported token request %T", req)
	}
	return g.grant(), nil
}

func (s *storage) clientFor(id string) (*client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("unknown client %q", id)
	}
	return c, nil
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, err := s.grantFrom(req)
	if err != nil {
		return "", time.Time{}, err
	}
	return s.createAccessToken(ctx, req, g)
}

func (s *storage) createAccessToken(ctx context.Context, req op.TokenRequest, g grantInfo) (string, time.Time, error) {
	c, err := s.clientFor(g.ClientID)
	if err != nil {
		return "", time.Time{}, err
	}
	t := accessTokenFor(req, g, c, s.now())
	if err := s.store.CreateAccessToken(ctx, t); err != nil {
		return "", time.Time{}, tokenCreationError("create access token", err)
	}
	return t.ID, t.ExpiresAt, nil
}

// accessTokenFor is the record of a new access token for req under g.
func accessTokenFor(req op.TokenRequest, g grantInfo, c *client, now time.Time) *AccessToken {
	return &AccessToken{
		ID:        randomID(),
		GrantID:   g.GrantID,
		FamilyID:  g.FamilyID,
		SessionID: g.SessionID,
		ClientID:  g.ClientID,
		Subject:   req.GetSubject(),
		Scopes:    req.GetScopes(),
		Audience:  req.GetAudience(),
		AuthTime:  g.AuthTime,
		AMR:       g.AMR,
		DingTalk:  g.DingTalk,
		CreatedAt: now,
		ExpiresAt: now.Add(c.AccessTokenLifetime),
	}
}

// tokenCreationError is the error of a failed token creation. A grant that
// a code replay revoked meanwhile (the exchange that won the code raced its
// replay, BR-04) is invalid_grant: the library answers any error without an
// oidc.Error in its chain as server_error.
func tokenCreationError(what string, err error) error {
	if errors.Is(err, ErrGrantRevoked) {
		return oidc.ErrInvalidGrant().WithDescription("the grant was revoked: its code was used more than once").WithParent(err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// CreateAccessAndRefreshTokens starts a refresh family (code grant with
// offline_access) or rotates the presented refresh token within its family
// (refresh grant). Rotation is atomic in the store: a token presented twice
// fails the second time and revokes the family. The access token is stored
// in the same step as the refresh token (CreateTokens,
// RotateRefreshTokenWithAccess): one round trip, and never one token
// without the other.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, err := s.grantFrom(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	c, err := s.clientFor(g.ClientID)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.now()
	value := randomSecret()
	next := &RefreshToken{
		Hash:            hashToken(value),
		ID:              randomID(),
		FamilyID:        g.FamilyID,
		GrantID:         g.GrantID,
		SessionID:       g.SessionID,
		ClientID:        g.ClientID,
		Subject:         req.GetSubject(),
		Scopes:          req.GetScopes(),
		Audience:        req.GetAudience(),
		AuthTime:        g.AuthTime,
		AMR:             g.AMR,
		DingTalk:        g.DingTalk,
		CreatedAt:       now,
		ExpiresAt:       now.Add(c.RefreshTokenLifetime),
		FamilyExpiresAt: now.Add(c.RefreshFamilyLife),
	}
	if current == "" {
		next.FamilyID = randomID()
		g.FamilyID = next.FamilyID
		at := accessTokenFor(req, g, c, now)
		if err := s.store.CreateTokens(ctx, next, at); err != nil {
			return "", "", time.Time{}, tokenCreationError("create refresh and access token", err)
		}
		return at.ID, value, at.ExpiresAt, nil
	}
	if rr, ok := req.(*refreshRequest); ok {
		next.FamilyExpiresAt = rr.rt.FamilyExpiresAt // the family's absolute end never moves
	}
	if next.ExpiresAt.After(next.FamilyExpiresAt) {
		next.ExpiresAt = next.FamilyExpiresAt
	}
	at := accessTokenFor(req, g, c, now) // stored in the old token's family, which g names
	if err := s.store.RotateRefreshTokenWithAccess(ctx, hashToken(current), next, at, now); err != nil {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is no longer valid").WithParent(err)
	}
	return at.ID, value, at.ExpiresAt, nil
}

// TokenRequestByRefreshToken checks a presented refresh token before the
// library rotates it. A token already used is a replay: its family is
// revoked at once (RFC 9700 §4.14.2).
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, value string) (op.RefreshTokenRequest, error) {
	now := s.now()
	rt, err := s.store.RefreshToken(ctx, hashToken(value))
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	switch {
	case rt.UsedAt != nil:
		s.log.WarnContext(ctx, "refresh token replayed; family revoked", "client_id", rt.ClientID, "family_id", rt.FamilyID)
		if err := s.store.RevokeRefreshFamily(ctx, rt.FamilyID, now); err != nil {
			return nil, fmt.Errorf("revoke refresh family: %w", err)
		}
		return nil, ErrRefreshReplayed
	case rt.RevokedAt != nil, !now.Before(rt.ExpiresAt), !now.Before(rt.FamilyExpiresAt):
		return nil, errTokenInactive
	}
	if err := s.accountActive(ctx, rt.Subject); err != nil {
		return nil, err
	}
	return &refreshRequest{rt: rt}, nil
}

// accountActive refuses tokens for accounts that are gone or disabled, so
// that disabling someone stops their refreshes and userinfo at once (BR-16).
func (s *storage) accountActive(ctx context.Context, sub string) error {
	acct, err := s.account(ctx, sub)
	if err != nil {
		return fmt.Errorf("account %s: %w", sub, err)
	}
	if acct.Disabled {
		return fmt.Errorf("account %s: %w", sub, errAccountDisabled)
	}
	return nil
}

// The provider ends sessions through its own end-session handler.
func (s *storage) TerminateSession(context.Context, string, string) error {
	return errors.New("sessions end through the provider's end_session handler")
}

// refreshTokenPrefix marks the token ids GetRefreshTokenInfo hands to
// RevokeToken, which otherwise cannot tell them from access token ids.
const refreshTokenPrefix = "rt:"

// GetRefreshTokenInfo tells the library whether a token presented for
// revocation is one of this client's refresh tokens.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, value string) (string, string, error) {
	hash := hashToken(value)
	rt, err := s.store.RefreshToken(ctx, hash)
	if err != nil || rt.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.Subject, refreshTokenPrefix + hash, nil
}

// RevokeToken revokes a client's own token; another client's token, or an
// unknown one, is left alone and answered as success (RFC 7009 §2.2).
func (s *storage) RevokeToken(ctx context.Context, tokenID, _ string, clientID string) *oidc.Error {
	now := s.now()
	if hash, ok := strings.CutPrefix(tokenID, refreshTokenPrefix); ok {
		rt, err := s.store.RefreshToken(ctx, hash)
		if err != nil || rt.ClientID != clientID {
			return nil
		}
		// Revoking a refresh token ends the grant it belongs to, access
		// tokens included (RFC 7009 §2.1).
		if err := s.store.RevokeRefreshFamily(ctx, rt.FamilyID, now); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	at, err := s.store.AccessToken(ctx, tokenID)
	if err != nil || at.ClientID != clientID {
		return nil
	}
	if err := s.store.RevokeAccessToken(ctx, tokenID, now); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// --- keys ---

type clientCtxKey struct{}

// withClientContext marks ctx as serving client c, so that SigningKey can
// sign with the algorithm that client is configured for.
func withClientContext(ctx context.Context, c op.Client) context.Context {
	return context.WithValue(ctx, clientCtxKey{}, c)
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	alg := "RS256"
	if c, ok := ctx.Value(clientCtxKey{}).(*client); ok {
		alg = c.IDTokenAlgorithm
	}
	return s.keys.SigningKey(ctx, alg)
}

func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.keys.Algorithms(ctx), nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) { return s.keys.KeySet(ctx) }

// --- clients ---

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || !c.secretMatches(secret) {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// --- claims ---

// SetUserinfoFromScopes is deprecated in the library; claims are set in
// SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var ids DingTalkIDs
	if g, ok := req.(grantOf); ok {
		ids = g.grant().DingTalk
	}
	return s.setClaims(ctx, info, req.GetSubject(), scopes, ids)
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.activeAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	return s.setClaims(ctx, info, at.Subject, at.Scopes, at.DingTalk)
}

// activeAccessToken returns the record of a usable access token.
func (s *storage) activeAccessToken(ctx context.Context, id, subject string) (*AccessToken, error) {
	at, err := s.store.AccessToken(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	if at.RevokedAt != nil || !s.now().Before(at.ExpiresAt) || at.Subject != subject {
		return nil, errTokenInactive
	}
	if err := s.accountActive(ctx, at.Subject); err != nil {
		return nil, err
	}
	return at, nil
}

// SetIntrospectionFromToken answers for the client's own tokens only; for
// anyone else's token the response stays inactive (RFC 7662 §2.2, RFC-20).
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	at, err := s.activeAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if at.ClientID != clientID {
		return errors.New("token belongs to another client")
	}
	info := new(oidc.UserInfo)
	if err := s.setClaims(ctx, info, at.Subject, at.Scopes, at.DingTalk); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = at.Scopes
	resp.ClientID = at.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(at.CreatedAt)
	resp.Audience = at.Audience
	resp.JWTID = at.ID
	resp.Active = true
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// private_key_jwt and the JWT profile grant are not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.store.Ping(ctx) }

// setClaims fills the standard claims a scope asks for from the account
// (OIDC Core 5.4), plus the DingTalk ids for scope dingtalk.
func (s *storage) setClaims(ctx context.Context, info *oidc.UserInfo, sub string, scopes []string, ids DingTalkIDs) error {
	acct, err := s.account(ctx, sub)
	if err != nil {
		return fmt.Errorf("account %s: %w", sub, err)
	}
	info.Subject = acct.ID
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeProfile:
			info.PreferredUsername = acct.Username
			info.Name = acct.DisplayName
		case oidc.ScopeEmail:
			info.Email = acct.Email
			info.EmailVerified = oidc.Bool(acct.EmailVerified)
		case oidc.ScopePhone:
			info.PhoneNumber = acct.Phone
		case scopeGroups:
			info.AppendClaims("groups", slices.Clone(acct.Groups))
		case scopeDingTalk:
			info.AppendClaims("dingtalk_corp_id", ids.CorpID)
			info.AppendClaims("dingtalk_user_id", ids.UserID)
			info.AppendClaims("dingtalk_union_id", ids.UnionID)
		}
	}
	return nil
}

// Scopes beyond the standard ones.
const (
	scopeGroups   = "groups"
	scopeDingTalk = "dingtalk"
)

// --- the library's views of our records ---

// authRequest is an AuthRequest as op.AuthRequest.
type authRequest struct{ *AuthRequest }

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string          { return a.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return a.AMR }
func (a *authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetNonce() string       { return a.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.RedirectURI }
func (a *authRequest) GetScopes() []string    { return a.Scopes }
func (a *authRequest) GetState() string       { return a.State }
func (a *authRequest) GetSubject() string     { return a.Subject }
func (a *authRequest) Done() bool             { return a.AuthRequest.Done }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.ResponseType)
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.ResponseMode)
}

func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{
		Challenge: a.CodeChallenge,
		Method:    oidc.CodeChallengeMethod(a.CodeChallengeMethod),
	}
}

func (a *authRequest) grant() grantInfo {
	return grantInfo{
		ClientID:  a.ClientID,
		GrantID:   a.ID,
		SessionID: a.SessionID,
		AuthTime:  a.AuthTime,
		AMR:       a.AMR,
		DingTalk:  a.DingTalk,
	}
}

// refreshRequest is a stored refresh token as op.RefreshTokenRequest.
type refreshRequest struct {
	rt     *RefreshToken
	scopes []string // narrowed by the client's scope parameter, if any
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string       { return r.rt.AMR }
func (r *refreshRequest) GetAudience() []string  { return r.rt.Audience }
func (r *refreshRequest) GetAuthTime() time.Time { return r.rt.AuthTime }
func (r *refreshRequest) GetClientID() string    { return r.rt.ClientID }
func (r *refreshRequest) GetSubject() string     { return r.rt.Subject }
func (r *refreshRequest) GetScopes() []string {
	if r.scopes != nil {
		return r.scopes
	}
	return r.rt.Scopes
}
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }

func (r *refreshRequest) grant() grantInfo {
	return grantInfo{
		ClientID:  r.rt.ClientID,
		GrantID:   r.rt.GrantID,
		FamilyID:  r.rt.FamilyID,
		SessionID: r.rt.SessionID,
		AuthTime:  r.rt.AuthTime,
		AMR:       r.rt.AMR,
		DingTalk:  r.rt.DingTalk,
	}
}
