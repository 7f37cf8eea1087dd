package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// The console is keyboard-usable by construction (links, forms,
// details/summary); these tests hold it to that. After signing in they
// press only keys, the way a person without a mouse would, and check after
// every key that the focused element is the one expected and that a person
// can see it: on screen, with a focus indicator of its own.

// focusJS describes document.activeElement: whether it is the element sel
// names, and whether it is visible with a focus indicator. An outline or
// box-shadow counts as an indicator only when it differs from the same
// element's resting look, which an unfocused shallow clone next to it shows
// (cards, for one, have a box-shadow whether focused or not).
const focusJS = `((sel) => {
  const el = document.activeElement;
  const want = document.querySelector(sel);
  const desc = (e) => !e ? "nothing" : e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.getAttribute("href") ? "[href=" + e.getAttribute("href") + "]" : "") +
    (e.getAttribute("name") ? "[name=" + e.getAttribute("name") + "]" : "") +
    (e.type === "radio" || e.type === "checkbox" ? "[value=" + e.value + (e.checked ? ",checked" : "") + "]" : "") +
    (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") +
    (e.textContent.trim() ? " " + JSON.stringify(e.textContent.trim().slice(0, 30)) : "");
  const s = {is: !!want && el === want, focused: desc(el), want: want ? desc(want) : sel + " (not on the page)", indicator: "", problem: ""};
  if (!el || el === document.body || el === document.documentElement) {
    s.problem = "no element has focus";
    return s;
  }
  const cs = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  if (r.width <= 0 || r.height <= 0 || cs.visibility === "hidden" ||
      r.bottom <= 0 || r.right <= 0 || r.top >= innerHeight || r.left >= innerWidth) {
    s.problem = "focused element is not on screen (" + [r.left, r.top, r.width, r.height].map(Math.round).join(",") + ")";
    return s;
  }
  // Without name and form, a cloned radio joins no group: it would take
  // the group's checkedness from the original.
  const clone = el.cloneNode(false);
  for (const a of ["id", "name", "form"]) clone.removeAttribute(a);
  el.parentNode.insertBefore(clone, el.nextSibling);
  const rest = getComputedStyle(clone);
  const restOutline = rest.outlineStyle + " " + rest.outlineWidth + " " + rest.outlineColor;
  const restShadow = rest.boxShadow;
  clone.remove();
  const outline = cs.outlineStyle + " " + cs.outlineWidth + " " + cs.outlineColor;
  const hasOutline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0 &&
    cs.outlineColor !== "rgba(0, 0, 0, 0)" && outline !== restOutline;
  const hasShadow = cs.boxShadow !== "none" && cs.boxShadow !== restShadow;
  if (hasOutline) s.indicator = "outline " + outline;
  else if (hasShadow) s.indicator = "box-shadow " + cs.boxShadow;
  else s.problem = "no focus indicator (outline " + outline + ", box-shadow " + cs.boxShadow + ")";
  return s;
})`

// focusState is what focusJS reports.
type focusState struct {
	Is        bool   `json:"is"`
	Focused   string `json:"focused"`
	Want      string `json:"want"`
	Indicator string `json:"indicator"`
	Problem   string `json:"problem"`
}

// focus reports on the focused element; sel names the one expected.
func focus(t *testing.T, ctx context.Context, sel string) focusState {
	t.Helper()
	var s focusState
	js := focusJS + "(" + jsString(sel) + ")"
	browse(t, ctx, "read focus", chromedp.Evaluate(js, &s))
	return s
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "$", "\\$").Replace(s) + "`"
}

// press sends one key (with modifiers) to the tab, as a person would.
func press(t *testing.T, ctx context.Context, what, key string, mods ...input.Modifier) {
	t.Helper()
	browse(t, ctx, what, chromedp.KeyEvent(key, chromedp.KeyModifiers(mods...)))
}

// shiftTab is the modifier of Shift+Tab.
var shiftTab = []input.Modifier{input.ModifierShift}

// wantFocus fails the test unless the element sel names has focus and a
// person can see that it has.
func wantFocus(t *testing.T, ctx context.Context, step, sel string) {
	t.Helper()
	s := focus(t, ctx, sel)
	if !s.Is {
		screenshot(t, ctx, "failed-focus-"+step)
		t.Fatalf("%s: focus on %s, want %s", step, s.Focused, s.Want)
	}
	if s.Problem != "" {
		screenshot(t, ctx, "failed-indicator-"+step)
		t.Errorf("%s: %s: %s", step, s.Focused, s.Problem)
		return
	}
	t.Logf("%s: %s shows %s", step, s.Focused, s.Indicator)
}

// tabTo presses Tab (Shift+Tab with back) until the element sel names has
// focus, at most limit times. Every element focused on the way must be on
// screen and show that it has focus.
func tabTo(t *testing.T, ctx context.Context, step, sel string, back bool, limit int) {
	t.Helper()
	var mods []input.Modifier
	if back {
		mods = shiftTab
	}
	var path []string
	for i := range limit {
		press(t, ctx, step, kb.Tab, mods...)
		s := focus(t, ctx, sel)
		path = append(path, s.Focused)
		if s.Problem != "" {
			screenshot(t, ctx, "failed-indicator-"+step)
			t.Errorf("%s: Tab stop %d, %s: %s", step, i+1, s.Focused, s.Problem)
		}
		if s.Is {
			t.Logf("%s: %d key presses: %s", step, i+1, strings.Join(path, " → "))
			return
		}
	}
	screenshot(t, ctx, "failed-tab-"+step)
	t.Fatalf("%s: %s not reached in %d presses: %s", step, sel, limit, strings.Join(path, " → "))
}

// TestBrowserKeyboardConsole: 张三 signs in (with the mouse: sign-in is
// DingTalk's page, not the console), then uses only the keyboard: the skip
// link, the accounts search and an account, and the pending page, where he
// approves 陈静 with a new account (details/summary, typing) and 陈晨 through
// the bulk review and its confirmation (checkbox, radio group).
func TestBrowserKeyboardConsole(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	bg := t.Context()

	// 陈静 (corp 1) and 陈晨 (corp 2) try to sign in and are left waiting.
	w.leaveWaiting(t)

	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")

	// The first Tab on a page shows the skip link; Enter moves focus to
	// the main content, and the next Tab to its first link.
	press(t, ctx, "first Tab", kb.Tab)
	wantFocus(t, ctx, "first Tab", "a.skip")
	var skip string
	browse(t, ctx, "skip link text", chromedp.Text("a.skip", &skip, chromedp.ByQuery))
	if skip != "跳到正文" {
		t.Errorf("skip link says %q, want 跳到正文", skip)
	}
	screenshot(t, ctx, "overview-skip-link")
	press(t, ctx, "follow the skip link", kb.Enter)
	wantFocus(t, ctx, "after the skip link", "main#main")
	screenshot(t, ctx, "overview-main-focused")
	press(t, ctx, "Tab into the content", kb.Tab)
	wantFocus(t, ctx, "Tab into the content", "#count-accounts")
	screenshot(t, ctx, "overview-first-card")

	// Back up to the navigation and open the accounts.
	navAccounts := `header nav a[href$="/admin/accounts"]`
	tabTo(t, ctx, "back to the navigation", navAccounts, true, 12)
	screenshot(t, ctx, "overview-nav-accounts")
	press(t, ctx, "open accounts", kb.Enter)
	browse(t, ctx, "accounts page", chromedp.WaitVisible("#q", chromedp.ByQuery))
	if u := location(t, ctx); u.Path != "/admin/accounts" {
		t.Fatalf("Enter on the accounts link went to %s, want /admin/accounts", u)
	}

	// Search by typing into the box and pressing Enter.
	tabTo(t, ctx, "to the search box", "#q", false, 15)
	press(t, ctx, "type a search", "wangwu")
	screenshot(t, ctx, "accounts-search-typed")
	press(t, ctx, "submit the search", kb.Enter)
	browse(t, ctx, "search results", chromedp.WaitVisible(`#q[value="wangwu"]`, chromedp.ByQuery))
	var rows int
	browse(t, ctx, "count rows", chromedp.Evaluate(`document.querySelectorAll("#accounts tbody tr").length`, &rows))
	if rows != 1 {
		t.Errorf("search for wangwu shows %d rows, want 1", rows)
	}
	result := `#accounts tr[data-username="wangwu"] a`
	tabTo(t, ctx, "to the result", result, false, 30)
	screenshot(t, ctx, "accounts-result-focused")
	press(t, ctx, "open the account", kb.Enter)
	browse(t, ctx, "account page", chromedp.WaitVisible(`#identities tr[data-user-id="wangwu"]`, chromedp.ByQuery))

	// The pending page, from the account's navigation.
	tabTo(t, ctx, "to pending", `header nav a[href$="/admin/pending"]`, false, 12)
	press(t, ctx, "open pending", kb.Enter)
	browse(t, ctx, "pending page", chromedp.WaitVisible("#bulk-review", chromedp.ByQuery))

	// 陈静: open "approve with a new account" (Enter on its summary), type
	// the username over the one filled in (Tab into a field selects it) and
	// submit with Enter.
	chen := `section.request[data-user-id="manager4927"]`
	summary := chen + ` details:not(.confirm) summary`
	tabTo(t, ctx, "to 陈静's approve-new", summary, false, 40)
	press(t, ctx, "open approve-new", kb.Enter)
	var open bool
	browse(t, ctx, "details open", chromedp.Evaluate(`document.querySelector(`+jsString(chen+` details:not(.confirm)`)+`).open`, &open))
	if !open {
		t.Fatal("Enter on the summary left approve-new closed")
	}
	username := chen + ` details:not(.confirm) input[name="username"]`
	press(t, ctx, "to the username", kb.Tab)
	wantFocus(t, ctx, "to the username", username)
	press(t, ctx, "type the username", "chenjing")
	var typed string
	browse(t, ctx, "read the username", chromedp.Value(username, &typed, chromedp.ByQuery))
	if typed != "chenjing" {
		t.Fatalf("username field holds %q after typing, want chenjing", typed)
	}
	screenshot(t, ctx, "pending-approve-new-typed")
	press(t, ctx, "approve 陈静", kb.Enter)
	browse(t, ctx, "approved", chromedp.WaitVisible("p.flash", chromedp.ByQuery),
		chromedp.WaitNotPresent(chen, chromedp.ByQuery))
	var flash string
	browse(t, ctx, "flash", chromedp.Text("p.flash", &flash, chromedp.ByQuery))
	if !strings.Contains(flash, "已批准") {
		t.Errorf("after approval the page says %q, want 已批准…", flash)
	}
	screenshot(t, ctx, "pending-approved-chenjing")
	if b, err := w.accounts.Binding(bg, mapping.Key{CorpID: fake.DemoCorpID, UserID: "manager4927"}); err != nil || !b.Linked() {
		t.Errorf("陈静 after approval: linked %v (%v), want linked", b.Linked(), err)
	} else if a, err := w.accounts.AccountByID(bg, b.AccountID); err != nil || a.Username != "chenjing" {
		t.Errorf("陈静 linked to %q (%v), want the new account chenjing", a.Username, err)
	}

	// 陈晨: tick her with Space, go back to the mode (the radio group is one
	// Tab stop; the arrow picks "new"), review and confirm with Enter.
	pick := `section.request[data-user-id="chenchen"] input.pick`
	tabTo(t, ctx, "to 陈晨's checkbox", pick, false, 20)
	press(t, ctx, "tick 陈晨", " ")
	var ticked bool
	browse(t, ctx, "ticked", chromedp.Evaluate(`document.querySelector(`+jsString(pick)+`).checked`, &ticked))
	if !ticked {
		t.Fatal("Space left 陈晨 unticked")
	}
	screenshot(t, ctx, "pending-chenchen-ticked")
	// The radio group is one Tab stop, its checked radio; the arrow key
	// moves to (and checks) the next.
	tabTo(t, ctx, "back to the mode", `#bulk input[name="mode"][value="suggested"]`, true, 5)
	press(t, ctx, "choose new accounts", kb.ArrowDown)
	wantFocus(t, ctx, "choose new accounts", `#bulk input[name="mode"][value="new"]`)
	var mode string
	browse(t, ctx, "mode", chromedp.Evaluate(`document.querySelector('#bulk input[name="mode"]:checked').value`, &mode))
	if mode != "new" {
		t.Fatalf("mode %q after the arrow key, want new", mode)
	}
	press(t, ctx, "to review", kb.Tab)
	wantFocus(t, ctx, "to review", "#bulk-review")
	screenshot(t, ctx, "pending-review-focused")
	press(t, ctx, "review", kb.Enter)
	browse(t, ctx, "confirmation", chromedp.WaitVisible("#bulk-approve", chromedp.ByQuery))
	wantRows(t, "confirmation", bulkRows(t, ctx), map[string]string{"chenchen": "approve chenchen"})
	if b, err := w.accounts.Binding(bg, mapping.Key{CorpID: fake.DemoCorp2ID, UserID: "chenchen"}); err != nil || b.Linked() {
		t.Fatalf("陈晨 before the confirmation: linked %v (%v), want waiting", b.Linked(), err)
	}
	tabTo(t, ctx, "to the confirmation", "#bulk-approve", false, 15)
	screenshot(t, ctx, "pending-confirm-focused")
	press(t, ctx, "confirm", kb.Enter)
	browse(t, ctx, "result", chromedp.WaitVisible("p.flash#bulk-summary", chromedp.ByQuery))
	wantRows(t, "result", bulkRows(t, ctx), map[string]string{"chenchen": "approved chenchen"})
	screenshot(t, ctx, "pending-bulk-result")
	if b, err := w.accounts.Binding(bg, mapping.Key{CorpID: fake.DemoCorp2ID, UserID: "chenchen"}); err != nil || !b.Linked() {
		t.Errorf("陈晨 after the confirmation: linked %v (%v), want linked", b.Linked(), err)
	}
}
