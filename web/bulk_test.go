package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/mapping"
)

// bulkFixture is a console with open requests of every kind a bulk
// approval meets, by userId.
type bulkFixture struct {
	*accountsConsole
	req      map[string]mapping.Request // by userId
	accounts map[string]mapping.Account // by username
}

func newBulkFixture(t *testing.T, c *accountsConsole) *bulkFixture {
	t.Helper()
	ctx, m := t.Context(), mapping.Meta{Actor: "test"}
	f := &bulkFixture{accountsConsole: c, req: map[string]mapping.Request{}, accounts: map[string]mapping.Account{}}
	for _, a := range []mapping.Account{
		{Username: "wuliu", DisplayName: "吴六"},
		{Username: "chen1", DisplayName: "陈晨"},
		{Username: "chen2", DisplayName: "陈晨"},
		{Username: "zhao", DisplayName: "赵七"},
	} {
		got, err := c.st.CreateAccount(ctx, m, a)
		if err != nil {
			t.Fatal(err)
		}
		f.accounts[a.Username] = got
	}
	if _, err := c.st.SetAccountDisabled(ctx, m, f.accounts["zhao"].ID, true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []mapping.Identity{
		{UserID: "Wu6", Name: "吴六"},      // one suggestion: wuliu
		{UserID: "chenchen", Name: "陈晨"}, // two suggestions
		{UserID: "nobody1", Name: "无名"},  // none
		{UserID: "zhao7", Name: "赵七"},    // the disabled zhao
		{UserID: "LiSi", Name: "某人"},     // lower-cased, lisi is taken
		{UserID: "_x", Name: "下划线"},      // not a username
	} {
		id.CorpID, id.AppKey = "dingcorp1", "app1"
		r, err := c.st.RecordPending(ctx, m, id)
		if err != nil {
			t.Fatal(err)
		}
		f.req[id.UserID] = r
	}
	return f
}

// form is a bulk approval of the requests of these userIds ("gone" names
// a request that does not exist).
func (f *bulkFixture) form(mode string, confirm bool, userIDs ...string) url.Values {
	v := url.Values{"mode": {mode}}
	for _, u := range userIDs {
		id := "gone"
		if r, ok := f.req[u]; ok {
			id = r.ID
		}
		v.Add("id", id)
	}
	if confirm {
		v.Set("confirm", "1")
	}
	return v
}

var bulkRowRE = regexp.MustCompile(`<tr data-request-id="([^"]*)" data-user-id="([^"]*)" data-outcome="([^"]*)">\s*<td>[^<]*</td><td><code>[^<]*</code></td><td>(?:<code>([^<]*)</code>)?</td>\s*<td>.*?</td>\s*<td>([^<]*)</td>`)

// bulkOutcomes reads the bulk page's table: userId (or request id when the
// request is gone) → "outcome account: reason".
func bulkOutcomes(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range bulkRowRE.FindAllStringSubmatch(body, -1) {
		who := m[2]
		if who == "" {
			who = m[1]
		}
		got := m[3]
		if m[4] != "" {
			got += " " + m[4]
		}
		out[who] = strings.TrimSpace(got + ": " + m[5])
	}
	if len(out) == 0 {
		t.Fatalf("no outcome rows in:\n%s", body)
	}
	return out
}

func (f *bulkFixture) request(t *testing.T, userID string) mapping.Request {
	t.Helper()
	r, err := f.st.PendingRequest(t.Context(), f.req[userID].ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// adminEvents are the audit rows written by the administrator, oldest first.
func (f *bulkFixture) adminEvents(t *testing.T) []string {
	t.Helper()
	es, err := f.st.AuditEvents(t.Context(), mapping.AuditQuery{Actor: f.admin.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		if !e.ClientIP.IsValid() || e.RequestID == "" {
			t.Errorf("audit %s %s has no client IP or request id", e.Action, e.TargetID)
		}
		got = append(got, e.Action+" "+e.TargetID)
	}
	return got
}

func wantOutcomes(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("outcome of %s = %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
}

func TestBulkApproveSuggested(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		f := newBulkFixture(t, c)
		all := []string{"Wu6", "chenchen", "nobody1", "zhao7", "gone"}
		want := func(wu string) map[string]string {
			return map[string]string{
				"Wu6":      wu,
				"chenchen": "skipped: Several suggested accounts; choose one on its own.",
				"nobody1":  "skipped: No suggested account; handle it on its own.",
				"zhao7":    "skipped zhao: The suggested account is disabled, so this person could not sign in; handle it on its own.",
				"gone":     "skipped: This request no longer exists.",
			}
		}

		// The confirmation says what would happen and changes nothing.
		status, _, body := c.post(t, "/admin/pending/bulk", f.form("suggested", false, all...))
		if status != http.StatusOK {
			t.Fatalf("confirmation: status %d, want 200:\n%s", status, body)
		}
		wantOutcomes(t, bulkOutcomes(t, body), want("approve wuliu:"))
		if !strings.Contains(body, "1 selected will be approved.") || !strings.Contains(body, ">Approve 1 selected</button>") {
			t.Errorf("confirmation does not say how many will be approved:\n%s", body)
		}
		if !strings.Contains(body, `name="to_`+f.req["Wu6"].ID+`" value="`+f.accounts["wuliu"].ID+`"`) {
			t.Errorf("confirmation does not carry the account confirmed for Wu6:\n%s", body)
		}
		if got := f.adminEvents(t); len(got) != 0 {
			t.Errorf("after the confirmation, audit rows %q, want none", got)
		}
		if r := f.request(t, "Wu6"); r.Status != mapping.RequestOpen {
			t.Errorf("after the confirmation, request status %q, want open", r.Status)
		}

		// Confirmed: each request its own outcome; only Wu6 is approved.
		form := f.form("suggested", true, all...)
		form.Set("to_"+f.req["Wu6"].ID, f.accounts["wuliu"].ID)
		status, _, body = c.post(t, "/admin/pending/bulk", form)
		if status != http.StatusOK {
			t.Fatalf("confirmed: status %d, want 200:\n%s", status, body)
		}
		wantOutcomes(t, bulkOutcomes(t, body), want("approved wuliu:"))
		if !strings.Contains(body, "Approved 1, skipped 4, failed 0.") {
			t.Errorf("result has no summary:\n%s", body)
		}
		if b := c.binding(t, mapping.Key{CorpID: "dingcorp1", UserID: "Wu6"}); b.AccountID != f.accounts["wuliu"].ID {
			t.Errorf("Wu6 linked to %q, want wuliu %q", b.AccountID, f.accounts["wuliu"].ID)
		}
		for _, u := range []string{"chenchen", "nobody1", "zhao7"} {
			if r := f.request(t, u); r.Status != mapping.RequestOpen {
				t.Errorf("skipped %s: request status %q, want open", u, r.Status)
			}
		}
		wantEvents := []string{"identity.link dingcorp1/Wu6", "request.approve " + f.req["Wu6"].ID}
		if got := f.adminEvents(t); strings.Join(got, ", ") != strings.Join(wantEvents, ", ") {
			t.Errorf("audit rows by the administrator = %q, want %q", got, wantEvents)
		}

		// Sent again (a reload): already decided, nothing more happens.
		_, _, body = c.post(t, "/admin/pending/bulk", form)
		if got := bulkOutcomes(t, body)["Wu6"]; got != "skipped: This request was already decided." {
			t.Errorf("Wu6 sent again: %q, want skipped as decided", got)
		}
		if got := f.adminEvents(t); len(got) != len(wantEvents) {
			t.Errorf("after sending again, audit rows %q, want still %q", got, wantEvents)
		}
	})
}

func TestBulkApproveChangedSuggestion(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		f := newBulkFixture(t, c)
		// Confirmed for another account than the one suggested now.
		form := f.form("suggested", true, "Wu6")
		form.Set("to_"+f.req["Wu6"].ID, f.accounts["chen1"].ID)
		_, _, body := c.post(t, "/admin/pending/bulk", form)
		wantOutcomes(t, bulkOutcomes(t, body), map[string]string{
			"Wu6": "skipped wuliu: The suggested account changed after you confirmed; nothing was done. Review the pending requests again.",
		})
		if b := c.binding(t, mapping.Key{CorpID: "dingcorp1", UserID: "Wu6"}); b.Linked() {
			t.Errorf("Wu6 linked to %q, want not linked", b.AccountID)
		}
	})
}

func TestBulkApproveNewAccounts(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		f := newBulkFixture(t, c)
		ids := []string{"nobody1", "Wu6", "LiSi", "_x"}
		want := func(ok string) map[string]string {
			return map[string]string{
				"nobody1": ok + " nobody1:",
				"Wu6":     ok + " wu6:",
				"LiSi":    "failed lisi: Another account already has this username.",
				"_x":      "skipped _x: This userId cannot be used as a username; handle it on its own.",
			}
		}
		_, _, body := c.post(t, "/admin/pending/bulk", f.form("new", false, ids...))
		wantOutcomes(t, bulkOutcomes(t, body), want("approve"))
		if !strings.Contains(body, ">Approve 2 selected</button>") {
			t.Errorf("confirmation does not offer to approve 2:\n%s", body)
		}
		_, _, body = c.post(t, "/admin/pending/bulk", f.form("new", true, ids...))
		wantOutcomes(t, bulkOutcomes(t, body), want("approved"))

		a, err := c.st.AccountByUsername(t.Context(), "nobody1")
		if err != nil {
			t.Fatalf("account nobody1: %v", err)
		}
		if a.DisplayName != "无名" {
			t.Errorf("nobody1's display name = %q, want the DingTalk name 无名", a.DisplayName)
		}
		if b := c.binding(t, mapping.Key{CorpID: "dingcorp1", UserID: "nobody1"}); b.AccountID != a.ID {
			t.Errorf("nobody1 linked to %q, want %q", b.AccountID, a.ID)
		}
		// The taken username is not renamed: lisi's request stays open, unlinked.
		if r := f.request(t, "LiSi"); r.Status != mapping.RequestOpen {
			t.Errorf("LiSi's request is %q, want open", r.Status)
		}
		if b := c.binding(t, mapping.Key{CorpID: "dingcorp1", UserID: "LiSi"}); b.Linked() {
			t.Errorf("LiSi linked to %q, want not linked", b.AccountID)
		}
		page, err := c.st.SearchAccounts(t.Context(), mapping.Query{Text: "lisi"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Accounts) != 1 {
			t.Errorf("accounts like lisi: %v, want lisi alone (no renamed copy)", page.Accounts)
		}
		var created []string
		for _, e := range f.adminEvents(t) {
			if strings.HasPrefix(e, "account.create ") || strings.HasPrefix(e, "request.approve ") {
				created = append(created, strings.Fields(e)[0])
			}
		}
		if strings.Join(created, " ") != "account.create request.approve account.create request.approve" {
			t.Errorf("administrator's creations and approvals = %q, want two of each", created)
		}
	})
}

func TestBulkApproveRefused(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		f := newBulkFixture(t, c)
		many := f.form("suggested", true)
		for i := range maxBulk {
			many.Add("id", fmt.Sprintf("r%03d", i))
		}
		tooMany := f.form("suggested", true, "Wu6")
		for i := range maxBulk {
			tooMany.Add("id", fmt.Sprintf("r%03d", i))
		}
		tooMany.Set("to_"+f.req["Wu6"].ID, f.accounts["wuliu"].ID)
		for _, tt := range []struct {
			name string
			form url.Values
			want string
		}{
			{"none selected", f.form("suggested", true), "err_bulk_none"},
			{"no mode", f.form("", true, "Wu6"), "err_bulk_mode"},
			{"unknown mode", f.form("everything", true, "Wu6"), "err_bulk_mode"},
			{"over the cap", tooMany, "err_bulk_too_many"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, loc, body := c.post(t, "/admin/pending/bulk", tt.form)
				if status != http.StatusSeeOther || loc != "/admin/pending?err="+tt.want {
					t.Errorf("status %d to %q, want 303 to ?err=%s:\n%s", status, loc, tt.want, body)
				}
			})
		}
		// Exactly the cap is taken (every one of them gone).
		status, _, body := c.post(t, "/admin/pending/bulk", many)
		if status != http.StatusOK || len(bulkOutcomes(t, body)) != maxBulk {
			t.Errorf("%d requests: status %d, %d rows; want 200 and a row each", maxBulk, status, len(bulkOutcomes(t, body)))
		}
		_, body = c.get(t, "/admin/pending?err=err_bulk_too_many")
		if !strings.Contains(body, "At most 100 requests can be approved at a time.") {
			t.Errorf("pending page does not explain the cap:\n%s", body)
		}

		// Without the CSRF token, or from another site: refused, nothing done.
		form := f.form("suggested", true, "Wu6")
		form.Set("to_"+f.req["Wu6"].ID, f.accounts["wuliu"].ID)
		if rec := c.do(t, http.MethodPost, "/admin/pending/bulk", c.ck, form, inEnglish); rec.Code != http.StatusForbidden {
			t.Errorf("without CSRF token: status %d, want 403", rec.Code)
		}
		form.Set("csrf", c.csrf)
		if rec := c.do(t, http.MethodPost, "/admin/pending/bulk", c.ck, form, map[string]string{"Origin": "https://evil.example"}); rec.Code != http.StatusForbidden {
			t.Errorf("cross-origin: status %d, want 403", rec.Code)
		}
		if r := f.request(t, "Wu6"); r.Status != mapping.RequestOpen {
			t.Errorf("after refused posts, Wu6's request is %q, want open", r.Status)
		}
		if got := f.adminEvents(t); len(got) != 0 {
			t.Errorf("after refused posts, audit rows %q, want none", got)
		}
	})
}

func TestPendingPageOffersBulk(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		f := newBulkFixture(t, c)
		_, body := c.get(t, "/admin/pending")
		if !strings.Contains(body, `<form id="bulk" method="post" action="/admin/pending/bulk"`) ||
			!strings.Contains(body, `<input type="hidden" name="csrf" value="`+c.csrf+`">`) {
			t.Errorf("pending page has no bulk form with the CSRF token:\n%s", body)
		}
		for u, r := range f.req {
			if !strings.Contains(body, `<input type="checkbox" name="id" value="`+r.ID+`" form="bulk"`) {
				t.Errorf("no checkbox for %s's request", u)
			}
		}
	})
}
