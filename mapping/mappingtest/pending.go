package mappingtest

import (
	"slices"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

var login = mapping.Meta{Actor: mapping.ActorLogin, RequestID: "req-login"}

func testPending(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	byJob := e.account("e0042")
	byOrgEmail := e.account("zs", func(a *mapping.Account) { a.Email = "ZS@corp.example.com" })
	byMobile := e.account("mobile", func(a *mapping.Account) { a.Phone = "+86 185-1234-7676" })
	byName := e.account("name", func(a *mapping.Account) { a.DisplayName = "张三" })
	e.account("personal", func(a *mapping.Account) { a.Email = "zhang@example.net" })

	id := mapping.Identity{CorpID: "dingcorp1", UserID: "u1", Name: "张三", JobNumber: "E0042",
		OrgEmail: "zs@corp.example.com", Mobile: "18512347676", Email: "zhang@example.net", Active: true}
	first := e.clock.Now()
	r, err := e.s.RecordPending(ctx, login, id)
	ok(t, "RecordPending", err)
	if r.ID == "" || r.Status != mapping.RequestOpen || r.Attempts != 1 || !r.FirstSeenAt.Equal(first) || !r.LastSeenAt.Equal(first) {
		t.Errorf("RecordPending = %+v, want open, 1 attempt, seen now", r)
	}
	want := []string{byJob.ID, byOrgEmail.ID, byMobile.ID, byName.ID}
	if got := slices.Sorted(slices.Values(r.SuggestedAccountIDs)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("suggestions = %v, want job number, org email, mobile and name matches %v (never the personal email)", r.SuggestedAccountIDs, want)
	}
	b, err := e.s.Binding(ctx, id.Key())
	ok(t, "Binding", err)
	if b.Linked() || b.Source != mapping.SourceLogin || b.Name != "张三" {
		t.Errorf("recorded identity = %+v, want unlinked, source login, with the profile", b)
	}
	if ev := e.lastAudit("request", r.ID); ev.Action != "request.open" || ev.Actor != mapping.ActorLogin {
		t.Errorf("audit = %s by %s, want request.open by login", ev.Action, ev.Actor)
	}
	if ev := e.lastAudit("identity", id.Key().String()); ev.Action != "identity.create" {
		t.Errorf("identity audit = %s, want identity.create", ev.Action)
	}

	// Trying again refreshes the same request.
	e.clock.Advance(time.Hour)
	id.Name = "张三 (new)"
	again, err := e.s.RecordPending(ctx, login, id)
	ok(t, "RecordPending again", err)
	if again.ID != r.ID || again.Attempts != 2 || !again.FirstSeenAt.Equal(first) || !again.LastSeenAt.Equal(e.clock.Now()) {
		t.Errorf("second RecordPending = %+v, want request %s with 2 attempts, first seen %v, last seen now", again, r.ID, first)
	}
	if n := len(e.audit("request", r.ID)); n != 1 {
		t.Errorf("request has %d audit rows after a second attempt, want 1 (attempts are not audited)", n)
	}
	got, err := e.s.PendingRequest(ctx, r.ID)
	ok(t, "PendingRequest", err)
	if got.Attempts != 2 || got.Binding.Name != "张三 (new)" {
		t.Errorf("PendingRequest = %d attempts, identity name %q; want 2 and the new name", got.Attempts, got.Binding.Name)
	}

	// The queue: most recently seen first, paged.
	e.clock.Advance(time.Minute)
	r2, err := e.s.RecordPending(ctx, login, ident("dingcorp1", "u2"))
	ok(t, "RecordPending u2", err)
	e.clock.Advance(time.Minute)
	r3, err := e.s.RecordPending(ctx, login, ident("dingcorp2", "u3"))
	ok(t, "RecordPending u3", err)
	var ids []string
	q := mapping.RequestQuery{Limit: 2}
	for range 5 {
		page, err := e.s.PendingRequests(ctx, q)
		ok(t, "PendingRequests", err)
		for _, r := range page.Requests {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if want := []string{r3.ID, r2.ID, r.ID}; !slices.Equal(ids, want) {
		t.Errorf("PendingRequests = %v, want %v (most recent first)", ids, want)
	}
	_, err = e.s.PendingRequests(ctx, mapping.RequestQuery{Status: "maybe"})
	wantIs(t, "PendingRequests(bad status)", err, mapping.ErrInvalid)
	_, err = e.s.PendingRequest(ctx, "nope")
	wantIs(t, "PendingRequest(unknown)", err, mapping.ErrNotFound)

	// A linked or disabled identity gets no request.
	a := e.account("linked")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "linked"), AccountID: a.ID})
	_, err = e.s.RecordPending(ctx, login, ident("dingcorp1", "linked"))
	wantConflict(t, "RecordPending(linked)", err, mapping.ConflictIdentityLinked)
	_, err = e.s.SetBindingDisabled(ctx, admin, key("dingcorp1", "u2"), true)
	ok(t, "SetBindingDisabled", err)
	_, err = e.s.RecordPending(ctx, login, ident("dingcorp1", "u2"))
	wantIs(t, "RecordPending(disabled)", err, mapping.ErrDisabled)
}

func testPendingDecisions(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	zs := e.account("zhangsan")
	open := func(user string) mapping.Request {
		t.Helper()
		r, err := e.s.RecordPending(ctx, login, ident("dingcorp1", user))
		ok(t, "RecordPending", err)
		return r
	}

	// Approve: link to an existing account.
	r := open("u1")
	e.clock.Advance(time.Minute)
	b, err := e.s.Approve(ctx, admin, r.ID, zs.ID)
	ok(t, "Approve", err)
	if b.AccountID != zs.ID || b.Source != mapping.SourceAdmin {
		t.Errorf("Approve = %+v, want linked to zhangsan by admin", b)
	}
	got, err := e.s.PendingRequest(ctx, r.ID)
	ok(t, "PendingRequest", err)
	if got.Status != mapping.RequestApproved || got.AccountID != zs.ID || got.DecidedBy != admin.Actor || !got.DecidedAt.Equal(e.clock.Now()) {
		t.Errorf("approved request = %+v, want approved, account zhangsan, decided by admin-1 now", got)
	}
	if ev := e.lastAudit("request", r.ID); ev.Action != "request.approve" || field(t, ev.Before, "status") != "open" || field(t, ev.After, "status") != "approved" {
		t.Errorf("request audit = %s %s→%s, want request.approve open→approved", ev.Action, field(t, ev.Before, "status"), field(t, ev.After, "status"))
	}
	if ev := e.lastAudit("identity", "dingcorp1/u1"); ev.Action != "identity.link" {
		t.Errorf("identity audit = %s, want identity.link", ev.Action)
	}
	_, err = e.s.Approve(ctx, admin, r.ID, zs.ID)
	wantConflict(t, "Approve(again)", err, mapping.ConflictRequestDecided)
	_, err = e.s.Reject(ctx, admin, r.ID, "late")
	wantConflict(t, "Reject(approved)", err, mapping.ConflictRequestDecided)

	// Approve with a new account.
	r = open("u2")
	acct, b, err := e.s.ApproveNewAccount(ctx, admin, r.ID, mapping.Account{Username: "newbie", DisplayName: "新人"})
	ok(t, "ApproveNewAccount", err)
	if acct.Username != "newbie" || b.AccountID != acct.ID {
		t.Errorf("ApproveNewAccount = %+v, %+v; want account newbie with the identity linked", acct, b)
	}
	r = open("u3")
	_, _, err = e.s.ApproveNewAccount(ctx, admin, r.ID, mapping.Account{Username: "zhangsan"})
	wantConflict(t, "ApproveNewAccount(taken username)", err, mapping.ConflictUsernameTaken)
	if got, _ := e.s.PendingRequest(ctx, r.ID); got.Status != mapping.RequestOpen {
		t.Errorf("after a failed approval the request is %s, want still open", got.Status)
	}
	_, err = e.s.Approve(ctx, admin, r.ID, "nope")
	wantIs(t, "Approve(unknown account)", err, mapping.ErrNotFound)

	// Reject; a later attempt opens a new request.
	rej, err := e.s.Reject(ctx, admin, r.ID, "not an employee")
	ok(t, "Reject", err)
	if rej.Status != mapping.RequestRejected || rej.Reason != "not an employee" || rej.DecidedBy != admin.Actor {
		t.Errorf("Reject = %+v, want rejected with the reason, by admin-1", rej)
	}
	if again := open("u3"); again.ID == r.ID || again.Attempts != 1 {
		t.Errorf("after a rejection, a new attempt gave request %s with %d attempts, want a new request", again.ID, again.Attempts)
	}

	// Linking some other way closes the open request.
	r = open("u4")
	_, err = e.s.Link(ctx, admin, key("dingcorp1", "u4"), zs.ID)
	ok(t, "Link", err)
	if got, _ := e.s.PendingRequest(ctx, r.ID); got.Status != mapping.RequestClosed || got.AccountID != zs.ID {
		t.Errorf("after Link the request is %s (account %q), want closed with zhangsan", got.Status, got.AccountID)
	}

	page, err := e.s.PendingRequests(ctx, mapping.RequestQuery{Status: mapping.RequestApproved})
	ok(t, "PendingRequests(approved)", err)
	if len(page.Requests) != 2 {
		t.Errorf("approved requests = %d, want 2", len(page.Requests))
	}
	_, err = e.s.Approve(ctx, admin, "nope", zs.ID)
	wantIs(t, "Approve(unknown request)", err, mapping.ErrNotFound)
}

func testRecordSignIn(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	zs := e.account("zhangsan")
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1", UnionID: "union1", AppKey: "app1"}, AccountID: zs.ID})
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "u2")})

	e.clock.Advance(time.Hour)
	b, a, err := e.s.RecordSignIn(ctx, mapping.Identity{CorpID: "dingcorp1", UserID: "u1", Name: "张三", Title: "工程师", DeptIDs: []int64{2, 3}, Active: true})
	ok(t, "RecordSignIn", err)
	if a == nil || a.ID != zs.ID || b.Name != "张三" || b.Title != "工程师" || !slices.Equal(b.DeptIDs, []int64{2, 3}) ||
		!b.LastLoginAt.Equal(e.clock.Now()) || b.Version != 1 {
		t.Errorf("RecordSignIn = %+v, %v; want zhangsan, the new profile, last sign-in now, version unchanged", b, a)
	}
	stored, err := e.s.Binding(ctx, key("dingcorp1", "u1"))
	ok(t, "Binding", err)
	if stored.Name != "张三" || !stored.LastLoginAt.Equal(e.clock.Now()) {
		t.Errorf("stored identity = %+v, want the refreshed profile and sign-in time", stored)
	}

	b, a, err = e.s.RecordSignIn(ctx, ident("dingcorp1", "u2"))
	ok(t, "RecordSignIn(unlinked)", err)
	if a != nil || !b.LastLoginAt.IsZero() {
		t.Errorf("RecordSignIn(unlinked) = %+v, %v; want no account and no sign-in time", b, a)
	}

	tests := []struct {
		name    string
		id      mapping.Identity
		wantKey string // "" for ErrNotFound
	}{
		{"unknown", ident("dingcorp1", "nope"), ""},
		{"by unionId under the same app key", mapping.Identity{CorpID: "dingcorp1", UnionID: "union1", AppKey: "app1"}, "dingcorp1/u1"},
		{"unionId of another developer (BR-08)", mapping.Identity{CorpID: "dingcorp1", UnionID: "union1", AppKey: "app2"}, ""},
		{"unionId in another corp", mapping.Identity{CorpID: "dingcorp2", UnionID: "union1", AppKey: "app1"}, ""},
		{"unionId of a row with another userId", mapping.Identity{CorpID: "dingcorp1", UserID: "u9", UnionID: "union1", AppKey: "app1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, err := e.s.RecordSignIn(t.Context(), tt.id)
			if tt.wantKey == "" {
				wantIs(t, "RecordSignIn", err, mapping.ErrNotFound)
				return
			}
			ok(t, "RecordSignIn", err)
			if b.Key().String() != tt.wantKey {
				t.Errorf("RecordSignIn found %s, want %s", b.Key(), tt.wantKey)
			}
		})
	}

	// A sign-in teaches an identity its unionId, unless another identity has it.
	_, _, err = e.s.RecordSignIn(ctx, mapping.Identity{CorpID: "dingcorp1", UserID: "u2", UnionID: "union2", AppKey: "app1"})
	ok(t, "RecordSignIn", err)
	if b, err := e.s.BindingByUnionID(ctx, "dingcorp1", "union2"); err != nil || b.UserID != "u2" {
		t.Errorf("BindingByUnionID(union2) = %v, %v; want u2, learned at sign-in", b.Key(), err)
	}
	_, _, err = e.s.RecordSignIn(ctx, mapping.Identity{CorpID: "dingcorp1", UserID: "u2", UnionID: "union1", AppKey: "app1"})
	ok(t, "RecordSignIn(union of another row)", err)
	if b, _ := e.s.BindingByUnionID(ctx, "dingcorp1", "union1"); b.UserID != "u1" {
		t.Errorf("union1 moved to %s, want it kept by u1", b.UserID)
	}

	// A disabled account signs in without a sign-in time.
	_, err = e.s.SetAccountDisabled(ctx, admin, zs.ID, true)
	ok(t, "SetAccountDisabled", err)
	e.clock.Advance(time.Hour)
	b, _, err = e.s.RecordSignIn(ctx, ident("dingcorp1", "u1"))
	ok(t, "RecordSignIn(disabled account)", err)
	if b.LastLoginAt.Equal(e.clock.Now()) {
		t.Errorf("a disabled account's identity got sign-in time %v", b.LastLoginAt)
	}
}
