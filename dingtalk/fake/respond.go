package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
)

// oldMessage returns the errmsg DingTalk's old API sends with errcode.
func oldMessage(errcode int) string {
	switch errcode {
	case -1:
		return "系统繁忙"
	case 22:
		return "Invalid method"
	case 33012:
		return "无效的userId"
	case 40014:
		return "不合法的access_token"
	case 40035:
		return "不合法的参数"
	case 40069:
		return "不合法的分页大小"
	case 40078:
		return "不存在的临时授权码"
	case 40096:
		return "不合法的appKey或appSecret"
	case 41026:
		return "缺少tmp_auth_code参数"
	case 42001:
		return "access_token超时"
	case 43001:
		return "需要GET请求"
	case 43002:
		return "需要POST请求"
	case 50002:
		return "员工不在授权范围"
	case 60003:
		return "部门不存在"
	case 60011:
		return "没有调用该接口的权限"
	case 60020:
		return "访问ip不在白名单之中"
	case 60121:
		return "找不到该用户"
	case 90002:
		return "服务器繁忙，请求被限流"
	case 90006:
		return "企业凭证调用频率超过限制"
	case 90018:
		return "应用调用该接口的频率超过限制"
	case 90020:
		return "企业当月调用量超过限额"
	case 400002:
		return "无效的参数"
	case 853001:
		return "时间戳格式错误"
	case 853002:
		return "时间戳与服务器时间相差超过1分钟"
	case 853003:
		return "accessKey不存在"
	case 853004:
		return "签名不匹配"
	default:
		return "errcode " + strconv.Itoa(errcode)
	}
}

// writeJSON writes v as DingTalk does: UTF-8 JSON, HTML characters unescaped.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeOldOK writes an old-API success: errcode 0, errmsg ok, request_id,
// plus fields.
func writeOldOK(w http.ResponseWriter, r *http.Request, fields map[string]any) {
	body := map[string]any{"errcode": 0, "errmsg": "ok", "request_id": requestID(r)}
	maps.Copy(body, fields)
	writeJSON(w, http.StatusOK, body)
}

// writeOldError writes an old-API failure (HTTP 200); msg "" means the
// errcode's usual text.
func writeOldError(w http.ResponseWriter, r *http.Request, errcode int, msg string) {
	if msg == "" {
		msg = oldMessage(errcode)
	}
	writeJSON(w, http.StatusOK, map[string]any{"errcode": errcode, "errmsg": msg, "request_id": requestID(r)})
}

// writeGatewayError writes the topapi gateway wrapper: errcode 88 with the
// real code in sub_code.
func writeGatewayError(w http.ResponseWriter, r *http.Request, subcode int) {
	msg := oldMessage(subcode)
	writeJSON(w, http.StatusOK, map[string]any{
		"errcode":    88,
		"sub_code":   strconv.Itoa(subcode),
		"sub_msg":    msg,
		"errmsg":     fmt.Sprintf("ding talk error[subcode=%d,submsg=%s]", subcode, msg),
		"request_id": requestID(r),
	})
}

// writeNewError writes a new-API failure.
func writeNewError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg, "requestid": requestID(r)})
}

// writePermissionDenied is the new API's 403 for a permission the app
// lacks, with the detail DingTalk sends (accessdenieddetail.requiredScopes).
func writePermissionDenied(w http.ResponseWriter, r *http.Request, scopes ...string) {
	writeJSON(w, http.StatusForbidden, map[string]any{
		"code":               "Forbidden.AccessDenied.AccessTokenPermissionDenied",
		"message":            "没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp-server/add-api-permission",
		"requestid":          requestID(r),
		"accessdenieddetail": map[string]any{"requiredScopes": scopes},
	})
}
