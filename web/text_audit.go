package web

// Texts of the overview's figures, the identities page's link filter and the
// audit page.

var auditZH = map[string]string{
	"nav_audit": "审计日志",

	"ov_linked": "已关联", "ov_unlinked": "未关联", "ov_unlinked_identities": "未关联的钉钉身份",
	"ov_signins_today": "今天登录的人数", "ov_signins_note": "按人计数（同一人多次登录只算一次），“今天”按服务器时区：",
	"ov_estimate_note": "带 ≈ 的数字是数据库的估算值：数据量很大时，精确计数太慢。",
	"ov_failures":      "最近 24 小时登录失败的原因", "ov_no_failures": "最近 24 小时没有失败或被拒绝的登录。",
	"ov_failures_link": "在审计日志中查看登录事件",

	"reason_not_linked":         "钉钉账号尚未关联企业账号（已进入待审批）",
	"reason_account_disabled":   "企业账号已停用",
	"reason_identity_disabled":  "钉钉身份已停用（如已离职）",
	"reason_corp_not_allowed":   "来自未配置的组织",
	"reason_state_expired":      "登录链接已过期或不属于这个浏览器",
	"reason_dingtalk_error":     "钉钉接口返回错误",
	"reason_dingtalk_timeout":   "钉钉响应超时",
	"reason_dingtalk_throttled": "钉钉限流",
	"reason_user_denied":        "用户在钉钉中取消了授权",
	"reason_missing_code":       "钉钉回调缺少授权码",
	"reason_none":               "未注明原因",
	"reason_other":              "其他原因",

	"id_filter": "显示", "id_filter_all": "全部", "id_filter_linked": "已关联", "id_filter_unlinked": "仅未关联",
	"id_no_unlinked":   "没有未关联的钉钉身份。",
	"err_invalid_link": "筛选条件不正确，已显示全部钉钉身份。",

	"audit": "审计日志", "au_actor": "操作人", "au_actor_hint": "用户名或 ID，如 zhangsan、system",
	"au_action": "操作", "au_action_hint": "如 account.disable；以点结尾表示一类，如 account.",
	"au_target": "对象", "au_target_hint": "用户名、账号 ID，或钉钉身份 组织/userId",
	"au_since": "开始时间（含）", "au_until": "结束时间（不含）", "au_zone": "时间按服务器时区：",
	"au_filter_button": "筛选", "au_clear": "清除筛选", "au_by": "操作人", "au_on": "对象",
	"au_changed_fields": "项已更改", "au_field": "字段", "au_before": "修改前", "au_after": "修改后",
	"au_detail": "详情", "au_changed": "已更改", "au_no_detail": "这条记录没有修改前后的内容。",
	"au_no_match": "没有符合筛选条件的记录。请放宽条件。", "au_empty": "审计日志还是空的。每次修改都会记录在这里。",
	"err_audit_time":   "时间格式不正确，请使用“年-月-日 时:分”，例如 2026-03-01 09:30。",
	"err_audit_range":  "结束时间必须晚于开始时间。",
	"err_audit_filter": "筛选条件不正确（可能太长，或翻页链接已失效），请修改后重试。",
}

var auditEN = map[string]string{
	"nav_audit": "Audit log",

	"ov_linked": "linked", "ov_unlinked": "not linked", "ov_unlinked_identities": "DingTalk identities not linked",
	"ov_signins_today": "People who signed in today", "ov_signins_note": "Counts people (several sign-ins by one person count once); “today” is in the server's time zone:",
	"ov_estimate_note": "Numbers marked ≈ are the database's estimates: counting exactly takes too long when there is this much data.",
	"ov_failures":      "Why sign-ins failed in the last 24 hours", "ov_no_failures": "No sign-in failed or was refused in the last 24 hours.",
	"ov_failures_link": "See sign-in events in the audit log",

	"reason_not_linked":         "DingTalk account not linked yet (now waiting under Pending)",
	"reason_account_disabled":   "Account disabled",
	"reason_identity_disabled":  "DingTalk identity disabled (e.g. left the organisation)",
	"reason_corp_not_allowed":   "From an organisation that is not configured",
	"reason_state_expired":      "Sign-in link expired or belongs to another browser",
	"reason_dingtalk_error":     "DingTalk returned an error",
	"reason_dingtalk_timeout":   "DingTalk did not answer in time",
	"reason_dingtalk_throttled": "DingTalk rate limit",
	"reason_user_denied":        "The person cancelled in DingTalk",
	"reason_missing_code":       "DingTalk's callback had no code",
	"reason_none":               "No reason given",
	"reason_other":              "Other reason",

	"id_filter": "Show", "id_filter_all": "All", "id_filter_linked": "Linked", "id_filter_unlinked": "Not linked only",
	"id_no_unlinked":   "No DingTalk identity is waiting to be linked.",
	"err_invalid_link": "That filter is not valid, so all DingTalk identities are shown.",

	"audit": "Audit log", "au_actor": "Actor", "au_actor_hint": "Username or id, e.g. zhangsan, system",
	"au_action": "Action", "au_action_hint": "e.g. account.disable; end with a dot for a family, e.g. account.",
	"au_target": "Target", "au_target_hint": "Username, account id, or DingTalk identity corp/userId",
	"au_since": "From (inclusive)", "au_until": "To (exclusive)", "au_zone": "Times are in the server's time zone:",
	"au_filter_button": "Filter", "au_clear": "Clear filters", "au_by": "by", "au_on": "on",
	"au_changed_fields": "fields changed", "au_field": "Field", "au_before": "Before", "au_after": "After",
	"au_detail": "Detail", "au_changed": "changed", "au_no_detail": "This event holds no before or after.",
	"au_no_match": "No event matches these filters. Try wider ones.", "au_empty": "The audit log is empty. Every change will be recorded here.",
	"err_audit_time":   "A time is not valid. Use year-month-day hour:minute, e.g. 2026-03-01 09:30.",
	"err_audit_range":  "The end time must be after the start time.",
	"err_audit_filter": "A filter is not valid (too long, or the page link expired). Change it and try again.",
}
