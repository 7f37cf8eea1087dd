package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/mapping"
)

var accountRowRE = regexp.MustCompile(`<tr data-username="([^"]*)">`)

func listedUsernames(body string) string {
	var got []string
	for _, m := range accountRowRE.FindAllStringSubmatch(body, -1) {
		got = append(got, m[1])
	}
	return strings.Join(got, " ")
}

func TestAccountsFilter(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		ctx, m := t.Context(), mapping.Meta{Actor: "test"}
		// zhangsan (admins, staff) and lisi (staff) exist; wangwu is disabled staff, ops is in ops.
		ww, err := c.st.CreateAccount(ctx, m, mapping.Account{Username: "wangwu", Groups: []string{"staff"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.st.SetAccountDisabled(ctx, m, ww.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.st.CreateAccount(ctx, m, mapping.Account{Username: "ops", Groups: []string{"ops"}}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			query, want string
		}{
			{"", "lisi ops wangwu zhangsan"},
			{"?status=disabled", "wangwu"},
			{"?status=enabled", "lisi ops zhangsan"},
			{"?group=staff", "lisi wangwu zhangsan"},
			{"?group=staff&status=enabled", "lisi zhangsan"},
			{"?group=staff&status=enabled&q=li", "lisi"},
			{"?status=&group=", "lisi ops wangwu zhangsan"},
		} {
			status, body := c.get(t, "/admin/accounts"+tt.query)
			if status != http.StatusOK || listedUsernames(body) != tt.want {
				t.Errorf("accounts%s: status %d, listed %q; want 200 and %q", tt.query, status, listedUsernames(body), tt.want)
			}
		}

		// The filters stay with a search, and the search with the filters.
		_, body := c.get(t, "/admin/accounts?q=li&status=disabled&group=staff")
		for _, want := range []string{
			`<input type="hidden" name="status" value="disabled">`, `<input type="hidden" name="group" value="staff">`,
			`<input type="hidden" name="q" value="li">`, `<option value="disabled" selected>`,
			`<input name="group" id="filter-group" maxlength="256" value="staff"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("filtered page lacks %s", want)
			}
		}

		for _, tt := range []struct{ query, want string }{
			{"?status=maybe", "The status filter must be all, enabled or disabled."},
			{"?status=Disabled", "The status filter must be all, enabled or disabled."},
			{"?group=" + strings.Repeat("g", 300), "The group name is too long or contains characters that are not allowed."},
			{"?group=a%0Ab", "The group name is too long or contains characters that are not allowed."},
		} {
			status, body := c.get(t, "/admin/accounts"+tt.query)
			if status != http.StatusBadRequest || !strings.Contains(body, `<p class="error" role="alert" id="error">`+tt.want) {
				t.Errorf("accounts%s: status %d, want 400 saying %q:\n%s", tt.query[:min(len(tt.query), 30)], status, tt.want, body)
			}
			// The invalid value is dropped, so the next search does not repeat it.
			if !strings.Contains(body, `<input type="hidden" name="status" value="">`) || !strings.Contains(body, `<input type="hidden" name="group" value="">`) {
				t.Errorf("accounts%s keeps the invalid filter in the search form", tt.query[:min(len(tt.query), 30)])
			}
			if listedUsernames(body) != "" {
				t.Errorf("accounts%s lists %q, want nothing", tt.query[:min(len(tt.query), 30)], listedUsernames(body))
			}
		}
	})
}

func TestAccountsFilterKeptAcrossPages(t *testing.T) {
	c := newAccountsConsole(t, testStores[0].new, nil)
	ctx, m := t.Context(), mapping.Meta{Actor: "test"}
	for i := range mapping.DefaultPageSize + 1 {
		a, err := c.st.CreateAccount(ctx, m, mapping.Account{Username: fmt.Sprintf("d%02d", i), Groups: []string{"ops"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.st.SetAccountDisabled(ctx, m, a.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	_, body := c.get(t, "/admin/accounts?status=disabled&group=ops")
	next := regexp.MustCompile(`<a id="next" href="([^"]*)">`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("no next page link:\n%s", body)
	}
	href := strings.ReplaceAll(next[1], "&amp;", "&")
	if !strings.Contains(href, "status=disabled") || !strings.Contains(href, "group=ops") {
		t.Fatalf("next page link %q does not keep the filters", href)
	}
	_, body = c.get(t, href)
	if got := listedUsernames(body); got != "d50" {
		t.Errorf("second page lists %q, want d50", got)
	}
}
