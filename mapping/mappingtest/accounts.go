package mappingtest

import (
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

var randomID = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

func testAccounts(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	created, err := e.s.CreateAccount(ctx, admin, mapping.Account{
		Username: " ZhangSan ", DisplayName: "张三", Email: "zs@corp.example.com", EmailVerified: true,
		Phone: "+86 185 1234 7676", Groups: []string{"ops", "dev", "ops", " "},
	})
	ok(t, "CreateAccount", err)
	if !randomID.MatchString(created.ID) {
		t.Errorf("ID = %q, want 22 characters of base64url", created.ID)
	}
	want := mapping.Account{
		ID: created.ID, Username: "zhangsan", DisplayName: "张三", Email: "zs@corp.example.com", EmailVerified: true,
		Phone: "+86 185 1234 7676", Groups: []string{"dev", "ops"}, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now(), Version: 1,
	}
	assertAccount(t, "CreateAccount", created, want)

	for _, get := range []struct {
		name string
		fn   func() (mapping.Account, error)
	}{
		{"AccountByID", func() (mapping.Account, error) { return e.s.AccountByID(ctx, created.ID) }},
		{"AccountByUsername", func() (mapping.Account, error) { return e.s.AccountByUsername(ctx, "ZHANGSAN") }},
	} {
		got, err := get.fn()
		ok(t, get.name, err)
		assertAccount(t, get.name, got, want)
	}
	_, err = e.s.AccountByID(ctx, "nope")
	wantIs(t, "AccountByID(unknown)", err, mapping.ErrNotFound)
	_, err = e.s.AccountByUsername(ctx, "nope")
	wantIs(t, "AccountByUsername(unknown)", err, mapping.ErrNotFound)

	// A supplied id is kept (an import keeping an earlier provider's subs).
	kept := e.account("lisi", func(a *mapping.Account) { a.ID = "sub-from-before" })
	if kept.ID != "sub-from-before" {
		t.Errorf("ID = %q, want the supplied sub-from-before", kept.ID)
	}

	e.clock.Advance(time.Minute)
	upd := created
	upd.DisplayName, upd.Groups = "张三丰", []string{"wudang"}
	updated, err := e.s.UpdateAccount(ctx, admin, upd)
	ok(t, "UpdateAccount", err)
	want.DisplayName, want.Groups, want.Version, want.UpdatedAt = "张三丰", []string{"wudang"}, 2, e.clock.Now()
	assertAccount(t, "UpdateAccount", updated, want)

	// The old version is stale now.
	_, err = e.s.UpdateAccount(ctx, admin, upd)
	if ce := wantConflict(t, "UpdateAccount(stale)", err, mapping.ConflictStale); ce.Version != 2 {
		t.Errorf("stale conflict Version = %d, want 2", ce.Version)
	}
	// Writing what is there changes nothing: no new version, no audit row.
	before := len(e.audit("account", created.ID))
	same, err := e.s.UpdateAccount(ctx, admin, updated)
	ok(t, "UpdateAccount(unchanged)", err)
	if same.Version != 2 || len(e.audit("account", created.ID)) != before {
		t.Errorf("unchanged update: version %d, audit rows %d; want version 2 and %d rows", same.Version, len(e.audit("account", created.ID)), before)
	}

	tests := []struct {
		name  string
		a     mapping.Account
		field string
	}{
		{"empty username", mapping.Account{Username: " "}, "username"},
		{"username with space", mapping.Account{Username: "zhang san"}, "username"},
		{"username too long", mapping.Account{Username: string(make([]byte, 65))}, "username"},
		{"bad email", mapping.Account{Username: "x", Email: "not-an-email"}, "email"},
		{"control character", mapping.Account{Username: "x", DisplayName: "a\nb"}, "display_name"},
		{"bad id", mapping.Account{Username: "x", ID: "has space"}, "account_id"},
		{"group with separator", mapping.Account{Username: "x", Groups: []string{"a;b"}}, "groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.s.CreateAccount(ctx, admin, tt.a)
			wantIs(t, "CreateAccount", err, mapping.ErrInvalid)
			var ve *mapping.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Errorf("CreateAccount: error %v, want a ValidationError for %s", err, tt.field)
			}
		})
	}
	_, err = e.s.CreateAccount(ctx, mapping.Meta{}, mapping.Account{Username: "noactor"})
	wantIs(t, "CreateAccount without actor", err, mapping.ErrInvalid)
}

func assertAccount(t *testing.T, what string, got, want mapping.Account) {
	t.Helper()
	if got.ID != want.ID || got.Username != want.Username || got.DisplayName != want.DisplayName ||
		got.Email != want.Email || got.EmailVerified != want.EmailVerified || got.Phone != want.Phone ||
		!slices.Equal(got.Groups, want.Groups) || got.Disabled != want.Disabled || got.Version != want.Version ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("%s =\n\t%+v\nwant\n\t%+v", what, got, want)
	}
}

func testAccountConflicts(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	zs := e.account("zhangsan")
	ls := e.account("lisi")

	_, err := e.s.CreateAccount(ctx, admin, mapping.Account{Username: "ZhangSan"})
	if ce := wantConflict(t, "CreateAccount(taken username)", err, mapping.ConflictUsernameTaken); ce.AccountID != zs.ID {
		t.Errorf("conflict AccountID = %q, want the holder %q", ce.AccountID, zs.ID)
	}
	_, err = e.s.CreateAccount(ctx, admin, mapping.Account{ID: zs.ID, Username: "other"})
	wantConflict(t, "CreateAccount(taken id)", err, mapping.ConflictAccountIDTaken)

	ls.Username = "zhangsan"
	_, err = e.s.UpdateAccount(ctx, admin, ls)
	wantConflict(t, "UpdateAccount(rename to taken)", err, mapping.ConflictUsernameTaken)

	_, err = e.s.UpdateAccount(ctx, admin, mapping.Account{ID: "nope", Username: "x", Version: 1})
	wantIs(t, "UpdateAccount(unknown)", err, mapping.ErrNotFound)
}

func testAccountDelete(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	a := e.account("zhangsan")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: a.ID})

	err := e.s.DeleteAccount(ctx, admin, a.ID, 99)
	wantConflict(t, "DeleteAccount(stale)", err, mapping.ConflictStale)
	err = e.s.DeleteAccount(ctx, admin, a.ID, a.Version)
	wantConflict(t, "DeleteAccount(with identity)", err, mapping.ConflictHasIdentities)

	b, err := e.s.Binding(ctx, key("dingcorp1", "u1"))
	ok(t, "Binding", err)
	_, err = e.s.Unlink(ctx, admin, b.Key(), b.Version)
	ok(t, "Unlink", err)
	ok(t, "DeleteAccount", e.s.DeleteAccount(ctx, admin, a.ID, a.Version))
	_, err = e.s.AccountByID(ctx, a.ID)
	wantIs(t, "AccountByID(deleted)", err, mapping.ErrNotFound)
	err = e.s.DeleteAccount(ctx, admin, a.ID, a.Version)
	wantIs(t, "DeleteAccount(again)", err, mapping.ErrNotFound)

	ev := e.lastAudit("account", a.ID)
	if ev.Action != "account.delete" || field(t, ev.Before, "username") != "zhangsan" || ev.After != nil {
		t.Errorf("audit = %s before %s after %s, want account.delete with the account before and nothing after", ev.Action, ev.Before, ev.After)
	}
	// The username is free again; the id is never handed out again by chance.
	if again := e.account("zhangsan"); again.ID == a.ID {
		t.Errorf("new account reuses id %q", a.ID)
	}
}
