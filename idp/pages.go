package idp

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

//go:embed templates/page.tmpl templates/dingbridge.css templates/login.js templates/workbench.js
var templateFS embed.FS

// pages renders the few pages a person sees at the provider itself: errors,
// the logout confirmation and "you are signed out". Each speaks Simplified
// Chinese or English, chosen by Accept-Language.
type pages struct {
	page      *template.Template
	css       http.HandlerFunc
	loginJS   http.HandlerFunc // the QR page's script
	workbench http.HandlerFunc // the workbench page's script
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
	loginJS, err := templateFS.ReadFile("templates/login.js")
	if err != nil {
		return nil, err
	}
	workbenchJS, err := templateFS.ReadFile("templates/workbench.js")
	if err != nil {
		return nil, err
	}
	return &pages{
		page:      t,
		css:       static("text/css; charset=utf-8", css),
		loginJS:   static("text/javascript; charset=utf-8", loginJS),
		workbench: static("text/javascript; charset=utf-8", workbenchJS),
	}, nil
}

// static serves an embedded file.
func static(contentType string, b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(b)
	}
}

// message is one page's text in both languages.
type message struct {
	zh, en text
}

type text struct{ Title, Body, Action string }

// with returns m with every {name} in its texts replaced by the value that
// follows name in kv (the same value in both languages).
func (m message) with(kv ...string) message {
	rep := strings.NewReplacer(kv...)
	for _, t := range []*text{&m.zh, &m.en} {
		t.Title, t.Body, t.Action = rep.Replace(t.Title), rep.Replace(t.Body), rep.Replace(t.Action)
	}
	return m
}

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
	msgQRLogin = message{
		text{"钉钉登录", "请用钉钉扫描二维码登录。", "扫码后请在手机上确认。"},
		text{"Sign in with DingTalk", "Scan the QR code with DingTalk to sign in.", "Then confirm on your phone."},
	}
	msgPhoneLogin = message{
		text{"钉钉登录", "请使用钉钉账号登录。", "在钉钉中打开本页，可以一键登录。"},
		text{"Sign in with DingTalk", "Sign in with your DingTalk account.", "Open this page in the DingTalk app to sign in with one tap."},
	}
	msgCorpPicker = message{
		text{"选择组织", "请选择您要登录的钉钉组织。", ""},
		text{"Choose your organisation", "Choose the DingTalk organisation you are signing in with.", ""},
	}
	msgNotLinked = message{
		text{"账号尚未开通", "您的钉钉账号还没有关联企业账号。您的申请已发送给管理员。", "管理员处理后，请重新登录。"},
		text{"Not linked yet", "Your DingTalk account is not linked to an enterprise account yet. Your request was sent to the administrators.", "Sign in again once an administrator has approved it."},
	}
	msgNotMember = message{
		text{"不是该组织的成员", "您不是「{corp}」的成员，或已离开该组织。", "请用该组织的钉钉账号登录；如有疑问，请联系管理员。"},
		text{"Not a member of {corp}", "You are not a member of {corp}, or you have left it.", "Sign in with a DingTalk account of this organisation; if you think this is a mistake, contact your administrator."},
	}
	msgCancelled = message{
		text{"您已取消登录", "您在钉钉中取消了授权，没有登录任何应用。", "如需登录，请重试。"},
		text{"You cancelled", "You declined the sign-in in DingTalk; you are not signed in.", "Try again if you want to sign in."},
	}
	msgDingTalkBusy = message{
		text{"钉钉暂时繁忙", "钉钉暂时没有响应，登录未能完成，没有向应用发出任何凭证。", "请稍后重试。"},
		text{"DingTalk is busy", "DingTalk did not answer in time, so the sign-in did not complete; nothing was issued to the application.", "Try again in a moment."},
	}
	msgLacksPermission = message{
		text{"钉钉应用缺少权限", "dingbridge 使用的钉钉应用缺少所需的权限，因此无法完成登录。{detail}", "请把本页内容告诉管理员：需要在钉钉开发者后台为该应用开通相应权限。"},
		text{"The DingTalk app lacks a permission", "The DingTalk app dingbridge uses lacks a permission it needs, so the sign-in could not complete. {detail}", "Tell your administrator: the permission must be granted to the app in the DingTalk developer console."},
	}
	msgSignedIn = message{
		text{"您已登录", "您已通过钉钉登录 dingbridge。", "现在可以返回工作台打开应用。"},
		text{"You are signed in", "You are signed in to dingbridge with DingTalk.", "You can now go back to the workbench and open the application."},
	}
	msgWorkbench = message{
		text{"正在登录…", "正在通过钉钉登录，请稍候。", "如果页面没有变化，请在钉钉中重新打开应用。"},
		text{"Signing in…", "Signing you in with DingTalk, please wait.", "If nothing happens, open the application again from DingTalk."},
	}
	msgWorkbenchForbidden = message{
		text{"请求无效", "这个登录请求没有来自本页面，已被拒绝。", "请在钉钉中重新打开应用。"},
		text{"Request refused", "This sign-in request did not come from the sign-in page, so it was refused.", "Open the application again from DingTalk."},
	}
	msgWorkbenchUnknown = message{
		text{"无法登录此应用", "该应用或组织没有在 dingbridge 中配置为可以从工作台登录。", "请联系应用的管理员。"},
		text{"This application cannot be opened here", "The application or organisation is not configured in dingbridge for workbench sign-in.", "Tell the application's administrator."},
	}
	msgMethodNotAllowed = message{
		text{"请求方式不正确", "这个地址只接受表单提交。", "请在钉钉中重新打开应用。"},
		text{"Method not allowed", "This address only accepts a form submission.", "Open the application again from DingTalk."},
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
	"request_id":   {"请求编号", "Request id"},
	"sign_out":     {"退出登录", "Sign out"},
	"sign_in_link": {"使用钉钉登录", "Sign in with DingTalk"},
	"cannot_scan":  {"无法扫码？使用钉钉账号登录", "Cannot scan? Sign in with DingTalk"},
	"sns_link":     {"旧版扫码登录", "Legacy scan login"},
	"open_in_app":  {"提示：在钉钉中打开本页可以一键登录。", "Tip: open this page in the DingTalk app to sign in with one tap."},
	"try_again":    {"重试", "Try again"},
	"continue":     {"继续", "Continue"},
}

// pageLink is a link shown as a button; Label is a key of labels, or
// Text is shown as is.
type pageLink struct {
	Href, Label, Text string
	Secondary         bool
}

// qrBlock configures the embedded DingTalk QR frame (templates/login.js).
type qrBlock struct {
	LoginOrigin, RedirectURI, ClientID, State, CorpID string
}

// workbenchBlock configures the workbench page's form (templates/workbench.js).
type workbenchBlock struct {
	Action, CorpID, ClientID, CSRF string
}

// pageExtra is what some pages add to a message.
type pageExtra struct {
	Links     []pageLink
	Hint      string // a labels key
	QR        *qrBlock
	Workbench *workbenchBlock
	Scripts   []string
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
	Links                             []pageLink
	Hint                              string
	QR                                *qrBlock
	Workbench                         *workbenchBlock
	Scripts                           []string
}

// render writes a page. Rendering goes to a buffer first, so a template
// error never leaves half a page.
func (pg *pages) render(w http.ResponseWriter, r *http.Request, status int, m message, isError bool, form *pageForm) {
	pg.renderExtra(w, r, status, m, isError, form, pageExtra{})
}

// renderExtra writes a page with links, a QR frame or the workbench form.
func (pg *pages) renderExtra(w http.ResponseWriter, r *http.Request, status int, m message, isError bool, form *pageForm, x pageExtra) {
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
		Form: form, QR: x.QR, Workbench: x.Workbench, Scripts: x.Scripts,
	}
	if x.Hint != "" {
		data.Hint = labels[x.Hint][idx]
	}
	for _, l := range x.Links {
		if l.Text == "" {
			l.Text = labels[l.Label][idx]
		}
		data.Links = append(data.Links, l)
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
