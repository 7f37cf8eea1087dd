package idp

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

//go:embed templates/page.tmpl templates/dingbridge.css
var templateFS embed.FS

// pages renders the few pages a person sees at the provider itself: errors,
// the logout confirmation and "you are signed out". Each speaks Simplified
// Chinese or English, chosen by Accept-Language.
type pages struct {
	page *template.Template
	css  http.HandlerFunc
}

func newPages() (*pages, error) {
	t, err := template.ParseFS(templateFS, "templates/page.tmpl")
	if err != nil {
		return nil, err
	}
	css, err := templateFS.ReadFile("templates/dingbridge.css")
	if err != nil {
		return nil, err
	}
	return &pages{
		page: t,
		css: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=3600")
			_, _ = w.Write(css)
		},
	}, nil
}

// message is one page's text in both languages.
type message struct {
	zh, en text
}

type text struct{ Title, Body, Action string }

// The messages a person can meet. Each says what happened and what to do.
var (
	msgNotFound = message{
		text{"页面不存在", "这个地址没有内容。", "请从应用重新进入。"},
		text{"Page not found", "There is nothing at this address.", "Go back to the application and start again."},
	}
	msgBadRequest = message{
		text{"请求无法处理", "登录请求的格式不正确。", "请返回应用重新登录；如果一再出现，请联系应用的管理员。"},
		text{"The request could not be read", "The sign-in request is malformed.", "Go back to the application and sign in again; if this keeps happening, tell the application's administrator."},
	}
	msgRepeatedParam = message{
		text{"登录请求有误", "请求中的 client_id 或 redirect_uri 出现了不止一次，无法确定应返回哪里。", "请联系应用的管理员检查其登录配置。"},
		text{"The sign-in request is invalid", "client_id or redirect_uri appears more than once, so it is unclear where to send you back.", "Tell the application's administrator to check its sign-in configuration."},
	}
	msgUnknownClient = message{
		text{"应用未登记", "发起登录的应用（client_id）没有在 dingbridge 中登记。", "请联系应用的管理员，在 dingbridge 的配置中登记该应用。"},
		text{"Unknown application", "The application that sent you here (its client_id) is not registered with dingbridge.", "Ask the application's administrator to register it in dingbridge's configuration."},
	}
	msgNoRedirectURI = message{
		text{"缺少返回地址", "登录请求没有说明完成后返回到哪里（redirect_uri）。", "请联系应用的管理员检查其登录配置。"},
		text{"No return address", "The sign-in request does not say where to return afterwards (redirect_uri).", "Tell the application's administrator to check its sign-in configuration."},
	}
	msgBadRedirectURI = message{
		text{"返回地址未登记", "应用要求登录后返回到一个未登记的地址。为了您的安全，我们没有跳转过去。", "请联系应用的管理员核对 dingbridge 中登记的 redirect_uri。"},
		text{"Return address not registered", "The application asked to send you back to an address it has not registered. For your safety you were not sent there.", "Tell the application's administrator to check the redirect_uri registered in dingbridge."},
	}
	msgStartAgain = message{
		text{"登录链接已失效", "这个登录请求已过期或已经使用过。", "请返回应用重新登录。"},
		text{"This sign-in link has expired", "This sign-in request has expired or was already used.", "Go back to the application and sign in again."},
	}
	msgOtherBrowser = message{
		text{"请在同一个浏览器中完成登录", "这个登录请求是在另一个浏览器中发起的，或浏览器的 Cookie 已被清除。", "请在当前浏览器中返回应用重新登录。"},
		text{"Finish signing in in the same browser", "This sign-in was started in another browser, or this browser's cookies were cleared.", "Go back to the application in this browser and sign in again."},
	}
	msgAccountDisabled = message{
		text{"账号无法登录", "您的企业账号已停用或不存在。", "如有疑问，请联系您的管理员。"},
		text{"Your account cannot sign in", "Your enterprise account is disabled or does not exist.", "If you think this is a mistake, contact your administrator."},
	}
	msgCorpNotAllowed = message{
		text{"无权登录此应用", "您所在的钉钉组织不在这个应用允许登录的范围内。", "如果您属于多个组织，请返回应用，用允许的组织重新登录；如有疑问，请联系应用的管理员。"},
		text{"You may not sign in to this application", "Your DingTalk organisation is not one this application admits.", "If you belong to several organisations, go back and sign in with an admitted one; otherwise ask the application's administrator."},
	}
	msgUnavailable = message{
		text{"服务暂时不可用", "dingbridge 暂时无法完成您的请求，您的数据没有丢失。", "请稍后重试；如果一再出现，请把下面的请求编号告诉管理员。"},
		text{"Temporarily unavailable", "dingbridge could not complete your request just now; nothing was lost.", "Try again in a moment; if it keeps happening, give your administrator the request id below."},
	}
	msgSignInUnavailable = message{
		text{"暂时无法登录", "这台 dingbridge 服务器还没有配置钉钉登录，所以目前没有人能登录。", "请联系您的管理员。"},
		text{"Sign-in is not available", "This dingbridge server has no DingTalk sign-in configured yet, so nobody can sign in.", "Tell your administrator."},
	}
	msgLogoutConfirm = message{
		text{"退出登录？", "您将退出 dingbridge 的单点登录，之后打开各应用时需要重新登录。", ""},
		text{"Sign out?", "You will be signed out of dingbridge single sign-on; applications will ask you to sign in again.", ""},
	}
	msgLoggedOut = message{
		text{"您已退出登录", "您已退出 dingbridge 的单点登录。", "您可以关闭这个页面。"},
		text{"You are signed out", "You have been signed out of dingbridge single sign-on.", "You can close this page."},
	}
)

// Labels that are not part of a message.
var labels = map[string][2]string{ // zh, en
	"request_id": {"请求编号", "Request id"},
	"sign_out":   {"退出登录", "Sign out"},
}

var langMatcher = language.NewMatcher([]language.Tag{language.SimplifiedChinese, language.English})

// english reports whether the browser prefers English to Chinese; Chinese
// is the default for the enterprises dingbridge serves.
func english(r *http.Request) bool {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return false
	}
	_, i, _ := langMatcher.Match(tags...)
	return i == 1
}

// pageForm is a one-button form on a page.
type pageForm struct {
	Action string
	Button string
	Hidden []hiddenField
}

type hiddenField struct{ Name, Value string }

type pageData struct {
	Lang, Issuer, Title, Body, Action string
	Error                             bool
	RequestID, RequestIDLabel         string
	Form                              *pageForm
}

// render writes a page. Rendering goes to a buffer first, so a template
// error never leaves half a page.
func (pg *pages) render(w http.ResponseWriter, r *http.Request, status int, m message, isError bool, form *pageForm) {
	t, lang, idx := m.zh, "zh-CN", 0
	if english(r) {
		t, lang, idx = m.en, "en", 1
	}
	if form != nil {
		form.Button = labels["sign_out"][idx]
	}
	data := pageData{
		Lang: lang, Issuer: op.IssuerFromContext(r.Context()),
		Title: t.Title, Body: t.Body, Action: t.Action, Error: isError,
		RequestID: w.Header().Get("X-Request-Id"), RequestIDLabel: labels["request_id"][idx],
		Form: form,
	}
	var buf bytes.Buffer
	if err := pg.page.Execute(&buf, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (pg *pages) error(w http.ResponseWriter, r *http.Request, status int, m message) {
	pg.render(w, r, status, m, true, nil)
}
