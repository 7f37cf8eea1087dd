// Package mapping decides which enterprise account a DingTalk identity is. It
// holds the accounts, the DingTalk identities linked to them (keyed by corp id
// and user id), the resolution rules (explicit links first; optional
// auto-link and just-in-time provisioning, both off by default), the pending
// requests of people waiting for access, CSV import and export, and the audit
// trail of every change, with a Postgres store for production and an
// in-memory one for the demo. It must not know about OpenID Connect, HTTP or
// how DingTalk is called: it receives identities, it does not fetch them.
//
// The mapping arrives with its own issue; until then this package holds only
// this description.
package mapping
