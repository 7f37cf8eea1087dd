// Package sharedlimit keeps DingTalk's per-app per-API call limit for every
// replica together: Postgres is a dingtalk.Limiter whose turns are rows in
// the database the replicas share (migration 0010), so that N replicas send
// no more than one replica may, where N limiters of their own would send N
// times that. It keeps the rule of the DingTalk client's own limiter
// (dingtalk.LimitWindow: a call goes only once the call n before it was
// answered a window ago). It must not know about OpenID Connect, accounts
// or how DingTalk is called: it only decides when a call may be sent.
//
// It lives apart from package dingtalk, which knows nothing of Postgres.
package sharedlimit
