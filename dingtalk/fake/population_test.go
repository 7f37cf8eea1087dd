package fake_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

func TestAddPopulation(t *testing.T) {
	f := fake.DefaultFixture()
	before := len(f.Corps[0].Employees)
	ids := f.AddPopulation(fake.DemoCorpID, 600)
	if len(ids) != 600 {
		t.Fatalf("AddPopulation returned %d ids, want 600", len(ids))
	}
	seen := map[string]bool{}
	for _, e := range f.Corps[0].Employees[before:] {
		for _, v := range []string{e.UserID, e.UnionID, e.OpenID, e.Mobile, e.OrgEmail, e.JobNumber} {
			if v == "" || seen[v] {
				t.Fatalf("employee %s: value %q is empty or another's", e.UserID, v)
			}
			seen[v] = true
		}
		if !e.Active || len(e.DeptIDs) == 0 {
			t.Errorf("employee %s: active %v, departments %v; want an active member", e.UserID, e.Active, e.DeptIDs)
		}
	}
	if got := len(fake.DefaultFixture().Corps[0].Employees); got != before {
		t.Errorf("DefaultFixture has %d employees after AddPopulation on a copy, want %d", got, before)
	}
	if got := f.AddPopulation("no-such-corp", 3); got != nil {
		t.Errorf("AddPopulation on an unknown corp = %v, want nil", got)
	}
}

func TestAutoApproveEach(t *testing.T) {
	// Logins complete as the given people in turn, then start again.
	f := fake.DefaultFixture()
	people := f.AddPopulation(fake.DemoCorpID, 2)
	sim := fake.New(fake.Options{Fixture: &f})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	sim.SetAutoApproveEach(fake.DemoCorpID, people)
	cl, err := dingtalk.New(dingtalk.Config{
		APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: srv.URL,
		CorpID: fake.DemoCorpID, AppKey: fake.DemoAppKey, AppSecret: fake.DemoAppSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	unionIDs := map[string]string{}
	for _, e := range f.Corps[0].Employees {
		unionIDs[e.UnionID] = e.UserID
	}
	var got []string
	for range 3 {
		resp, err := noFollow.Get(cl.AuthCodeURL(dingtalk.AuthCodeParams{RedirectURI: "https://bridge.example.com/cb", State: "s", CorpID: fake.DemoCorpID}))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("login answered %d without a redirect", resp.StatusCode)
		}
		tok, err := cl.UserToken(t.Context(), dingtalk.CodeFromCallback(loc.Query()))
		if err != nil {
			t.Fatal(err)
		}
		me, err := cl.Me(t.Context(), tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, unionIDs[me.UnionID])
	}
	if want := []string{people[0], people[1], people[0]}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("logins completed as %v, want %v", got, want)
	}
}
