package web

// Texts of the console's session and sign-in limit pages. err_rate_limited_body
// takes the minutes to wait (%d).
var sessionsZH = map[string]string{
	"err_rate_limited":        "尝试次数过多",
	"err_rate_limited_body":   "短时间内登录管理后台的尝试太多，为了安全暂时停止接受。请在 %d 分钟后重试。",
	"err_signout_failed":      "退出登录未完成",
	"err_signout_failed_body": "服务器暂时无法记录退出，您仍处于登录状态。请稍后回到管理后台，再点一次「退出登录」。如果一直失败，请把请求编号告诉技术人员。",
}

var sessionsEN = map[string]string{
	"err_rate_limited":        "Too many attempts",
	"err_rate_limited_body":   "There were too many attempts to sign in to the admin console in a short time, so for safety they are paused. Please try again in %d min.",
	"err_signout_failed":      "Sign-out not completed",
	"err_signout_failed_body": "The server could not record the sign-out just now, so you are still signed in. Go back to the admin console shortly and choose Sign out again. If it keeps failing, give the request id to your technical staff.",
}
