// Package idp is dingbridge's OpenID Connect provider: it serves discovery,
// authorize, token, userinfo, introspection, revocation and end-session on top
// of github.com/zitadel/oidc/v3's op package, stores auth requests, codes,
// tokens, SSO sessions and signing keys (in Postgres, or in memory for the
// demo), and sends every authorization request that no SSO session can
// satisfy to an Authenticator: the DingTalk login (dingtalk.go: routing,
// upstream transactions, callbacks, workbench one-click), or a stand-in in
// tests. It learns who an account is through AccountSource and
// IdentityResolver (the mapping supplies both) and talks to DingTalk only
// through DingTalkClient (package dingtalk); it must not know how accounts
// are stored or DingTalk's wire protocol, and it never imports package web.
package idp
