package dingtalk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// AuthCodeUser is the user behind an H5 free-login (JSAPI) code.
type AuthCodeUser struct {
	UserID  string
	UnionID string // empty from UserInfoByAuthCodeLegacy
	// AssociatedUnionID is an extra unionId DingTalk links to the user; its
	// meaning is undocumented.
	AssociatedUnionID string
	Name              string
	DeviceID          string
	// Sys is true for corp administrators.
	Sys bool
	// SysLevel is 1 primary admin, 2 sub-admin, 100 boss, 0 other.
	SysLevel int
}

// UserInfoByAuthCode resolves a code from dd.requestAuthCode (valid 5
// minutes, single use) with topapi/v2/user/getuserinfo. Expired, used or
// foreign codes fail with ErrInvalidCode. A throttled answer is not retried
// (the code might be spent); it fails with ErrThrottled and the login starts
// again.
func (c *Client) UserInfoByAuthCode(ctx context.Context, code string) (*AuthCodeUser, error) {
	if code == "" {
		return nil, fmt.Errorf("dingtalk: empty auth code: %w", ErrInvalidCode)
	}
	in := struct {
		Code string `json:"code"`
	}{code}
	r := c.oapi(http.MethodPost, "/topapi/v2/user/getuserinfo", in).withSecret(code)
	var out struct {
		Result struct {
			UserID            string `json:"userid"`
			UnionID           string `json:"unionid"`
			AssociatedUnionID string `json:"associated_unionid"`
			Name              string `json:"name"`
			DeviceID          string `json:"device_id"`
			Sys               bool   `json:"sys"`
			SysLevel          int    `json:"sys_level"`
		} `json:"result"`
	}
	// A token rejection happens at the gateway before the code is looked
	// at, so the one retry inside doWithAppToken does not reuse a spent code.
	// Throttling is not retried: whether a throttled call left the code
	// unspent is not documented (§9.3), so r has no withThrottleRetry.
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	res := out.Result
	if res.UserID == "" {
		return nil, missingField(r, "result.userid")
	}
	return &AuthCodeUser{
		UserID: res.UserID, UnionID: res.UnionID, AssociatedUnionID: res.AssociatedUnionID,
		Name: res.Name, DeviceID: res.DeviceID, Sys: res.Sys, SysLevel: res.SysLevel,
	}, nil
}

// UserInfoByAuthCodeLegacy resolves a free-login code with the deprecated
// GET user/getuserinfo, which returns no unionId and names its fields
// differently. Like UserInfoByAuthCode it never retries a throttled answer.
func (c *Client) UserInfoByAuthCodeLegacy(ctx context.Context, code string) (*AuthCodeUser, error) {
	if code == "" {
		return nil, fmt.Errorf("dingtalk: empty auth code: %w", ErrInvalidCode)
	}
	r := c.oapi(http.MethodGet, "/user/getuserinfo", nil).withSecret(code)
	r.query = url.Values{"code": {code}}
	var out struct {
		UserID   string `json:"userid"`
		Name     string `json:"name"`
		DeviceID string `json:"deviceId"`
		IsSys    bool   `json:"is_sys"`
		SysLevel int    `json:"sys_level"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	if out.UserID == "" {
		return nil, missingField(r, "userid")
	}
	return &AuthCodeUser{UserID: out.UserID, Name: out.Name, DeviceID: out.DeviceID, Sys: out.IsSys, SysLevel: out.SysLevel}, nil
}

// UserByAuthCode resolves an H5 free-login code to the user and their
// directory record. The code was issued inside this corp, so the identity's
// corp is the Client's CorpID.
func (c *Client) UserByAuthCode(ctx context.Context, code string) (*Identity, error) {
	info, err := c.UserInfoByAuthCode(ctx, code)
	if err != nil {
		return nil, err
	}
	u, err := c.User(ctx, info.UserID)
	if err != nil {
		return nil, err
	}
	return &Identity{
		CorpID:  c.cfg.CorpID,
		UserID:  info.UserID,
		UnionID: firstNonEmpty(info.UnionID, u.UnionID),
		User:    u,
	}, nil
}
