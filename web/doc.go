// Package web is the admin console at /admin: pages where administrators,
// signed in with DingTalk through dingbridge's own OpenID Connect flow, link
// DingTalk users to enterprise accounts, approve people waiting for access,
// import and export, and read the audit trail. It uses package mapping for
// all data; it must not know how OpenID Connect tokens are made and never
// imports package idp.
//
// This first increment has sign-in (an OpenID Connect client of dingbridge
// with PKCE, state and nonce; administrators by group or username), the
// overview, accounts, identities and pending requests. Every change is a
// POST carrying the session's CSRF token, behind http.CrossOriginProtection,
// and passes a mapping.Meta so the audit row names the administrator, the
// client IP and the request id.
package web
