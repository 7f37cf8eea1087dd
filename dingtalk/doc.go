// Package dingtalk is a client for the parts of DingTalk's open platform that
// dingbridge needs: app access tokens, the OAuth2 web login
// (login.dingtalk.com), H5 free-login codes, the legacy SNS scan login, the
// contact directory (users and departments), and the crypto and HTTP handler
// for encrypted event callbacks. One Client serves one DingTalk app of one
// corp. It speaks DingTalk's wire protocol and turns its two error shapes
// into *APIError and sentinel errors. It keeps each app's calls under
// DingTalk's per-API rate limit and retries throttled idempotent calls (never
// single-use code exchanges). It must not know about OpenID Connect,
// Postgres, or how DingTalk identities map to enterprise accounts.
package dingtalk
