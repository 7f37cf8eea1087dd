// Package web is the admin console at /admin: pages where administrators,
// signed in with DingTalk through dingbridge's own OpenID Connect flow, link
// DingTalk users to enterprise accounts, approve people waiting for access,
// import and export, and read the audit trail. It uses package mapping for
// all data; it must not know how OpenID Connect tokens are made and never
// imports package idp.
//
// The admin console arrives with its own issue; until then this package
// holds only this description.
package web
