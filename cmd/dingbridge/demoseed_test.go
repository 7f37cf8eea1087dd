package main

import (
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

func TestSeedDemo(t *testing.T) {
	store := mapping.NewMemory(mapping.Options{})
	fixture := fake.DefaultFixture()
	lines, err := seedDemo(t.Context(), store, &fixture)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range fixture.Corps {
		total += len(c.Employees)
	}
	if len(lines) != total {
		t.Errorf("seeded %d people, want %d", len(lines), total)
	}
	b, err := store.Binding(t.Context(), mapping.Key{CorpID: fixture.Corps[0].ID, UserID: "zhangsan"})
	if err != nil || !b.Linked() {
		t.Errorf("zhangsan: %+v, %v; want linked", b, err)
	}
	b, err = store.Binding(t.Context(), mapping.Key{CorpID: fixture.Corps[0].ID, UserID: "manager4927"})
	if err != nil || b.Linked() {
		t.Errorf("manager4927: %+v, %v; want known but not linked", b, err)
	}
	b, err = store.Binding(t.Context(), mapping.Key{CorpID: fixture.Corps[0].ID, UserID: "zhaoliu"})
	if err != nil || !b.Disabled {
		t.Errorf("zhaoliu (left): %+v, %v; want disabled", b, err)
	}
}

// TestSeedDemoAgain seeds a store that a first run seeded (demo and bench
// on a reused -database-url): the people there are kept as they are, even
// where an administrator changed them, and people the first run did not
// have (a larger bench population) are added and linked.
func TestSeedDemoAgain(t *testing.T) {
	ctx := t.Context()
	store := mapping.NewMemory(mapping.Options{})
	fixture := fake.DefaultFixture()
	if _, err := seedDemo(ctx, store, &fixture); err != nil {
		t.Fatal(err)
	}
	corp := fixture.Corps[0].ID
	zs, err := store.Binding(ctx, mapping.Key{CorpID: corp, UserID: "zhangsan"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Unlink(ctx, mapping.Meta{Actor: "admin"}, zs.Key(), zs.Version); err != nil {
		t.Fatal(err)
	}

	again := fake.DefaultFixture()
	population := again.AddPopulation(corp, 3)
	lines, err := seedDemo(ctx, store, &again)
	if err != nil {
		t.Fatalf("second seed: %v", err)
	}
	kept := 0
	for _, l := range lines {
		if strings.HasSuffix(l, "kept as the database has it") {
			kept++
		}
	}
	total := 0
	for _, c := range fixture.Corps {
		total += len(c.Employees)
	}
	if kept != total {
		t.Errorf("second seed kept %d people, want the %d of the first:\n%s", kept, total, strings.Join(lines, "\n"))
	}
	if b, err := store.Binding(ctx, zs.Key()); err != nil || b.Linked() {
		t.Errorf("zhangsan after a second seed: %+v, %v; want still unlinked, as the administrator left it", b, err)
	}
	for _, userID := range population {
		if b, err := store.Binding(ctx, mapping.Key{CorpID: corp, UserID: userID}); err != nil || !b.Linked() {
			t.Errorf("population member %s: %+v, %v; want added and linked", userID, b, err)
		}
	}
}
