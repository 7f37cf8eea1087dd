package mappingtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newResolver(t *testing.T, s mapping.Store, corps ...mapping.Corp) *mapping.Resolver {
	t.Helper()
	r, err := mapping.NewResolver(mapping.ResolverConfig{Store: s, Corps: corps, Logger: quiet})
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r
}

// employee is a DingTalk identity of dingcorp1 with a full directory profile.
func employee(user string, mods ...func(*mapping.Identity)) mapping.Identity {
	id := mapping.Identity{CorpID: "dingcorp1", UserID: user, UnionID: "union-" + user, OpenID: "open-" + user,
		AppKey: "app1", Name: "张三", Mobile: "18512347676", OrgEmail: "Zhang.San@corp.example.com",
		Email: "zhang@example.net", JobNumber: "E0042", Title: "工程师", DeptIDs: []int64{1}, Active: true}
	for _, m := range mods {
		m(&id)
	}
	return id
}

// testResolver covers each branch of Resolve, including BR-06 (no linking on weak
// attributes) and BR-07 (foreign corps).
func testResolver(t *testing.T, newStore NewStore) {
	corp := mapping.Corp{ID: "dingcorp1"}
	autoJob := mapping.Corp{ID: "dingcorp1", AutoLink: mapping.AttrJobNumber}
	autoEmail := mapping.Corp{ID: "dingcorp1", AutoLink: mapping.AttrOrgEmail}
	autoMobile := mapping.Corp{ID: "dingcorp1", AutoLink: mapping.AttrMobile}
	jit := mapping.Corp{ID: "dingcorp1", JIT: mapping.JIT{Username: "{{.JobNumber}}", Groups: []string{"staff"}, TrustOrgEmail: true}}
	jitLocal := mapping.Corp{ID: "dingcorp1", JIT: mapping.JIT{Username: "{{.OrgEmailLocal}}"}}

	type want struct {
		username string // the account resolved to
		err      error  // or the error it matches
		disabled *mapping.DisabledError
		request  bool   // a pending request was recorded (with ErrNotLinked)
		suggest  string // a username among the request's suggestions
		audit    string // "action by actor" of the newest audit row about the identity
		reason   string // and the reason in its detail
	}
	tests := []struct {
		name  string
		corps []mapping.Corp
		seed  func(e *env)
		id    mapping.Identity
		want  want
	}{
		{
			name: "linked identity", corps: []mapping.Corp{corp},
			seed: func(e *env) {
				e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: e.account("zhangsan").ID})
			},
			id: employee("u1"), want: want{username: "zhangsan"},
		},
		{
			name: "linked, found by unionId without userId", corps: []mapping.Corp{corp},
			seed: func(e *env) {
				e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1", UnionID: "union-u1", AppKey: "app1"}, AccountID: e.account("zhangsan").ID})
			},
			id: employee("", func(id *mapping.Identity) { id.UnionID = "union-u1" }), want: want{username: "zhangsan"},
		},
		{
			name: "BR-08: unionId from another developer's app does not match", corps: []mapping.Corp{corp},
			seed: func(e *env) {
				e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1", UnionID: "union-u1", AppKey: "app1"}, AccountID: e.account("zhangsan").ID})
			},
			id:   employee("", func(id *mapping.Identity) { id.UnionID, id.AppKey = "union-u1", "other-developer" }),
			want: want{err: mapping.ErrNotLinked},
		},
		{
			name: "BR-07: corp not configured", corps: []mapping.Corp{{ID: "dingcorp2"}},
			seed: func(e *env) {
				e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: e.account("zhangsan").ID})
			},
			id: employee("u1"), want: want{err: mapping.ErrCorpNotAllowed, audit: "signin.deny by system", reason: "corp_not_allowed"},
		},
		{
			name: "BR-07: no corp at all", corps: nil,
			id: employee("u1"), want: want{err: mapping.ErrCorpNotAllowed, audit: "signin.deny by system", reason: "corp_not_allowed"},
		},
		{
			name: "identity disabled", corps: []mapping.Corp{corp},
			seed: func(e *env) {
				e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: e.account("zhangsan").ID})
				_, err := e.s.SetBindingDisabled(e.t.Context(), admin, key("dingcorp1", "u1"), true)
				ok(e.t, "SetBindingDisabled", err)
			},
			id: employee("u1"), want: want{disabled: &mapping.DisabledError{Identity: true}, audit: "signin.deny by system", reason: "identity_disabled"},
		},
		{
			name: "account disabled (BR-16)", corps: []mapping.Corp{corp},
			seed: func(e *env) {
				a := e.account("zhangsan")
				e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: a.ID})
				_, err := e.s.SetAccountDisabled(e.t.Context(), admin, a.ID, true)
				ok(e.t, "SetAccountDisabled", err)
			},
			id: employee("u1"), want: want{disabled: &mapping.DisabledError{Account: true}, audit: "signin.deny by system", reason: "account_disabled"},
		},
		{
			name: "disabled unlinked identity gets no request", corps: []mapping.Corp{autoJob},
			seed: func(e *env) {
				e.account("e0042")
				e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1")})
				_, err := e.s.SetBindingDisabled(e.t.Context(), admin, key("dingcorp1", "u1"), true)
				ok(e.t, "SetBindingDisabled", err)
			},
			id: employee("u1"), want: want{disabled: &mapping.DisabledError{Identity: true}, audit: "signin.deny by system", reason: "identity_disabled"},
		},
		{
			name: "not linked: pending request with suggestions; auto-link is off by default", corps: []mapping.Corp{corp},
			seed: func(e *env) { e.account("e0042") },
			id:   employee("u1"), want: want{err: mapping.ErrNotLinked, request: true, suggest: "e0042", audit: "signin.deny by system", reason: "not_linked"},
		},
		{
			name: "BR-06: personal email equal to an account's email links nothing", corps: []mapping.Corp{autoEmail},
			seed: func(e *env) { e.account("zhangsan", func(a *mapping.Account) { a.Email = "zhang@example.net" }) },
			id:   employee("u1", func(id *mapping.Identity) { id.OrgEmail = "" }),
			want: want{err: mapping.ErrNotLinked, request: true},
		},
		{
			name: "BR-06: another userId with the same personal email as a linked identity", corps: []mapping.Corp{autoEmail},
			seed: func(e *env) {
				a := e.account("zhangsan", func(a *mapping.Account) { a.Email = "zhang@example.net" })
				e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1", Email: "zhang@example.net"}, AccountID: a.ID})
			},
			id:   employee("attacker", func(id *mapping.Identity) { id.OrgEmail = "" }),
			want: want{err: mapping.ErrNotLinked, request: true},
		},
		{
			name: "BR-06: a name equal to an account's display name is only a suggestion", corps: []mapping.Corp{autoJob},
			seed: func(e *env) { e.account("zhangsan", func(a *mapping.Account) { a.DisplayName = "张三" }) },
			id:   employee("u1", func(id *mapping.Identity) { id.JobNumber = "" }),
			want: want{err: mapping.ErrNotLinked, request: true, suggest: "zhangsan"},
		},
		{
			name: "auto-link on job number", corps: []mapping.Corp{autoJob},
			seed: func(e *env) { e.account("e0042") },
			id:   employee("u1"), want: want{username: "e0042", audit: "identity.create by auto"},
		},
		{
			name: "auto-link on org email, ignoring case", corps: []mapping.Corp{autoEmail},
			seed: func(e *env) {
				e.account("zhangsan", func(a *mapping.Account) { a.Email = "zhang.san@CORP.example.com" })
			},
			id: employee("u1"), want: want{username: "zhangsan", audit: "identity.create by auto"},
		},
		{
			name: "auto-link on mobile, with a country code on the account", corps: []mapping.Corp{autoMobile},
			seed: func(e *env) { e.account("zhangsan", func(a *mapping.Account) { a.Phone = "+86 185 1234 7676" }) },
			id:   employee("u1"), want: want{username: "zhangsan", audit: "identity.create by auto"},
		},
		{
			name: "auto-link links an identity recorded earlier and closes its request", corps: []mapping.Corp{autoJob},
			seed: func(e *env) {
				_, err := e.s.RecordPending(e.t.Context(), login, employee("u1"))
				ok(e.t, "RecordPending", err)
				e.account("e0042")
			},
			id: employee("u1"), want: want{username: "e0042", audit: "identity.link by auto"},
		},
		{
			name: "auto-link refuses two matches", corps: []mapping.Corp{autoMobile},
			seed: func(e *env) {
				e.account("a", func(a *mapping.Account) { a.Phone = "18512347676" })
				e.account("b", func(a *mapping.Account) { a.Phone = "185 1234 7676" })
			},
			id: employee("u1"), want: want{err: mapping.ErrNotLinked, request: true, suggest: "a"},
		},
		{
			name: "auto-link counts only active accounts", corps: []mapping.Corp{autoMobile},
			seed: func(e *env) {
				e.account("active", func(a *mapping.Account) { a.Phone = "18512347676" })
				old := e.account("old", func(a *mapping.Account) { a.Phone = "18512347676" })
				_, err := e.s.SetAccountDisabled(e.t.Context(), admin, old.ID, true)
				ok(e.t, "SetAccountDisabled", err)
			},
			id: employee("u1"), want: want{username: "active"},
		},
		{
			name: "auto-link refuses an account that has an identity in the corp", corps: []mapping.Corp{autoJob},
			seed: func(e *env) {
				e.binding(mapping.Binding{Identity: ident("dingcorp1", "someone"), AccountID: e.account("e0042").ID})
			},
			id: employee("u1"), want: want{err: mapping.ErrNotLinked, request: true, suggest: "e0042"},
		},
		{
			name: "auto-link ignores an identity that has not activated DingTalk", corps: []mapping.Corp{autoJob},
			seed: func(e *env) { e.account("e0042") },
			id:   employee("u1", func(id *mapping.Identity) { id.Active = false }),
			want: want{err: mapping.ErrNotLinked, request: true},
		},
		{
			name: "JIT creates the account", corps: []mapping.Corp{jit},
			id: employee("u1"), want: want{username: "e0042", audit: "identity.create by jit"},
		},
		{
			name: "JIT from the org email's local part", corps: []mapping.Corp{jitLocal},
			id: employee("u1"), want: want{username: "zhang.san"},
		},
		{
			name: "JIT: username taken gives a pending request", corps: []mapping.Corp{jit},
			seed: func(e *env) { e.account("e0042") },
			id:   employee("u1"), want: want{err: mapping.ErrNotLinked, request: true, suggest: "e0042"},
		},
		{
			name: "JIT: template gives no username", corps: []mapping.Corp{jit},
			id:   employee("u1", func(id *mapping.Identity) { id.JobNumber = "" }),
			want: want{err: mapping.ErrNotLinked, request: true},
		},
		{
			name: "auto-link first, then JIT", corps: []mapping.Corp{{ID: "dingcorp1", AutoLink: mapping.AttrOrgEmail, JIT: jit.JIT}},
			id: employee("u1"), want: want{username: "e0042"},
		},
		{
			name: "unionId only, unknown: not linked, no request", corps: []mapping.Corp{jit},
			id:   employee("", func(id *mapping.Identity) { id.UnionID = "union-x" }),
			want: want{err: mapping.ErrNotLinked},
		},
		{
			name: "malformed identity", corps: []mapping.Corp{corp},
			id: employee("has space"), want: want{err: mapping.ErrInvalid},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore)
			if tt.seed != nil {
				tt.seed(e)
			}
			r := newResolver(t, e.s, tt.corps...)
			m := mapping.Meta{RequestID: "req-9", ClientIP: admin.ClientIP}
			got, err := r.Resolve(t.Context(), tt.id, m)
			switch {
			case tt.want.username != "":
				ok(t, "Resolve", err)
				if got.Username != tt.want.username {
					t.Errorf("Resolve = %s, want %s", got.Username, tt.want.username)
				}
			case tt.want.disabled != nil:
				var de *mapping.DisabledError
				if !errors.As(err, &de) || *de != *tt.want.disabled || !errors.Is(err, mapping.ErrDisabled) {
					t.Errorf("Resolve error = %v, want %+v", err, *tt.want.disabled)
				}
			default:
				wantIs(t, "Resolve", err, tt.want.err)
				if got.ID != "" {
					t.Errorf("Resolve returned account %s with error %v", got.ID, err)
				}
			}
			var nl *mapping.NotLinkedError
			gotRequest := errors.As(err, &nl) && nl.RequestID != ""
			if gotRequest != tt.want.request {
				t.Errorf("Resolve error = %v: pending request %v, want %v", err, gotRequest, tt.want.request)
			}
			if gotRequest {
				req, err := e.s.PendingRequest(t.Context(), nl.RequestID)
				ok(t, "PendingRequest", err)
				if req.Status != mapping.RequestOpen || req.Key != tt.id.Key() {
					t.Errorf("request = %+v, want open for %s", req, tt.id.Key())
				}
				if tt.want.suggest != "" {
					a, err := e.s.AccountByUsername(t.Context(), tt.want.suggest)
					ok(t, "AccountByUsername", err)
					if !slices.Contains(req.SuggestedAccountIDs, a.ID) {
						t.Errorf("suggestions %v do not include %s (%s)", req.SuggestedAccountIDs, tt.want.suggest, a.ID)
					}
				}
			}
			if tt.want.audit != "" {
				ev := e.lastAudit("identity", tt.id.Key().String())
				if got := ev.Action + " by " + ev.Actor; got != tt.want.audit || ev.RequestID != "req-9" {
					t.Errorf("newest audit about %s = %q (request %q), want %q (request req-9)", tt.id.Key(), got, ev.RequestID, tt.want.audit)
				}
				if got := field(t, ev.After, "reason"); tt.want.reason != "" && got != tt.want.reason {
					t.Errorf("newest audit about %s has reason %v, want %s", tt.id.Key(), got, tt.want.reason)
				}
			}
			// Whatever linked the identity resolves it next time without rules.
			if tt.want.username != "" {
				again, err := newResolver(t, e.s, corp).Resolve(t.Context(), tt.id, m)
				if err != nil || again.ID != got.ID {
					t.Errorf("second Resolve = %s, %v; want %s", again.Username, err, got.Username)
				}
			}
		})
	}

	t.Run("JIT account fields", func(t *testing.T) {
		e := newEnv(t, newStore)
		a, err := newResolver(t, e.s, jit).Resolve(t.Context(), employee("u1"), mapping.Meta{})
		ok(t, "Resolve", err)
		want := mapping.Account{ID: a.ID, Username: "e0042", DisplayName: "张三", Email: "Zhang.San@corp.example.com",
			EmailVerified: true, Phone: "18512347676", Groups: []string{"staff"}, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now(), Version: 1}
		assertAccount(t, "JIT account", a, want)
		if ev := e.lastAudit("account", a.ID); ev.Action != "account.create" || ev.Actor != mapping.ActorJIT {
			t.Errorf("account audit = %s by %s, want account.create by jit", ev.Action, ev.Actor)
		}
		b, err := e.s.Binding(t.Context(), key("dingcorp1", "u1"))
		ok(t, "Binding", err)
		if b.Source != mapping.SourceJIT || b.AccountID != a.ID || b.UnionID != "union-u1" {
			t.Errorf("JIT identity = %+v, want source jit, linked, with its unionId", b)
		}
	})

	t.Run("configuration", func(t *testing.T) {
		tests := []struct {
			name  string
			corps []mapping.Corp
			want  string
		}{
			{"personal email is no auto-link attribute", []mapping.Corp{{ID: "c1", AutoLink: "email"}}, "corps[0].auto_link"},
			{"nick is no auto-link attribute", []mapping.Corp{{ID: "c1", AutoLink: "nick"}}, "corps[0].auto_link"},
			{"bad template", []mapping.Corp{{ID: "c1", JIT: mapping.JIT{Username: "{{.Nope}}"}}}, "corps[0].jit.username"},
			{"corp twice", []mapping.Corp{{ID: "c1"}, {ID: "c1"}}, "corps[1].id"},
			{"bad corp id", []mapping.Corp{{ID: "c 1"}}, "corps[0].id"},
		}
		for _, tt := range tests {
			_, err := mapping.NewResolver(mapping.ResolverConfig{Store: mapping.NewMemory(mapping.Options{}), Corps: tt.corps})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: NewResolver = %v, want an error about %s", tt.name, err, tt.want)
			}
		}
	})
}

// testResolverRefresh checks that every successful resolve refreshes the profile snapshot
// and the last sign-in time.
func testResolverRefresh(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	a := e.account("zhangsan")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: a.ID})
	r := newResolver(t, e.s, mapping.Corp{ID: "dingcorp1"})
	for i, name := range []string{"张三", "张三丰"} {
		e.clock.Advance(time.Hour)
		_, err := r.Resolve(t.Context(), employee("u1", func(id *mapping.Identity) { id.Name = name }), mapping.Meta{})
		ok(t, "Resolve", err)
		b, err := e.s.Binding(t.Context(), key("dingcorp1", "u1"))
		ok(t, "Binding", err)
		if b.Name != name || !b.LastLoginAt.Equal(e.clock.Now()) || b.UnionID != "union-u1" || b.JobNumber != "E0042" {
			t.Errorf("after resolve %d: %+v, want name %s, last sign-in %v and the directory profile", i, b, name, e.clock.Now())
		}
	}
}

// testConcurrentAutoLinks resolves two identities matching one account at once: one gets
// the account, the other a pending request; never both.
func testConcurrentAutoLinks(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	a := e.account("zhangsan", func(a *mapping.Account) { a.Phone = "18512347676" })
	r := newResolver(t, e.s, mapping.Corp{ID: "dingcorp1", AutoLink: mapping.AttrMobile})
	const n = 6
	errs := race(n, func(i int) error {
		_, err := r.Resolve(t.Context(), employee(fmt.Sprintf("u%d", i)), mapping.Meta{})
		return err
	})
	linked := 0
	for i, err := range errs {
		switch {
		case err == nil:
			linked++
		case errors.Is(err, mapping.ErrNotLinked):
		default:
			t.Errorf("Resolve #%d: %v, want success or ErrNotLinked", i, err)
		}
	}
	bs, err := e.s.BindingsByAccount(t.Context(), a.ID)
	ok(t, "BindingsByAccount", err)
	if linked != 1 || len(bs) != 1 {
		t.Errorf("%d resolves linked, account has %d identities; want exactly 1 and 1", linked, len(bs))
	}
}
