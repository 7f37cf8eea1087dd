package dingtalk

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AuthCodeParams are the per-login parameters of the DingTalk login page.
type AuthCodeParams struct {
	// RedirectURI receives ?authCode=…&state=…; it must be registered for
	// the app in the DingTalk console.
	RedirectURI string
	// State is echoed back unchanged; omitted when empty.
	State string
	// CorpID pre-selects and limits the login to one organisation.
	CorpID string
	// OrgType "management" lists only organisations the user administers.
	OrgType string
	// ExclusiveLogin asks for an exclusive-account (专属账号) login.
	ExclusiveLogin bool
	// ExclusiveCorpID goes straight to that organisation's exclusive login.
	ExclusiveCorpID string
	// ExtraScopes are added after "openid corpid", e.g. Contact.User.mobile.
	ExtraScopes []string
}

// AuthCodeURL returns the login.dingtalk.com authorize URL (§3.1). The scope
// always includes corpid so that UserToken learns the chosen organisation,
// and prompt=consent is always set because the page fails without it.
func (c *Client) AuthCodeURL(p AuthCodeParams) string {
	scope := strings.Join(append([]string{"openid", "corpid"}, p.ExtraScopes...), " ")
	// Parameters keep DingTalk's documented order; url.Values would sort them.
	params := [][2]string{
		{"redirect_uri", p.RedirectURI},
		{"response_type", "code"},
		{"client_id", c.cfg.AppKey},
		{"scope", scope},
		{"prompt", "consent"},
	}
	optional := [][2]string{
		{"state", p.State},
		{"org_type", p.OrgType},
		{"corpId", p.CorpID},
	}
	if p.ExclusiveLogin {
		optional = append(optional, [2]string{"exclusiveLogin", "true"}, [2]string{"exclusiveCorpId", p.ExclusiveCorpID})
	}
	for _, kv := range optional {
		if kv[1] != "" {
			params = append(params, kv)
		}
	}
	return c.cfg.LoginBaseURL + "/oauth2/auth?" + encodeOrdered(params)
}

// encodeOrdered query-encodes params in order, with spaces as %20: DingTalk
// documents %20 for the space in scope.
func encodeOrdered(params [][2]string) string {
	var b strings.Builder
	for i, kv := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(queryEscape(kv[0]))
		b.WriteByte('=')
		b.WriteString(queryEscape(kv[1]))
	}
	return b.String()
}

// queryEscape is url.QueryEscape with %20 for space; a literal + is already
// escaped as %2B, so the replacement is unambiguous.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// CodeFromCallback returns the auth code from the login redirect's query:
// authCode, or code, which newer pages send as well.
func CodeFromCallback(q url.Values) string {
	return firstNonEmpty(q.Get("authCode"), q.Get("code"))
}

// UserToken is a DingTalk USER access token (L2). It is only good for the new
// API's user-scoped calls such as Me, not for the old API.
type UserToken struct {
	AccessToken  string
	RefreshToken string
	// ExpiresAt is when AccessToken expires, fixed at receipt.
	ExpiresAt time.Time
	// CorpID is the organisation the user chose; set because AuthCodeURL
	// always asks for the corpid scope.
	CorpID string
}

// LogValue implements slog.LogValuer without the tokens. Value receivers
// make it apply to UserToken values as well as pointers.
func (t UserToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("corp_id", t.CorpID), slog.Time("expires_at", t.ExpiresAt))
}

// String describes the token without the tokens, for fmt.
func (t UserToken) String() string {
	return fmt.Sprintf("UserToken{CorpID:%q ExpiresAt:%s}", t.CorpID, t.ExpiresAt.Format(time.RFC3339))
}

// userTokenRequest is L2's camelCase body; it is not RFC 6749's form.
type userTokenRequest struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	Code         string `json:"code,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	GrantType    string `json:"grantType"`
}

// UserToken exchanges the authCode from the login redirect for a user token.
// The code is single use, so the exchange is never retried, not even when
// DingTalk throttles it (whether a throttled exchange spent the code is not
// documented): on any error, start the login again.
func (c *Client) UserToken(ctx context.Context, code string) (*UserToken, error) {
	if code == "" {
		return nil, fmt.Errorf("dingtalk: empty auth code: %w", ErrInvalidCode)
	}
	return c.userToken(ctx, userTokenRequest{Code: code, GrantType: "authorization_code"}, code)
}

// RefreshUserToken gets a new user token with a refresh token. Like the code
// exchange it is not retried, throttled or not, since DingTalk may rotate
// refresh tokens.
func (c *Client) RefreshUserToken(ctx context.Context, refreshToken string) (*UserToken, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("dingtalk: empty refresh token: %w", ErrTokenInvalid)
	}
	return c.userToken(ctx, userTokenRequest{RefreshToken: refreshToken, GrantType: "refresh_token"}, refreshToken)
}

func (c *Client) userToken(ctx context.Context, in userTokenRequest, secret string) (*UserToken, error) {
	in.ClientID, in.ClientSecret = c.cfg.AppKey, c.cfg.AppSecret
	r := c.api(http.MethodPost, "/v1.0/oauth2/userAccessToken", in).withSecret(secret)
	var out struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
		ExpireIn     int64  `json:"expireIn"`
		CorpID       string `json:"corpId"`
	}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	if out.AccessToken == "" {
		return nil, missingField(r, "accessToken")
	}
	return &UserToken{
		AccessToken:  out.AccessToken,
		RefreshToken: out.RefreshToken,
		ExpiresAt:    c.cfg.Now().Add(time.Duration(max(out.ExpireIn, 0)) * time.Second),
		CorpID:       out.CorpID,
	}, nil
}

// Profile is the token owner's personal DingTalk profile (L3). Nick and Email
// are personal, not the corp's directory values.
type Profile struct {
	Nick      string `json:"nick"`
	AvatarURL string `json:"avatarUrl"`
	Mobile    string `json:"mobile"`
	StateCode string `json:"stateCode"`
	OpenID    string `json:"openId"`
	UnionID   string `json:"unionId"`
	Email     string `json:"email"`
	Visitor   bool   `json:"visitor"`
}

// Me returns the profile of the user the USER token belongs to. The token
// goes in the x-acs-dingtalk-access-token header, the only place the new API
// reads it from. Being a read, it is retried when throttled.
func (c *Client) Me(ctx context.Context, userAccessToken string) (*Profile, error) {
	if userAccessToken == "" {
		return nil, fmt.Errorf("dingtalk: empty user access token: %w", ErrTokenInvalid)
	}
	r := c.api(http.MethodGet, "/v1.0/contact/users/me", nil).withThrottleRetry()
	r.userToken = userAccessToken
	var p Profile
	if err := c.do(ctx, r, &p); err != nil {
		return nil, err
	}
	if p.UnionID == "" {
		return nil, missingField(r, "unionId")
	}
	return &p, nil
}

// Identity is a DingTalk user as established by a login: the corp, the ids,
// and the corp directory record.
type Identity struct {
	CorpID  string
	UserID  string
	UnionID string
	// OpenID and Profile are set by web logins only.
	OpenID  string
	Profile *Profile
	// User is the directory record (topapi/v2/user/get).
	User *User
}

// UserByOAuthCode resolves the authCode of a web login (QR or 302) to the
// user: user token → users/me → unionId → userid in this corp → details.
// Users outside the corp fail with ErrNotMember; with CorpID configured, a
// login into another organisation fails with ErrCorpMismatch.
func (c *Client) UserByOAuthCode(ctx context.Context, code string) (*Identity, error) {
	tok, err := c.UserToken(ctx, code)
	if err != nil {
		return nil, err
	}
	if c.cfg.CorpID != "" && tok.CorpID != c.cfg.CorpID {
		return nil, fmt.Errorf("dingtalk: user token corp %q, want %q: %w", tok.CorpID, c.cfg.CorpID, ErrCorpMismatch)
	}
	p, err := c.Me(ctx, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	id, err := c.identityByUnionID(ctx, p.UnionID)
	if err != nil {
		return nil, err
	}
	if id.CorpID == "" {
		id.CorpID = tok.CorpID
	}
	id.OpenID, id.Profile = p.OpenID, p
	return id, nil
}

// identityByUnionID looks the unionId up in this corp's directory.
func (c *Client) identityByUnionID(ctx context.Context, unionID string) (*Identity, error) {
	userID, contactType, err := c.UserIDByUnionID(ctx, unionID)
	if err != nil {
		return nil, err
	}
	if contactType != ContactTypeEmployee {
		return nil, fmt.Errorf("dingtalk: unionid belongs to an external contact: %w", ErrNotMember)
	}
	u, err := c.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	return &Identity{CorpID: c.cfg.CorpID, UserID: userID, UnionID: unionID, User: u}, nil
}
