package mappingtest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

// testAuditTrail checks every filter of AuditTrail, alone and combined, and keyset paging.
func testAuditTrail(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	admin2 := mapping.Meta{Actor: "admin-2", RequestID: "req-2"}
	step := func(what string, err error) {
		t.Helper()
		ok(t, what, err)
		e.clock.Advance(time.Minute)
	}
	zs := e.account("zhangsan") // 1
	e.clock.Advance(time.Minute)
	ls := e.account("lisi") // 2
	e.clock.Advance(time.Minute)
	_, err := e.s.SetAccountDisabled(ctx, admin2, zs.ID, true) // 3
	step("disable", err)
	_, err = e.s.CreateBinding(ctx, admin2, mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: ls.ID}) // 4
	step("CreateBinding", err)
	_, err = e.s.SetAccountDisabled(ctx, admin, zs.ID, false) // 5
	step("enable", err)
	err = e.s.RecordEvent(ctx, mapping.Meta{Actor: mapping.ActorSystem}, mapping.Event{ // 6
		Action: mapping.ActionSignInDeny, TargetType: "identity", TargetID: "dingcorp1/u9", Detail: map[string]string{"reason": "corp_not_allowed"}})
	step("RecordEvent", err)
	ls.DisplayName = "李四"
	_, err = e.s.UpdateAccount(ctx, admin, ls) // 7
	step("UpdateAccount", err)

	all, err := e.s.AuditTrail(ctx, mapping.AuditQuery{})
	ok(t, "AuditTrail", err)
	if len(all.Events) != 7 || all.Next != "" {
		t.Fatalf("AuditTrail = %d events (next %q), want 7 on one page", len(all.Events), all.Next)
	}
	at := func(n int) time.Time { return all.Events[7-n].At } // of event n (1 is the oldest)
	for i := 1; i < len(all.Events); i++ {
		if all.Events[i].ID >= all.Events[i-1].ID || all.Events[i].At.After(all.Events[i-1].At) {
			t.Errorf("events %d and %d are not newest first: %+v, %+v", i-1, i, all.Events[i-1], all.Events[i])
		}
	}

	const (
		e1 = "account.create zhangsan admin-1"
		e2 = "account.create lisi admin-1"
		e3 = "account.disable zhangsan admin-2"
		e4 = "identity.create dingcorp1/u1 admin-2"
		e5 = "account.enable zhangsan admin-1"
		e6 = "signin.deny dingcorp1/u9 system"
		e7 = "account.update lisi admin-1"
	)
	names := map[string]string{zs.ID: "zhangsan", ls.ID: "lisi"}
	label := func(ev mapping.AuditEvent) string {
		target := ev.TargetID
		if n, ok := names[target]; ok {
			target = n
		}
		return ev.Action + " " + target + " " + ev.Actor
	}
	labels := func(evs []mapping.AuditEvent) string {
		var out []string
		for _, ev := range evs {
			out = append(out, label(ev))
		}
		return strings.Join(out, ", ")
	}
	list := func(s ...string) string { return strings.Join(s, ", ") }
	tests := []struct {
		name string
		q    mapping.AuditQuery
		want string
	}{
		{"everything", mapping.AuditQuery{}, list(e7, e6, e5, e4, e3, e2, e1)},
		{"actor", mapping.AuditQuery{Actor: "admin-2"}, list(e4, e3)},
		{"unknown actor", mapping.AuditQuery{Actor: "nobody"}, ""},
		{"action", mapping.AuditQuery{Action: "account.disable"}, list(e3)},
		{"action family", mapping.AuditQuery{Action: "account."}, list(e7, e5, e3, e2, e1)},
		{"an action without its dot is not a family", mapping.AuditQuery{Action: "account"}, ""},
		{"sign-in family", mapping.AuditQuery{Action: "signin."}, list(e6)},
		{"a family's name is literal", mapping.AuditQuery{Action: "account%."}, ""},
		{"target", mapping.AuditQuery{TargetType: "account", TargetID: zs.ID}, list(e5, e3, e1)},
		{"target type", mapping.AuditQuery{TargetType: "identity"}, list(e6, e4)},
		{"actor and family", mapping.AuditQuery{Actor: "admin-1", Action: "account."}, list(e7, e5, e2, e1)},
		{"actor, family and target", mapping.AuditQuery{Actor: "admin-1", Action: "account.", TargetType: "account", TargetID: ls.ID}, list(e7, e2)},
		{"time window", mapping.AuditQuery{Since: at(3), Until: at(6)}, list(e5, e4, e3)},
		{"since", mapping.AuditQuery{Since: at(6)}, list(e7, e6)},
		{"until", mapping.AuditQuery{Until: at(2)}, list(e1)},
		{"window and actor", mapping.AuditQuery{Since: at(2), Until: at(7), Actor: "admin-1"}, list(e5, e2)},
		{"window in another zone", mapping.AuditQuery{Since: at(3).In(time.FixedZone("CST", 8*3600)), Until: at(4)}, list(e3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := e.s.AuditTrail(ctx, tt.q)
			ok(t, "AuditTrail", err)
			if got := labels(page.Events); got != tt.want || page.Next != "" {
				t.Errorf("AuditTrail(%+v) = %q (next %q), want %q on one page", tt.q, got, page.Next, tt.want)
			}
			// Paged by two, the same events in the same order.
			q := tt.q
			q.Limit = 2
			var paged []mapping.AuditEvent
			for range 10 {
				page, err := e.s.AuditTrail(ctx, q)
				ok(t, "AuditTrail", err)
				if len(page.Events) > 2 || page.Next != "" && len(page.Events) != 2 {
					t.Fatalf("page of %d events with next %q, want 2 events or the last page", len(page.Events), page.Next)
				}
				paged = append(paged, page.Events...)
				if page.Next == "" {
					break
				}
				q.After = page.Next
			}
			if got := labels(paged); got != tt.want {
				t.Errorf("paged by 2: %q, want %q", got, tt.want)
			}
		})
	}

	// AuditEvents reads the first page of the same query.
	es, err := e.s.AuditEvents(ctx, mapping.AuditQuery{Action: "account.", Limit: 2})
	ok(t, "AuditEvents", err)
	if got := labels(es); got != list(e7, e5) {
		t.Errorf("AuditEvents = %q, want %q", got, list(e7, e5))
	}
	// Before and after are kept as written.
	if ev := all.Events[2]; field(t, ev.Before, "disabled") != true || field(t, ev.After, "disabled") != false {
		t.Errorf("account.enable: before %s after %s, want disabled true then false", ev.Before, ev.After)
	}

	for _, q := range []mapping.AuditQuery{
		{Limit: -1}, {Limit: mapping.MaxPageSize + 1}, {After: "not a cursor!"}, {After: "MA"}, // "0"
		{TargetID: zs.ID}, {Action: "a\nb"}, {Action: strings.Repeat("a", 65)},
		{Since: at(4), Until: at(4)}, {Since: at(5), Until: at(4)},
	} {
		_, err := e.s.AuditTrail(ctx, q)
		wantIs(t, fmt.Sprintf("AuditTrail(%+v)", q), err, mapping.ErrInvalid)
	}
}

// testStats checks each overview figure against a known directory.
func testStats(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	st, err := e.s.Stats(ctx, mapping.StatsQuery{})
	ok(t, "Stats", err)
	if !reflect.DeepEqual(st, mapping.Stats{}) {
		t.Errorf("Stats of an empty store = %+v, want all zero", st)
	}
	if n, err := e.s.CountOpenRequests(ctx); err != nil || n != (mapping.Count{}) {
		t.Errorf("CountOpenRequests of an empty store = %+v, %v; want 0", n, err)
	}

	// A failure before the window: the window starts just after it.
	ok(t, "RecordEvent", e.s.RecordEvent(ctx, mapping.Meta{Actor: "idp"}, mapping.Event{
		Action: mapping.ActionSignInFail, TargetType: "signin", Detail: map[string]string{"reason": "state_expired"}}))
	old, err := e.s.AuditTrail(ctx, mapping.AuditQuery{Limit: 1})
	ok(t, "AuditTrail", err)
	failuresSince := old.Events[0].At.Add(time.Microsecond)
	e.clock.Advance(time.Minute)

	day1 := e.clock.Now().Truncate(24 * time.Hour)
	zs, ls, ww := e.account("zhangsan"), e.account("lisi"), e.account("wangwu")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "zs"), AccountID: zs.ID})
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "ls"), AccountID: ls.ID})
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "ww"), AccountID: ww.ID})
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "gone")})
	r := newResolver(t, e.s, mapping.Corp{ID: "dingcorp1"})
	resolve := func(user string, want error) {
		t.Helper()
		_, err := r.Resolve(ctx, employee(user), mapping.Meta{})
		if want == nil {
			ok(t, "Resolve "+user, err)
		} else {
			wantIs(t, "Resolve "+user, err, want)
		}
	}
	resolve("ls", nil) // day 1
	e.clock.Advance(24 * time.Hour)
	day2 := e.clock.Now().Truncate(24 * time.Hour)
	resolve("zs", nil) // day 2, twice: one person
	resolve("zs", nil)
	_, err = e.s.SetAccountDisabled(ctx, admin, ww.ID, true)
	ok(t, "SetAccountDisabled", err)
	resolve("ww", mapping.ErrDisabled)
	_, err = e.s.SetBindingDisabled(ctx, admin, key("dingcorp1", "gone"), true)
	ok(t, "SetBindingDisabled", err)
	resolve("gone", mapping.ErrDisabled)
	resolve("new1", mapping.ErrNotLinked) // records an identity and a request
	resolve("new1", mapping.ErrNotLinked)
	resolve("new2", mapping.ErrNotLinked)
	_, err = newResolver(t, e.s).Resolve(ctx, employee("x"), mapping.Meta{})
	wantIs(t, "Resolve in an unknown corp", err, mapping.ErrCorpNotAllowed)
	ok(t, "RecordEvent", e.s.RecordEvent(ctx, mapping.Meta{Actor: "idp"}, mapping.Event{
		Action: mapping.ActionSignInFail, TargetType: "signin", Detail: map[string]string{"reason": "state_expired", "mode": "qr"}}))
	ok(t, "RecordEvent", e.s.RecordEvent(ctx, mapping.Meta{Actor: "idp"}, mapping.Event{Action: mapping.ActionSignInFail, TargetType: "signin"}))
	ok(t, "RecordEvent", e.s.RecordEvent(ctx, mapping.Meta{Actor: "idp"}, mapping.Event{
		Action: "signin.other", TargetType: "signin", Detail: map[string]string{"reason": "not counted"}}))

	exact := func(n int64) mapping.Count { return mapping.Count{N: n} }
	st, err = e.s.Stats(ctx, mapping.StatsQuery{SignedInSince: day2, FailuresSince: failuresSince})
	ok(t, "Stats", err)
	want := mapping.Stats{
		Accounts: exact(3), Identities: exact(6), Linked: exact(3), Unlinked: exact(3), OpenRequests: exact(2), SignIns: exact(1),
		Failures: []mapping.ReasonCount{
			{Reason: "not_linked", N: 3},
			{Reason: "", N: 1},
			{Reason: "account_disabled", N: 1},
			{Reason: "corp_not_allowed", N: 1},
			{Reason: "identity_disabled", N: 1},
			{Reason: "state_expired", N: 1},
		},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Stats =\n\t%+v\nwant\n\t%+v", st, want)
	}
	// The metrics gauge's count agrees, and leaves out a request once it is decided.
	if n, err := e.s.CountOpenRequests(ctx); err != nil || n != exact(2) {
		t.Errorf("CountOpenRequests = %+v, %v; want 2", n, err)
	}
	open, err := e.s.PendingRequests(ctx, mapping.RequestQuery{})
	ok(t, "PendingRequests", err)
	_, err = e.s.Reject(ctx, admin, open.Requests[0].ID, "not one of ours")
	ok(t, "Reject", err)
	if n, err := e.s.CountOpenRequests(ctx); err != nil || n != exact(1) {
		t.Errorf("CountOpenRequests after a rejection = %+v, %v; want 1", n, err)
	}
	st, err = e.s.Stats(ctx, mapping.StatsQuery{SignedInSince: day1, FailuresSince: old.Events[0].At})
	ok(t, "Stats", err)
	if st.SignIns != exact(2) || len(st.Failures) < 2 || st.Failures[0] != (mapping.ReasonCount{Reason: "not_linked", N: 3}) ||
		st.Failures[1] != (mapping.ReasonCount{Reason: "state_expired", N: 2}) {
		t.Errorf("Stats since day 1 = sign-ins %+v, failures %+v; want 2 sign-ins and state_expired twice", st.SignIns, st.Failures)
	}
}

// testSearchLinkFilter checks the linked and unlinked filters, with text and paging.
func testSearchLinkFilter(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedSearch(e)
	tests := []struct {
		q    mapping.Query
		want string
	}{
		{mapping.Query{Link: mapping.LinkUnlinked}, "dingcorp1/lisi01"},
		{mapping.Query{Link: mapping.LinkLinked}, "dingcorp1/184919295227658120 dingcorp1/ww dingcorp2/manager240"},
		{mapping.Query{Link: mapping.LinkUnlinked, Text: "李四"}, "dingcorp1/lisi01"},
		{mapping.Query{Link: mapping.LinkUnlinked, Text: "张三"}, ""},
		{mapping.Query{Link: mapping.LinkLinked, Text: "13"}, "dingcorp2/manager240"},
	}
	for _, tt := range tests {
		page, err := e.s.Search(t.Context(), tt.q)
		ok(t, "Search", err)
		if got := resultKeys(page); got != tt.want {
			t.Errorf("Search(%+v) = %q, want %q", tt.q, got, tt.want)
		}
	}
	_, err := e.s.Search(t.Context(), mapping.Query{Link: "maybe"})
	wantIs(t, "Search with link maybe", err, mapping.ErrInvalid)

	// Unlinked identities between linked ones, paged by two.
	a := e.account("paging")
	for i := range 6 {
		b := mapping.Binding{Identity: ident("dingcorp3", fmt.Sprintf("p%d", i))}
		if i%2 == 0 {
			b.Identity.CorpID = "dingcorp4" // linked ones in another corp, all to one account
			b.AccountID = a.ID
		}
		e.binding(b)
	}
	var pages []string
	q := mapping.Query{Link: mapping.LinkUnlinked, Limit: 2}
	for range 5 {
		page, err := e.s.Search(t.Context(), q)
		ok(t, "Search", err)
		pages = append(pages, resultKeys(page))
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if got, want := strings.Join(pages, " | "), "dingcorp1/lisi01 dingcorp3/p1 | dingcorp3/p3 dingcorp3/p5"; got != want {
		t.Errorf("unlinked pages = %q, want %q", got, want)
	}
}
