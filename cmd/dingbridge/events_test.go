package main

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

func TestUserLeaveEventDisablesTheIdentity(t *testing.T) {
	fixture := fake.DefaultFixture()
	corp := fixture.Corps[0]
	app := corp.Apps[0]
	store := mapping.NewMemory(mapping.Options{})
	if _, err := seedDemo(t.Context(), store, &fixture); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Corps: []CorpConfig{{ID: corp.ID, AppKey: app.AppKey,
		Events: EventsConfig{Token: app.CallbackToken, AESKey: app.CallbackAESKey}}}}
	r := chi.NewRouter()
	if err := mountEvents(r, cfg, store, sessionEnder{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	sim := fake.New(fake.Options{Fixture: &fixture})
	url := srv.URL + "/dingtalk/events/" + corp.ID

	if err := sim.PushEvent(t.Context(), url, corp.ID, "check_url", nil); err != nil {
		t.Fatalf("check_url: %v", err)
	}
	key := mapping.Key{CorpID: corp.ID, UserID: "zhangsan"}
	if b, _ := store.Binding(t.Context(), key); b.Disabled {
		t.Fatal("zhangsan is disabled before any event")
	}
	// The simulator encrypts and signs exactly as DingTalk does, and checks
	// the encrypted "success" reply.
	if err := sim.PushEvent(t.Context(), url, corp.ID, "user_leave_org", []string{"zhangsan", "never-seen"}); err != nil {
		t.Fatalf("user_leave_org: %v", err)
	}
	b, err := store.Binding(t.Context(), key)
	if err != nil || !b.Disabled {
		t.Errorf("zhangsan after user_leave_org: disabled=%v (%v), want disabled", b.Disabled, err)
	}
	events, err := store.AuditEvents(t.Context(), mapping.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Actor == "dingtalk" && strings.Contains(e.TargetID, "zhangsan") {
			found = true
		}
	}
	if !found {
		t.Error("no audit row by actor dingtalk for the disabled identity")
	}
	// Other events change nothing; a push for an unconfigured corp is 404.
	if err := sim.PushEvent(t.Context(), url, corp.ID, "user_add_org", []string{"wangwu"}); err != nil {
		t.Errorf("user_add_org: %v", err)
	}
	if err := sim.PushEvent(t.Context(), srv.URL+"/dingtalk/events/dingother", corp.ID, "user_leave_org", []string{"wangwu"}); err == nil {
		t.Error("a push to an unconfigured corp's address succeeded")
	}
}
