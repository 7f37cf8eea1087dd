package mappingtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

func testIdentities(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	a := e.account("zhangsan")

	unlinked := e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1", UnionID: "union1", AppKey: "app1"}})
	if unlinked.Linked() || unlinked.Source != mapping.SourceAdmin || unlinked.Version != 1 || !unlinked.CreatedAt.Equal(e.clock.Now()) {
		t.Errorf("CreateBinding = %+v, want unlinked, source admin, version 1, created now", unlinked)
	}
	linked, err := e.s.CreateBinding(ctx, mapping.Meta{Actor: "sync", Source: mapping.SourceSync},
		mapping.Binding{Identity: ident("dingcorp2", "u1"), AccountID: a.ID})
	ok(t, "CreateBinding(linked)", err)
	if linked.AccountID != a.ID || linked.Source != mapping.SourceSync {
		t.Errorf("CreateBinding(linked) = %+v, want linked to %s with source sync", linked, a.ID)
	}

	got, err := e.s.Binding(ctx, key("dingcorp1", "u1"))
	ok(t, "Binding", err)
	if got.UnionID != "union1" || got.AppKey != "app1" || got.Linked() {
		t.Errorf("Binding = %+v, want union1/app1, unlinked", got)
	}
	got, err = e.s.BindingByUnionID(ctx, "dingcorp1", "union1")
	ok(t, "BindingByUnionID", err)
	if got.Key() != key("dingcorp1", "u1") {
		t.Errorf("BindingByUnionID = %s, want dingcorp1/u1", got.Key())
	}
	_, err = e.s.BindingByUnionID(ctx, "dingcorp2", "union1")
	wantIs(t, "BindingByUnionID(other corp)", err, mapping.ErrNotFound)
	_, err = e.s.Binding(ctx, key("dingcorp1", "nope"))
	wantIs(t, "Binding(unknown)", err, mapping.ErrNotFound)

	bs, err := e.s.BindingsByAccount(ctx, a.ID)
	ok(t, "BindingsByAccount", err)
	if len(bs) != 1 || bs[0].Key() != key("dingcorp2", "u1") {
		t.Errorf("BindingsByAccount = %v, want [dingcorp2/u1]", bs)
	}

	tests := []struct {
		name   string
		b      mapping.Binding
		reason mapping.Conflict
		field  string
		isErr  error
	}{
		{name: "same key", b: mapping.Binding{Identity: ident("dingcorp1", "u1")}, reason: mapping.ConflictIdentityExists},
		{name: "union taken in corp", b: mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u2", UnionID: "union1", AppKey: "app1"}}, reason: mapping.ConflictUnionIDTaken},
		{name: "union without app key (BR-08)", b: mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u3", UnionID: "union3"}}, field: "app_key"},
		{name: "bad user id", b: mapping.Binding{Identity: ident("dingcorp1", "u 1")}, field: "user_id"},
		{name: "no user id", b: mapping.Binding{Identity: ident("dingcorp1", "")}, field: "user_id"},
		{name: "bad corp id", b: mapping.Binding{Identity: ident("ding/corp", "u1")}, field: "corp_id"},
		{name: "long user id", b: mapping.Binding{Identity: ident("dingcorp1", string(make([]byte, 65)))}, field: "user_id"},
		{name: "unknown account", b: mapping.Binding{Identity: ident("dingcorp1", "u4"), AccountID: "nope"}, isErr: mapping.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.s.CreateBinding(ctx, admin, tt.b)
			switch {
			case tt.reason != "":
				wantConflict(t, "CreateBinding", err, tt.reason)
			case tt.field != "":
				var ve *mapping.ValidationError
				if !errors.As(err, &ve) || ve.Field != tt.field {
					t.Errorf("CreateBinding: error %v, want a ValidationError for %s", err, tt.field)
				}
			default:
				wantIs(t, "CreateBinding", err, tt.isErr)
			}
		})
	}

	// UpdateBinding changes the ids, checked by version.
	e.clock.Advance(time.Minute)
	upd := unlinked
	upd.UnionID, upd.OpenID, upd.AppKey = "union9", "open9", "app9"
	got, err = e.s.UpdateBinding(ctx, admin, upd)
	ok(t, "UpdateBinding", err)
	if got.UnionID != "union9" || got.OpenID != "open9" || got.AppKey != "app9" || got.Version != 2 {
		t.Errorf("UpdateBinding = %+v, want union9/open9/app9 at version 2", got)
	}
	_, err = e.s.UpdateBinding(ctx, admin, upd)
	wantConflict(t, "UpdateBinding(stale)", err, mapping.ConflictStale)
	if _, err := e.s.BindingByUnionID(ctx, "dingcorp1", "union1"); !errors.Is(err, mapping.ErrNotFound) {
		t.Errorf("old unionId still finds the identity: %v", err)
	}

	// Deleting an identity also deletes its requests.
	req, err := e.s.RecordPending(ctx, admin, ident("dingcorp1", "u5"))
	ok(t, "RecordPending", err)
	b5, err := e.s.Binding(ctx, key("dingcorp1", "u5"))
	ok(t, "Binding", err)
	wantConflict(t, "DeleteBinding(stale)", e.s.DeleteBinding(ctx, admin, b5.Key(), 7), mapping.ConflictStale)
	ok(t, "DeleteBinding", e.s.DeleteBinding(ctx, admin, b5.Key(), b5.Version))
	_, err = e.s.Binding(ctx, b5.Key())
	wantIs(t, "Binding(deleted)", err, mapping.ErrNotFound)
	_, err = e.s.PendingRequest(ctx, req.ID)
	wantIs(t, "PendingRequest(of deleted identity)", err, mapping.ErrNotFound)
	wantIs(t, "DeleteBinding(again)", e.s.DeleteBinding(ctx, admin, b5.Key(), b5.Version), mapping.ErrNotFound)
}

func testLinkUnlinkRelink(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	zs, ls := e.account("zhangsan"), e.account("lisi")
	k := key("dingcorp1", "u1")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1")})

	b, err := e.s.Link(ctx, admin, k, zs.ID)
	ok(t, "Link", err)
	if b.AccountID != zs.ID || b.Version != 2 || b.Source != mapping.SourceAdmin {
		t.Errorf("Link = %+v, want linked to zhangsan at version 2", b)
	}
	_, err = e.s.Link(ctx, admin, k, ls.ID)
	if ce := wantConflict(t, "Link(linked)", err, mapping.ConflictIdentityLinked); ce.AccountID != zs.ID {
		t.Errorf("conflict AccountID = %q, want %q", ce.AccountID, zs.ID)
	}
	_, err = e.s.Link(ctx, admin, key("dingcorp1", "nope"), zs.ID)
	wantIs(t, "Link(unknown identity)", err, mapping.ErrNotFound)

	_, err = e.s.Relink(ctx, admin, k, ls.ID, 1)
	wantConflict(t, "Relink(stale)", err, mapping.ConflictStale)
	b, err = e.s.Relink(ctx, admin, k, ls.ID, b.Version)
	ok(t, "Relink", err)
	if b.AccountID != ls.ID || b.Version != 3 {
		t.Errorf("Relink = %+v, want linked to lisi at version 3", b)
	}
	same, err := e.s.Relink(ctx, admin, k, ls.ID, b.Version)
	ok(t, "Relink(same account)", err)
	if same.Version != 3 {
		t.Errorf("Relink to the same account: version %d, want 3 (nothing changed)", same.Version)
	}
	_, err = e.s.Relink(ctx, admin, k, "nope", b.Version)
	wantIs(t, "Relink(unknown account)", err, mapping.ErrNotFound)

	b, err = e.s.Unlink(ctx, admin, k, b.Version)
	ok(t, "Unlink", err)
	if b.Linked() || b.Version != 4 {
		t.Errorf("Unlink = %+v, want unlinked at version 4", b)
	}
	_, err = e.s.Unlink(ctx, admin, k, b.Version)
	wantConflict(t, "Unlink(unlinked)", err, mapping.ConflictNotLinked)
	_, err = e.s.Relink(ctx, admin, k, zs.ID, b.Version)
	wantConflict(t, "Relink(unlinked)", err, mapping.ConflictNotLinked)
	_, err = e.s.Link(ctx, admin, k, "nope")
	wantIs(t, "Link(unknown account)", err, mapping.ErrNotFound)

	// The trail tells the story, newest first, with the account before and after.
	var got []string
	for _, ev := range e.audit("identity", k.String()) {
		got = append(got, fmt.Sprintf("%s %v→%v", ev.Action, field(t, ev.Before, "account_id"), field(t, ev.After, "account_id")))
	}
	want := []string{
		"identity.unlink " + ls.ID + "→",
		"identity.relink " + zs.ID + "→" + ls.ID,
		"identity.link →" + zs.ID,
		"identity.create <nil>→",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit trail =\n\t%q\nwant\n\t%q", got, want)
	}
}

// testConcurrentLinks links one identity to several accounts at once: exactly one wins.
func testConcurrentLinks(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	const n = 8
	accounts := make([]mapping.Account, n)
	for i := range accounts {
		accounts[i] = e.account(fmt.Sprintf("user%d", i))
	}
	k := key("dingcorp1", "u1")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1")})

	errs := race(n, func(i int) error {
		_, err := e.s.Link(ctx, admin, k, accounts[i].ID)
		return err
	})
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		default:
			wantConflict(t, fmt.Sprintf("Link #%d", i), err, mapping.ConflictIdentityLinked)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent links succeeded, want exactly 1", won, n)
	}
	links := 0
	for _, ev := range e.audit("identity", k.String()) {
		if ev.Action == "identity.link" {
			links++
		}
	}
	if links != 1 {
		t.Errorf("audit has %d identity.link events, want 1", links)
	}
}

// testConcurrentUsernames creates one username from several goroutines: exactly one wins,
// the others get a typed conflict, never a database error.
func testConcurrentUsernames(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	const n = 8
	errs := race(n, func(int) error {
		_, err := e.s.CreateAccount(t.Context(), admin, mapping.Account{Username: "zhangsan"})
		return err
	})
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			continue
		}
		wantConflict(t, fmt.Sprintf("CreateAccount #%d", i), err, mapping.ConflictUsernameTaken)
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent creates succeeded, want exactly 1", won, n)
	}
}

// race runs fn(0..n-1) in n goroutines released together, and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func testDisable(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	a := e.account("zhangsan")
	k := key("dingcorp1", "u1")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: a.ID})

	tests := []struct {
		name       string
		do         func() (bool, int64, error)
		target     [2]string
		wantAction string // "" when nothing changes
		wantState  bool
	}{
		{"disable account", func() (bool, int64, error) {
			x, err := e.s.SetAccountDisabled(ctx, admin, a.ID, true)
			return x.Disabled, x.Version, err
		}, [2]string{"account", a.ID}, "account.disable", true},
		{"disable account again", func() (bool, int64, error) {
			x, err := e.s.SetAccountDisabled(ctx, admin, a.ID, true)
			return x.Disabled, x.Version, err
		}, [2]string{"account", a.ID}, "", true},
		{"enable account", func() (bool, int64, error) {
			x, err := e.s.SetAccountDisabled(ctx, admin, a.ID, false)
			return x.Disabled, x.Version, err
		}, [2]string{"account", a.ID}, "account.enable", false},
		{"disable identity", func() (bool, int64, error) {
			x, err := e.s.SetBindingDisabled(ctx, admin, k, true)
			return x.Disabled, x.Version, err
		}, [2]string{"identity", k.String()}, "identity.disable", true},
		{"disable identity again", func() (bool, int64, error) {
			x, err := e.s.SetBindingDisabled(ctx, admin, k, true)
			return x.Disabled, x.Version, err
		}, [2]string{"identity", k.String()}, "", true},
		{"enable identity", func() (bool, int64, error) {
			x, err := e.s.SetBindingDisabled(ctx, admin, k, false)
			return x.Disabled, x.Version, err
		}, [2]string{"identity", k.String()}, "identity.enable", false},
	}
	for _, tt := range tests {
		before := len(e.audit(tt.target[0], tt.target[1]))
		disabled, _, err := tt.do()
		ok(t, tt.name, err)
		if disabled != tt.wantState {
			t.Errorf("%s: Disabled = %v, want %v", tt.name, disabled, tt.wantState)
		}
		evs := e.audit(tt.target[0], tt.target[1])
		switch {
		case tt.wantAction == "" && len(evs) != before:
			t.Errorf("%s: %d new audit rows, want none", tt.name, len(evs)-before)
		case tt.wantAction != "" && (len(evs) != before+1 || evs[0].Action != tt.wantAction ||
			field(t, evs[0].Before, "disabled") == field(t, evs[0].After, "disabled")):
			t.Errorf("%s: newest audit %s (%d new), want one %s with disabled changed", tt.name, evs[0].Action, len(evs)-before, tt.wantAction)
		}
	}
	_, err := e.s.SetBindingDisabled(ctx, admin, key("dingcorp1", "nope"), true)
	wantIs(t, "SetBindingDisabled(unknown)", err, mapping.ErrNotFound)
	_, err = e.s.SetAccountDisabled(ctx, admin, "nope", true)
	wantIs(t, "SetAccountDisabled(unknown)", err, mapping.ErrNotFound)
}

// testAudit checks that every kind of change writes one audit row, with the actor, the
// request id, the client IP and the record before and after.
func testAudit(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	a := e.account("zhangsan")
	b := e.account("lisi")
	k := key("dingcorp1", "u1")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1")})
	m := mapping.Meta{Actor: "alice", RequestID: "req-42", ClientIP: admin.ClientIP}

	tests := []struct {
		name                  string
		do                    func(context.Context) error
		action, typ, target   string
		field                 string
		wantBefore, wantAfter any // the field's value before and after; nil for no record
	}{
		{"create account", func(ctx context.Context) error {
			_, err := e.s.CreateAccount(ctx, m, mapping.Account{ID: "acc-w", Username: "wangwu"})
			return err
		}, "account.create", "account", "acc-w", "username", nil, "wangwu"},
		{"update account", func(ctx context.Context) error {
			x, err := e.s.AccountByID(ctx, a.ID)
			if err != nil {
				return err
			}
			x.Email = "zs@corp.example.com"
			_, err = e.s.UpdateAccount(ctx, m, x)
			return err
		}, "account.update", "account", a.ID, "email", "", "zs@corp.example.com"},
		{"link", func(ctx context.Context) error {
			_, err := e.s.Link(ctx, m, k, a.ID)
			return err
		}, "identity.link", "identity", k.String(), "account_id", "", a.ID},
		{"relink", func(ctx context.Context) error {
			x, _ := e.s.Binding(ctx, k)
			_, err := e.s.Relink(ctx, m, k, b.ID, x.Version)
			return err
		}, "identity.relink", "identity", k.String(), "account_id", a.ID, b.ID},
		{"update identity", func(ctx context.Context) error {
			x, _ := e.s.Binding(ctx, k)
			x.UnionID, x.AppKey = "union1", "app1"
			_, err := e.s.UpdateBinding(ctx, m, x)
			return err
		}, "identity.update", "identity", k.String(), "union_id", "", "union1"},
		{"unlink", func(ctx context.Context) error {
			x, _ := e.s.Binding(ctx, k)
			_, err := e.s.Unlink(ctx, m, k, x.Version)
			return err
		}, "identity.unlink", "identity", k.String(), "account_id", b.ID, ""},
		{"delete identity", func(ctx context.Context) error {
			x, _ := e.s.Binding(ctx, k)
			return e.s.DeleteBinding(ctx, m, k, x.Version)
		}, "identity.delete", "identity", k.String(), "user_id", "u1", nil},
		{"event", func(ctx context.Context) error {
			return e.s.RecordEvent(ctx, m, mapping.Event{Action: "signin.deny", TargetType: "identity", TargetID: "x/y", Detail: map[string]string{"reason": "test"}})
		}, "signin.deny", "identity", "x/y", "reason", nil, "test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok(t, tt.name, tt.do(t.Context()))
			ev := e.lastAudit(tt.typ, tt.target)
			if ev.Action != tt.action || ev.Actor != "alice" || ev.RequestID != "req-42" || ev.ClientIP != admin.ClientIP || ev.At.IsZero() {
				t.Errorf("audit = %s by %q (request %q, ip %v, at %v), want %s by alice, req-42, %v, a time",
					ev.Action, ev.Actor, ev.RequestID, ev.ClientIP, ev.At, tt.action, admin.ClientIP)
			}
			if got := field(t, ev.Before, tt.field); got != tt.wantBefore {
				t.Errorf("audit before.%s = %#v, want %#v", tt.field, got, tt.wantBefore)
			}
			if got := field(t, ev.After, tt.field); got != tt.wantAfter {
				t.Errorf("audit after.%s = %#v, want %#v", tt.field, got, tt.wantAfter)
			}
		})
	}
	// Audit rows are only ever added: a failed change adds none.
	n := e.auditCount()
	_, err := e.s.CreateAccount(ctx, m, mapping.Account{Username: "zhangsan"})
	wantConflict(t, "CreateAccount(taken)", err, mapping.ConflictUsernameTaken)
	if got := e.auditCount(); got != n {
		t.Errorf("a refused change wrote %d audit rows, want 0", got-n)
	}
}
