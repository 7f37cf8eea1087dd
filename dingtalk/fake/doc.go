// Package fake simulates DingTalk's open platform over HTTP — the new API
// (api.dingtalk.com), the old API (oapi.dingtalk.com), the web login page
// (login.dingtalk.com), the JSAPI free-login script and encrypted event
// pushes — on one http.Handler, following DingTalk's wire protocol field for
// field, errors, faults and throttling included, for unit tests, end-to-end
// and browser tests and `dingbridge demo`. It is the project's only fake of
// DingTalk; it is written from the protocol description, not from the
// client, so it must not import dingbridge's own packages (dingtalk
// included) and depends on the standard library only.
package fake
