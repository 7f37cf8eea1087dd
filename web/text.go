package web

// texts is one part of the console's texts, in Simplified Chinese (the
// default) and English. Each page family keeps its own in text_<page>.go and
// lists it in textParts, so pages can be added without touching each other's
// tables. Keys ending in _body are a message page's text.
type texts struct{ zh, en map[string]string }

// textZH and textEN are every part's texts merged; a key defined twice is a
// programming error caught by TestTexts.
var textZH, textEN = mergeTexts(textParts...)

// textParts are the console's text tables.
var textParts = []texts{{coreZH, coreEN}, {clientsZH, clientsEN}, {accountsZH, accountsEN}, {sessionsZH, sessionsEN}, {importZH, importEN}, {auditZH, auditEN}, {bulkZH, bulkEN}}

func mergeTexts(parts ...texts) (zh, en map[string]string) {
	zh, en = map[string]string{}, map[string]string{}
	for _, p := range parts {
		for k, v := range p.zh {
			zh[k] = v
		}
		for k, v := range p.en {
			en[k] = v
		}
	}
	return zh, en
}

var coreZH = map[string]string{
	"app_name": "dingbridge 管理后台", "skip": "跳到正文", "nav_overview": "概览", "nav_accounts": "账号",
	"nav_identities": "钉钉身份", "nav_pending": "待审批", "sign_out": "退出登录", "signed_in_as": "当前管理员",
	"request_id": "请求编号",

	"overview": "概览", "overview_accounts": "企业账号", "overview_identities": "钉钉身份",
	"overview_pending": "待审批申请", "overview_more": "以上", "overview_hint": "有人在等待审批时，请到「待审批」处理。",

	"accounts": "账号", "search": "搜索", "search_accounts": "按用户名、姓名、邮箱或手机号搜索",
	"search_identities": "按钉钉姓名、userId、unionId、手机号、工号或企业邮箱搜索", "search_button": "搜索",
	"username": "用户名", "display_name": "姓名", "email": "邮箱", "phone": "手机号", "groups": "分组",
	"status": "状态", "enabled": "启用", "disabled": "已停用", "create_account": "新建账号",
	"create_button": "创建账号", "groups_hint": "多个分组用逗号分隔", "next_page": "下一页", "first_page": "第一页",
	"no_accounts": "还没有账号。可以在下方新建，或在「待审批」中为申请人创建。",
	"no_results":  "没有找到匹配的结果。请换一个关键词，或清空搜索查看全部。", "clear_search": "清空搜索",
	"details": "详情",

	"account": "账号详情", "account_identities": "关联的钉钉身份", "corp": "组织", "user_id": "userId",
	"union_id": "unionId", "name": "钉钉姓名", "mobile": "手机号", "job_number": "工号", "org_email": "企业邮箱",
	"last_login": "最近登录", "no_identities": "这个账号还没有关联钉钉身份，因此无法用钉钉登录。",
	"unlink": "解除关联…", "unlink_confirm": "解除后，此钉钉身份将无法登录这个账号。确定解除吗？",
	"unlink_button": "确定解除关联", "disable": "停用账号…", "enable": "启用账号…",
	"disable_confirm": "停用后，此人将无法登录任何应用。确定停用吗？", "enable_confirm": "启用后，此人可以再次登录。确定启用吗？",
	"disable_button": "确定停用", "enable_button": "确定启用", "version": "版本", "created": "创建时间",
	"updated": "更新时间", "never": "从未", "identity_disabled": "已停用（如已离职）",

	"identities": "钉钉身份", "identity_account": "企业账号", "not_linked": "未关联",
	"identities_unlinked_note": "未关联的人登录后会出现在「待审批」中。",

	"pending": "待审批", "no_pending": "没有待审批的申请。有人用未关联的钉钉账号登录时，会出现在这里。",
	"first_seen": "首次申请", "last_seen": "最近一次", "attempts": "尝试次数", "suggested": "可能的账号",
	"approve_existing": "关联到已有账号", "approve_button": "批准并关联", "approve_new": "新建账号并关联",
	"approve_new_button": "批准并新建账号", "reject": "拒绝…", "reject_reason": "拒绝原因（申请人不可见）",
	"reject_button": "确定拒绝", "username_hint": "输入已有账号的用户名",

	"ok_created": "账号已创建。", "ok_disabled": "账号已停用。", "ok_enabled": "账号已启用。",
	"ok_unlinked": "已解除关联。", "ok_approved": "已批准，此人现在可以登录。", "ok_rejected": "已拒绝该申请。",
	"err_stale":          "这条记录刚被其他人修改过，您的操作没有生效。请刷新页面，查看最新内容后再操作。",
	"err_conflict":       "操作与当前数据冲突（例如该钉钉身份已关联到其他账号），没有生效。请刷新后重试。",
	"err_username_taken": "这个用户名已被其他账号使用。", "err_decided": "这个申请已被处理过了。",
	"err_invalid":        "输入的内容不符合要求，请检查后重试（用户名只能包含字母、数字和 . _ -）。",
	"err_invalid_search": "搜索内容太长或格式不正确。", "err_gone": "要操作的记录已不存在，请刷新页面。",
	"err_no_account": "没有这个用户名的账号。请检查用户名，或选择「新建账号并关联」。",

	"err_not_found": "页面不存在", "err_not_found_body": "这个地址没有内容。",
	"err_method": "请求方式不正确", "err_method_body": "这个地址不接受这种请求。",
	"err_cross_origin": "请求被拒绝", "err_cross_origin_body": "这个请求来自其他网站，为了安全没有执行。",
	"err_csrf": "请求被拒绝", "err_csrf_body": "表单已过期或不是从本页面提交的，没有执行任何更改。请刷新页面后重试。",
	"err_not_admin": "无权访问管理后台", "err_not_admin_body": "您的账号不是 dingbridge 的管理员。此次访问已被记录。如需权限，请联系现有管理员。",
	"err_unavailable": "服务暂时不可用", "err_unavailable_body": "暂时无法完成请求，没有丢失任何数据。请稍后重试，并把请求编号告诉技术人员。",
	"err_start_again": "登录未完成", "err_start_again_body": "登录链接已过期或不属于这个浏览器。请重新登录。",
	"msg_signed_out": "已退出登录", "msg_signed_out_body": "您已退出管理后台。",
	"msg_signed_in": "登录成功", "msg_signed_in_body": "正在进入管理后台…", "continue": "进入管理后台",
	"sign_in": "登录管理后台",
}

var coreEN = map[string]string{
	"app_name": "dingbridge admin", "skip": "Skip to content", "nav_overview": "Overview", "nav_accounts": "Accounts",
	"nav_identities": "DingTalk identities", "nav_pending": "Pending", "sign_out": "Sign out", "signed_in_as": "Signed in as",
	"request_id": "Request id",

	"overview": "Overview", "overview_accounts": "Accounts", "overview_identities": "DingTalk identities",
	"overview_pending": "Pending requests", "overview_more": "or more", "overview_hint": "When people are waiting, handle them under Pending.",

	"accounts": "Accounts", "search": "Search", "search_accounts": "Search by username, name, email or phone",
	"search_identities": "Search by DingTalk name, userId, unionId, mobile, job number or org email", "search_button": "Search",
	"username": "Username", "display_name": "Name", "email": "Email", "phone": "Phone", "groups": "Groups",
	"status": "Status", "enabled": "Enabled", "disabled": "Disabled", "create_account": "New account",
	"create_button": "Create account", "groups_hint": "Separate groups with commas", "next_page": "Next page", "first_page": "First page",
	"no_accounts": "There are no accounts yet. Create one below, or approve a pending request with a new account.",
	"no_results":  "Nothing matches. Try another word, or clear the search to see everything.", "clear_search": "Clear search",
	"details": "Details",

	"account": "Account", "account_identities": "Linked DingTalk identities", "corp": "Organisation", "user_id": "userId",
	"union_id": "unionId", "name": "DingTalk name", "mobile": "Mobile", "job_number": "Job number", "org_email": "Org email",
	"last_login": "Last sign-in", "no_identities": "No DingTalk identity is linked to this account, so nobody can sign in to it with DingTalk.",
	"unlink": "Unlink…", "unlink_confirm": "After unlinking, this DingTalk identity can no longer sign in to this account. Unlink?",
	"unlink_button": "Yes, unlink", "disable": "Disable account…", "enable": "Enable account…",
	"disable_confirm": "Once disabled, this person cannot sign in to any application. Disable?", "enable_confirm": "Once enabled, this person can sign in again. Enable?",
	"disable_button": "Yes, disable", "enable_button": "Yes, enable", "version": "Version", "created": "Created",
	"updated": "Updated", "never": "never", "identity_disabled": "disabled (e.g. left the organisation)",

	"identities": "DingTalk identities", "identity_account": "Account", "not_linked": "not linked",
	"identities_unlinked_note": "People who are not linked appear under Pending once they try to sign in.",

	"pending": "Pending requests", "no_pending": "No one is waiting. People who sign in with a DingTalk account that is not linked appear here.",
	"first_seen": "First seen", "last_seen": "Last seen", "attempts": "Attempts", "suggested": "Possible accounts",
	"approve_existing": "Link to an existing account", "approve_button": "Approve and link", "approve_new": "Create an account and link",
	"approve_new_button": "Approve with a new account", "reject": "Reject…", "reject_reason": "Reason (not shown to the person)",
	"reject_button": "Yes, reject", "username_hint": "Username of an existing account",

	"ok_created": "The account was created.", "ok_disabled": "The account was disabled.", "ok_enabled": "The account was enabled.",
	"ok_unlinked": "The identity was unlinked.", "ok_approved": "Approved: this person can sign in now.", "ok_rejected": "The request was rejected.",
	"err_stale":          "Someone else changed this record just now, so your change was not made. Reload the page, check the latest state and try again.",
	"err_conflict":       "The change conflicts with the current data (for example, the identity is linked to another account) and was not made. Reload and try again.",
	"err_username_taken": "Another account already has this username.", "err_decided": "This request was already decided.",
	"err_invalid":        "Some input is not valid; check it and try again (usernames may hold letters, digits and . _ -).",
	"err_invalid_search": "The search is too long or malformed.", "err_gone": "The record no longer exists; reload the page.",
	"err_no_account": "There is no account with this username. Check it, or choose “Create an account and link”.",

	"err_not_found": "Page not found", "err_not_found_body": "There is nothing at this address.",
	"err_method": "Method not allowed", "err_method_body": "This address does not accept this kind of request.",
	"err_cross_origin": "Request refused", "err_cross_origin_body": "This request came from another site, so for your safety it was not carried out.",
	"err_csrf": "Request refused", "err_csrf_body": "The form expired or was not sent from this console; nothing was changed. Reload the page and try again.",
	"err_not_admin": "No access to the admin console", "err_not_admin_body": "Your account is not a dingbridge administrator. This attempt was recorded. Ask an administrator if you need access.",
	"err_unavailable": "Temporarily unavailable", "err_unavailable_body": "The request could not be completed; nothing was lost. Try again shortly, and give the request id to your technical staff.",
	"err_start_again": "Sign-in not completed", "err_start_again_body": "The sign-in link expired or belongs to another browser. Please sign in again.",
	"msg_signed_out": "Signed out", "msg_signed_out_body": "You have signed out of the admin console.",
	"msg_signed_in": "Signed in", "msg_signed_in_body": "Opening the admin console…", "continue": "Open the admin console",
	"sign_in": "Sign in to the admin console",
}
