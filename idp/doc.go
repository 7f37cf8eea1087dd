// Package idp is dingbridge's OpenID Connect provider: it serves discovery,
// authorize, token, userinfo, introspection, revocation and end-session on top
// of github.com/zitadel/oidc/v3's op package, stores auth requests, codes,
// tokens, SSO sessions and signing keys (in Postgres, or in memory for the
// demo), and runs the DingTalk legs of a sign-in (/login, /workbench, the
// DingTalk callbacks). It asks package mapping who a DingTalk identity is and
// package dingtalk what DingTalk says; it must not know how either stores or
// fetches anything, and it never imports package web.
//
// The provider arrives with the OpenID Connect provider issue; until then
// this package holds only this description.
package idp
