package idp

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// observed records what an Observer is told.
type observed struct {
	mu      sync.Mutex
	signIns []SignIn
	tokens  []TokenRequest
}

func (o *observed) SignIn(_ context.Context, s SignIn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s.Duration <= 0 {
		panic("sign-in without a duration")
	}
	if !s.ClientIP.IsLoopback() {
		panic("sign-in without the client's address")
	}
	s.Duration, s.ClientIP = 0, netip.Addr{} // compared below without them
	o.signIns = append(o.signIns, s)
}

func (o *observed) TokenRequest(_ context.Context, t TokenRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tokens = append(o.tokens, t)
}

// take returns and forgets what was recorded.
func (o *observed) take() ([]SignIn, []TokenRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s, t := o.signIns, o.tokens
	o.signIns, o.tokens = nil, nil
	return s, t
}

// TestObserverSignIns: every way a DingTalk sign-in ends is reported once,
// with its mode, its outcome and (once known) its corp.
func TestObserverSignIns(t *testing.T) {
	corp := fake.DemoCorpID
	tests := []struct {
		name string
		run  func(d *dtEnv)
		want []SignIn
	}{
		{"web sign-in, then single sign-on", func(d *dtEnv) {
			b := d.browser(uaDingTalk, false)
			d.signInAs(b, corp, "zhangsan")
			d.authorize(b.browser, authParams())
		}, []SignIn{{Mode: "web", Outcome: OutcomeOK, CorpID: corp}, {Mode: "sso", Outcome: OutcomeOK, CorpID: corp}}},
		{"replayed callback", func(d *dtEnv) {
			b := d.browser(uaDingTalk, false)
			d.signInAs(b, corp, "zhangsan")
			d.get(b, b.visitedPath(d.t, "/login/callback/web"))
		}, []SignIn{{Mode: "web", Outcome: OutcomeOK, CorpID: corp}, {Mode: "web", Outcome: OutcomeStateInvalid}}},
		{"cancelled", func(d *dtEnv) {
			b := d.browser(uaDingTalk, true)
			state := d.startWeb(b)
			d.get(b, d.issuer+"/login/callback/web?"+url.Values{"error": {"access_denied"}, "state": {state}}.Encode())
		}, []SignIn{{Mode: "web", Outcome: OutcomeCancelled, CorpID: corp}}},
		{"callback without code", func(d *dtEnv) {
			b := d.browser(uaDingTalk, true)
			state := d.startWeb(b)
			d.get(b, d.issuer+"/login/callback/web?"+url.Values{"state": {state}}.Encode())
		}, []SignIn{{Mode: "web", Outcome: OutcomeCodeInvalid, CorpID: corp}}},
		{"DingTalk fails", func(d *dtEnv) {
			d.sim.InjectFault(fake.EndpointUserToken, fake.Fault{HTTPStatus: http.StatusInternalServerError})
			d.sim.SetAutoApprove(corp, "zhangsan")
			d.authorize(d.browser(uaDingTalk, false).browser, authParams())
		}, []SignIn{{Mode: "web", Outcome: OutcomeDingTalkError, CorpID: corp}}},
		{"not linked", func(d *dtEnv) {
			d.sim.SetAutoApprove(corp, "wangwu")
			d.authorize(d.browser(uaDingTalk, false).browser, authParams())
		}, []SignIn{{Mode: "web", Outcome: OutcomeNotLinked, CorpID: corp}}},
		{"workbench", func(d *dtEnv) {
			resp, _ := d.workbenchPost(d.browser(uaDingTalk, true), "zhangsan")
			resp.Body.Close()
		}, []SignIn{{Mode: "jsapi", Outcome: OutcomeOK, CorpID: corp}}},
		{"workbench with a wrong CSRF token", func(d *dtEnv) {
			b := d.browser(uaDingTalk, true)
			d.workbenchPage(b)
			resp, err := b.PostForm(d.issuer+"/workbench/"+appID+"/code", url.Values{"code": {"x"}, "csrf": {"wrong"}, "corpId": {corp}})
			if err != nil {
				d.t.Fatal(err)
			}
			resp.Body.Close()
		}, []SignIn{{Mode: "jsapi", Outcome: OutcomeStateInvalid}}},
		{"workbench code rejected", func(d *dtEnv) {
			b := d.browser(uaDingTalk, true)
			csrf := d.workbenchPage(b)
			resp, err := b.PostForm(d.issuer+"/workbench/"+appID+"/code", url.Values{"code": {"not-a-code"}, "csrf": {csrf}, "corpId": {corp}})
			if err != nil {
				d.t.Fatal(err)
			}
			resp.Body.Close()
		}, []SignIn{{Mode: "jsapi", Outcome: OutcomeCodeInvalid, CorpID: corp}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o observed
			d := newDingTalkEnv(t, dtOptions{observer: &o})
			tt.run(d)
			got, _ := o.take()
			if !slices.Equal(got, tt.want) {
				t.Errorf("sign-ins observed:\n%+v\nwant:\n%+v", got, tt.want)
			}
		})
	}
}

// TestObserverTokenRequests: every token answer is reported with its grant,
// the client if it is a configured one, and the OAuth error code, including
// the answers the library gives before our code runs.
func TestObserverTokenRequests(t *testing.T) {
	var o observed
	d := newDingTalkEnv(t, dtOptions{observer: &o})
	d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
	code := d.code(d.browser(uaDingTalk, false).browser, authParams("scope", "openid offline_access"))
	o.take()

	tr := d.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	wantOAuthError(t, tr, http.StatusOK, "")
	d.token(appID, appSecret, "basic", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}})
	d.token(appID, appSecret, "basic", codeForm(code, appRedirect)) // replay
	d.token(appID, "wrong-secret-0123456789", "post", codeForm("x", appRedirect))
	d.token("no-such-client", "whatever-secret-123", "basic", codeForm("x", appRedirect))
	d.token(appID, appSecret, "basic", url.Values{"grant_type": {"client_credentials"}})
	d.token(appID, appSecret, "basic", url.Values{})

	_, got := o.take()
	want := []TokenRequest{
		{GrantType: "authorization_code", ClientID: appID},
		{GrantType: "refresh_token", ClientID: appID},
		{GrantType: "authorization_code", ClientID: appID, Error: "invalid_grant"},
		{GrantType: "authorization_code", ClientID: appID, Error: "invalid_client"},
		{GrantType: "authorization_code", ClientID: "", Error: "invalid_client"},
		{GrantType: "other", ClientID: appID, Error: "unauthorized_client"},
		{GrantType: "other", ClientID: appID, Error: "invalid_request"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("token requests observed:\n%+v\nwant:\n%+v", got, want)
	}
}
