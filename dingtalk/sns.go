package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// SNSUser is the user behind a legacy SNS login code (S3). It carries no
// userid: look the unionId up with UserIDByUnionID.
type SNSUser struct {
	Nick    string
	UnionID string
	OpenID  string
	// MainOrgAuthHighLevel is true when the user's main organisation is
	// certified at a high level.
	MainOrgAuthHighLevel bool
}

// SNSAuthURL returns the legacy scan-login URL (§6.1): the connect/qrconnect
// QR page, or, for a page opened inside the DingTalk client, sns_authorize
// with scope snsapi_auth. DingTalk redirects to redirectURI?code=…&state=….
// It returns "" when no SNS app is configured.
func (c *Client) SNSAuthURL(redirectURI, state string, inClient bool) string {
	if c.cfg.SNSAppID == "" {
		return ""
	}
	path, scope := "/connect/qrconnect", "snsapi_login"
	if inClient {
		path, scope = "/connect/oauth2/sns_authorize", "snsapi_auth"
	}
	return c.cfg.OAPIBaseURL + path + "?" + encodeOrdered([][2]string{
		{"appid", c.cfg.SNSAppID},
		{"response_type", "code"},
		{"scope", scope},
		{"state", state},
		{"redirect_uri", redirectURI},
	})
}

// SNSSignature returns Base64(HMAC-SHA256(appSecret, timestampMillis)), the
// signature of sns/getuserinfo_bycode. Only the timestamp is signed; the
// caller URL-encodes the result exactly once.
func SNSSignature(appSecret, timestampMillis string) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write([]byte(timestampMillis))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SNSUserInfoByCode resolves the code from a legacy SNS login redirect (the
// tmp_auth_code). The signature uses the current time, which DingTalk
// accepts within one minute of its own. The code is single use: the call is
// never retried.
func (c *Client) SNSUserInfoByCode(ctx context.Context, tmpAuthCode string) (*SNSUser, error) {
	if c.cfg.SNSAppID == "" {
		return nil, ErrSNSNotConfigured
	}
	if tmpAuthCode == "" {
		return nil, fmt.Errorf("dingtalk: empty auth code: %w", ErrInvalidCode)
	}
	ts := strconv.FormatInt(c.cfg.Now().UnixMilli(), 10)
	in := struct {
		TmpAuthCode string `json:"tmp_auth_code"`
	}{tmpAuthCode}
	r := c.oapi(http.MethodPost, "/sns/getuserinfo_bycode", in).withSecret(tmpAuthCode)
	// url.Values.Encode escapes + / = in the signature once, as required.
	r.query = url.Values{
		"accessKey": {c.cfg.SNSAppID},
		"timestamp": {ts},
		"signature": {SNSSignature(c.cfg.SNSAppSecret, ts)},
	}
	var out struct {
		UserInfo struct {
			Nick                 string `json:"nick"`
			UnionID              string `json:"unionid"`
			OpenID               string `json:"openid"`
			MainOrgAuthHighLevel bool   `json:"main_org_auth_high_level"`
		} `json:"user_info"`
	}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	u := out.UserInfo
	if u.UnionID == "" {
		return nil, missingField(r, "user_info.unionid")
	}
	return &SNSUser{Nick: u.Nick, UnionID: u.UnionID, OpenID: u.OpenID, MainOrgAuthHighLevel: u.MainOrgAuthHighLevel}, nil
}

// UserBySNSCode resolves a legacy SNS login code to the user in this corp:
// code → unionId → userid → details. Users outside the corp fail with
// ErrNotMember.
func (c *Client) UserBySNSCode(ctx context.Context, tmpAuthCode string) (*Identity, error) {
	su, err := c.SNSUserInfoByCode(ctx, tmpAuthCode)
	if err != nil {
		return nil, err
	}
	id, err := c.identityByUnionID(ctx, su.UnionID)
	if err != nil {
		return nil, err
	}
	id.OpenID = su.OpenID
	return id, nil
}
