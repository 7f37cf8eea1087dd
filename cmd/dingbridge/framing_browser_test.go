package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// frameProbe records, per frame, the documents the browser received and
// the other resources the frame asked for. A document the browser refuses
// to show in a frame (X-Frame-Options, frame-ancestors) arrives but is
// never parsed, so it asks for nothing; a rendered one asks for its
// stylesheet.
type frameProbe struct {
	mu   sync.Mutex
	docs map[cdp.FrameID][]*network.Response
	subs map[cdp.FrameID][]string
}

func listenFrames(ctx context.Context) *frameProbe {
	p := &frameProbe{docs: map[cdp.FrameID][]*network.Response{}, subs: map[cdp.FrameID][]string{}}
	chromedp.ListenTarget(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeDocument {
				p.docs[e.FrameID] = append(p.docs[e.FrameID], e.Response)
			}
		case *network.EventRequestWillBeSent:
			// data: URLs are the browser's own error page's images.
			if e.Type != network.ResourceTypeDocument && !strings.HasPrefix(e.Request.URL, "data:") {
				p.subs[e.FrameID] = append(p.subs[e.FrameID], e.Request.URL)
			}
		}
	})
	return p
}

// header returns a response header, whatever its case.
func header(r *network.Response, name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// framed is one iframe of the attacker's page.
type framed struct {
	name, src string
	frameable bool   // the control: it must render
	wantDoc   string // if set, the URL of the document that must have been served into the frame
}

// frameAttack opens a page of another origin that embeds embeds, waits
// until every frame has loaded (or failed to), and checks what rendered.
func frameAttack(t *testing.T, ctx context.Context, w *signinWorld, shot string, embeds []framed) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>attacker</title>` +
		`<h1 id="attacker">另一个网站嵌入了 dingbridge · Another site frames dingbridge</h1>`)
	for i, e := range embeds {
		fmt.Fprintf(&b, `<p>%s</p><iframe name="f%d" src="%s" width="640" height="160"></iframe>`, html.EscapeString(e.name), i, html.EscapeString(e.src))
	}
	// load fires for blocked frames too: the page says when all are done.
	b.WriteString(`<script>let n = 0; for (const f of document.querySelectorAll("iframe")) ` +
		`f.addEventListener("load", () => { document.body.dataset.loaded = ++n; });</script>`)
	// Another origin (another port on loopback): the same site, so Chromium
	// keeps the frames in this tab's renderer, where the probe sees them.
	attacker := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(rw, b.String())
	}))
	defer attacker.Close()

	probe := listenFrames(ctx)
	browse(t, ctx, "open the attacker's page", network.Enable(), chromedp.Navigate(attacker.URL+"/"),
		chromedp.WaitVisible("#attacker", chromedp.ByID),
		chromedp.WaitVisible(fmt.Sprintf(`body[data-loaded="%d"]`, len(embeds)), chromedp.ByQuery))
	screenshot(t, ctx, shot)

	var tree *page.FrameTree
	browse(t, ctx, "read the frame tree", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		tree, err = page.GetFrameTree().Do(ctx)
		return err
	}))
	if got := tree.Frame.URL; got != attacker.URL+"/" {
		t.Fatalf("top frame shows %s, want the attacker's page %s/", got, attacker.URL)
	}
	frames := map[string]*cdp.Frame{}
	for _, c := range tree.ChildFrames {
		frames[c.Frame.Name] = c.Frame
	}
	probe.mu.Lock()
	defer probe.mu.Unlock()
	for i, e := range embeds {
		f := frames[fmt.Sprintf("f%d", i)]
		if f == nil {
			t.Errorf("%s: no frame in the tree", e.name)
			continue
		}
		docs, subs := probe.docs[f.ID], probe.subs[f.ID]
		if e.frameable {
			if f.URL != e.src || len(subs) == 0 {
				t.Errorf("control %s: frame shows %q and asked for %q; want it rendered with its stylesheet (the probe is blind otherwise)", e.name, f.URL, subs)
			}
			continue
		}
		if strings.HasPrefix(f.URL, w.bridgeURL) || !strings.HasPrefix(f.UnreachableURL, w.bridgeURL) {
			t.Errorf("%s: frame shows %q (unreachable %q), want dingbridge's document blocked", e.name, f.URL, f.UnreachableURL)
		}
		if len(subs) > 0 {
			t.Errorf("%s: the framed document asked for %q: it was parsed", e.name, subs)
		}
		if len(docs) == 0 {
			t.Errorf("%s: no document arrived in the frame: the test saw no attempt", e.name)
			continue
		}
		last := docs[len(docs)-1]
		if !strings.HasPrefix(last.URL, w.bridgeURL) || header(last, "X-Frame-Options") != "DENY" ||
			!strings.Contains(header(last, "Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: last document %s (%d) with X-Frame-Options %q, CSP %q; want dingbridge's, DENY and frame-ancestors 'none'",
				e.name, last.URL, last.Status, header(last, "X-Frame-Options"), header(last, "Content-Security-Policy"))
		}
		if e.wantDoc != "" && (last.URL != e.wantDoc || last.Status != http.StatusOK) {
			t.Errorf("%s: the frame got %s (%d), want %s (200)", e.name, last.URL, last.Status, e.wantDoc)
		}
	}
}

// TestBrowserFramingBlocked (BAD-73, ADM-05, RFC-14): a page of another
// origin frames the console and dingbridge's sign-in page. Chromium fetches
// each framed document but renders none, signed out and signed in; a
// frameable page of a third origin in the same attacker page renders, so
// the probe would see a framed console if there were one.
func TestBrowserFramingBlocked(t *testing.T) {
	w := startSigninDemo(t)
	control := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/control.css" {
			rw.Header().Set("Content-Type", "text/css")
			io.WriteString(rw, "h1 { color: green; }")
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(rw, `<!doctype html><meta charset="utf-8"><link rel="stylesheet" href="/control.css"><h1>可以嵌入 Frameable</h1>`)
	}))
	t.Cleanup(control.Close)
	controlEmbed := framed{name: "对照：可嵌入的页面 Control: a frameable page", src: control.URL + "/", frameable: true}

	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	authorize := w.bridgeURL + "/authorize?" + url.Values{
		"client_id": {"wiki"}, "redirect_uri": {w.wikiURL + "/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"framing-test"}, "nonce": {"framing-test"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()

	ctx := newBrowser(t)
	// Signed out: the console sends the frame on to dingbridge's sign-in
	// page, which is framed, like the sign-in of an application.
	signedOut := []framed{
		{name: "管理后台 /admin/ Console", src: w.bridgeURL + "/admin/"},
		{name: "管理后台登录 /admin/login Console sign-in", src: w.bridgeURL + "/admin/login"},
		{name: "dingbridge 登录页 Sign-in page", src: authorize},
		controlEmbed,
	}
	frameAttack(t, ctx, w, "zh-framing-signed-out", signedOut)

	// Signed in (the attacker's page is same-site, so the SameSite=Strict
	// cookie goes along): the console's own pages are served into the
	// frames, and still not shown.
	w.adminBrowserSignIn(t, ctx, "zhangsan")
	signedIn := []framed{
		{name: "管理后台概览 Console overview", src: w.bridgeURL + "/admin/", wantDoc: w.bridgeURL + "/admin/"},
		{name: "账号 Accounts", src: w.bridgeURL + "/admin/accounts", wantDoc: w.bridgeURL + "/admin/accounts"},
		controlEmbed,
	}
	frameAttack(t, ctx, w, "zh-framing-signed-in", signedIn)
	setLanguage(t, ctx, "en")
	frameAttack(t, ctx, w, "en-framing-signed-in", signedIn)
}
