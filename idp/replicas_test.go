package idp

import (
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestREL04_TwoReplicasOnOnePostgres runs two provider instances, each with
// its own key manager, on one Postgres database, and sends every request of
// a sign-in, a refresh and a logout to the other instance than the one
// before: nothing a flow needs may live in one process's memory.
func TestREL04_TwoReplicasOnOnePostgres(t *testing.T) {
	store := NewPostgresStore(pgtest.NewDatabase(t))
	e := newEnvWithStore(t, store)

	keys2, err := NewKeyManager(KeyConfig{Store: store, KEK: providerKEK[:], Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	replicas := []http.Handler{e.p.Handler(), e.newProvider(store, keys2).Handler()}
	var n atomic.Int64
	served := make([]atomic.Int64, 2)
	alternate := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1) % 2
		served[i].Add(1)
		replicas[i].ServeHTTP(w, r)
	}))
	e.handler.Store(&alternate)

	b := e.browser()
	r := e.rp(appID, appSecret, appRedirect)
	r.oauth.Scopes = append(r.oauth.Scopes, "offline_access")
	idt, tok := e.signIn(b, r, authParams("scope", "openid profile offline_access"))
	if idt.Subject != userAlice {
		t.Fatalf("sub = %q", idt.Subject)
	}
	if got := e.userinfo(tok.AccessToken); got.status != http.StatusOK || got.str("sub") != userAlice {
		t.Fatalf("userinfo = %d %v", got.status, got.body)
	}

	rt := tok.RefreshToken
	for i := range 3 {
		tr := e.token(appID, appSecret, "basic", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if tr.status != http.StatusOK {
			t.Fatalf("refresh %d = %d %v", i, tr.status, tr.body)
		}
		rt = tr.str("refresh_token")
	}

	// SSO from the session stored by one replica, read by the other.
	if !e.stillSignedIn(b) {
		t.Fatal("prompt=none failed although the browser has a session")
	}
	resp := e.endSession(b, url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {appLogout}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("end_session = %d, want 302", resp.StatusCode)
	}
	if e.stillSignedIn(b) {
		t.Error("session survived logout on the other replica")
	}
	if served[0].Load() < 5 || served[1].Load() < 5 {
		t.Errorf("replicas served %d and %d requests, want both to take part", served[0].Load(), served[1].Load())
	}
}
