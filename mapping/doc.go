// Package mapping decides which enterprise account a DingTalk identity is. It
// holds the accounts, the DingTalk identities linked to them (keyed by corp id
// and user id), the resolution rules (explicit links first; optional
// auto-link and just-in-time provisioning, both off by default), the pending
// requests of people waiting for access, CSV import and export, and the audit
// trail of every change, with a Postgres store for production and an
// in-memory one for the demo. It must not know about OpenID Connect, HTTP or
// how DingTalk is called: it receives identities, it does not fetch them.
//
// Store (store.go) is the storage API, with Postgres (postgres.go, migration 0002) for
// production and Memory (memory.go) for the demo; both share the rules in store.go and
// signin.go and pass one conformance suite, mappingtest.RunStoreTests. Resolver
// (resolve.go) is the sign-in policy; csv.go is import and export. Every change writes
// its audit_log row in the same transaction.
package mapping
