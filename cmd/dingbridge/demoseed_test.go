package main

import (
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
