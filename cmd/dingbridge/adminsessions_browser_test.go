package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdminSignInRateLimited: once this address has started too many
// console sign-ins, the browser gets the 429 page, which says when to try
// again, in Chinese and English, on a phone too.
func TestBrowserAdminSignInRateLimited(t *testing.T) {
	w := startSigninDemo(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range 60 { // maxSignInStarts in package web
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.bridgeURL+"/admin/login", nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in start %d: %d, want 302", i+1, resp.StatusCode)
		}
	}

	ctx := newBrowser(t)
	setPhone(t, ctx)
	for _, tt := range []struct{ lang, accept, title, body string }{
		{"zh", "zh-CN,zh;q=0.9", "尝试次数过多", "请在 10 分钟后重试。"},
		{"en", "en-US,en;q=0.9", "Too many attempts", "Please try again in 10 min."},
	} {
		setLanguage(t, ctx, tt.accept)
		var title, body string
		browse(t, ctx, "open the console sign-in", chromedp.Navigate(w.bridgeURL+"/admin/login"),
			chromedp.WaitVisible("section.card h1", chromedp.ByQuery),
			chromedp.Text("section.card h1", &title, chromedp.ByQuery),
			chromedp.Text("section.card p", &body, chromedp.ByQuery))
		screenshot(t, ctx, tt.lang+"-admin-rate-limited")
		if title != tt.title || !strings.Contains(body, tt.body) {
			t.Errorf("%s page: %q / %q, want %q and %q", tt.lang, title, body, tt.title, tt.body)
		}
	}
}
