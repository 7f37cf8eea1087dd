package mapping

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Account is an enterprise account; ID is the OIDC sub and never changes.
type Account struct {
	ID            string
	Username      string
	DisplayName   string
	Email         string
	EmailVerified bool
	Phone         string
	Groups        []string
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Version       int64 // optimistic concurrency
}

// Identity is a DingTalk user as the corp directory describes them: the ids that key the
// mapping and a profile. The caller fills it from DingTalk (package mapping never calls
// DingTalk); the field names follow topapi/v2/user/get.
type Identity struct {
	CorpID  string
	UserID  string // unique and immutable inside the corp: the key
	UnionID string // unique per DingTalk developer account only (BR-08)
	OpenID  string // per DingTalk app
	// AppKey is the DingTalk app (client id) that UnionID and OpenID were obtained
	// through: unionIds are compared only under the same app key.
	AppKey string

	Name      string
	Mobile    string
	OrgEmail  string // the corp mailbox, assigned by the corp
	Email     string // the person's own email: kept for display, never used to link (BR-06)
	JobNumber string
	Title     string
	DeptIDs   []int64
	Active    bool // has activated DingTalk
}

// Key identifies a DingTalk identity: a user inside a corp.
type Key struct {
	CorpID string
	UserID string
}

// String returns "corp/user", the form the audit trail and reports use.
func (k Key) String() string { return k.CorpID + "/" + k.UserID }

// Key returns the identity's key.
func (id Identity) Key() Key { return Key{CorpID: id.CorpID, UserID: id.UserID} }

// Binding is one row of the mapping table: a DingTalk identity, its latest profile
// snapshot, and the account it is linked to, if any.
type Binding struct {
	Identity
	AccountID   string // "" while not linked
	Disabled    bool
	Source      Source
	LastLoginAt time.Time // zero before the first successful sign-in
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64 // optimistic concurrency; sign-ins do not change it
}

// Linked reports whether the identity is linked to an account.
func (b Binding) Linked() bool { return b.AccountID != "" }

// Source says who made a binding what it is.
type Source string

// Sources of a binding.
const (
	SourceAdmin  Source = "admin"  // an administrator linked it (or approved a request)
	SourceImport Source = "import" // a CSV import
	SourceAuto   Source = "auto"   // the auto-link rule
	SourceJIT    Source = "jit"    // just-in-time provisioning
	SourceSync   Source = "sync"   // a directory sync
	SourceLogin  Source = "login"  // a sign-in attempt recorded it; not linked yet
)

func (s Source) valid() bool {
	switch s {
	case SourceAdmin, SourceImport, SourceAuto, SourceJIT, SourceSync, SourceLogin:
		return true
	}
	return false
}

// Attribute is a corp-directory attribute that the auto-link rule may match on. Only
// attributes the corp itself assigns qualify: never the personal email or the nick (BR-06).
type Attribute string

// Attributes for auto-link, and the account field each must equal.
const (
	AttrJobNumber Attribute = "job_number" // = Account.Username
	AttrOrgEmail  Attribute = "org_email"  // = Account.Email, ignoring case
	AttrMobile    Attribute = "mobile"     // = Account.Phone, comparing national digits
)

func (a Attribute) valid() bool {
	return a == AttrJobNumber || a == AttrOrgEmail || a == AttrMobile
}

// value returns the identity's value of the attribute.
func (a Attribute) value(id Identity) string {
	switch a {
	case AttrJobNumber:
		return id.JobNumber
	case AttrOrgEmail:
		return id.OrgEmail
	case AttrMobile:
		return id.Mobile
	}
	return ""
}

// Request is a pending request: a DingTalk identity that signed in without being linked,
// waiting for an administrator.
type Request struct {
	ID                  string
	Key                 Key
	Status              RequestStatus
	Attempts            int
	FirstSeenAt         time.Time
	LastSeenAt          time.Time
	SuggestedAccountIDs []string // hints for the administrator, never linked automatically
	AccountID           string   // approved: the account linked
	DecidedBy           string
	DecidedAt           time.Time
	Reason              string
	Binding             Binding // the identity, as it is now (filled by reads)
}

// RequestStatus is where a pending request stands.
type RequestStatus string

// Request statuses.
const (
	RequestOpen     RequestStatus = "open"
	RequestApproved RequestStatus = "approved"
	RequestRejected RequestStatus = "rejected"
	// RequestClosed: the identity was linked some other way (admin, import, auto-link)
	// before anyone decided.
	RequestClosed RequestStatus = "closed"
)

// Meta says who makes a change and from where; the audit row records it.
type Meta struct {
	Actor     string     // required: an account id, an admin's name, "import", ...
	Source    Source     // how a link is made; SourceAdmin when empty
	RequestID string     // the HTTP request id, or an import run's id
	ClientIP  netip.Addr // zero when there is none (command line)
}

// AuditEvent is one row of the audit trail.
type AuditEvent struct {
	ID         int64
	At         time.Time
	Actor      string
	Action     string // "account.create", "identity.link", ...
	TargetType string // "account", "identity", "request", "signin"
	TargetID   string
	Before     []byte // JSON; nil before a creation
	After      []byte // JSON; nil after a deletion
	RequestID  string
	ClientIP   netip.Addr
}

// Errors that callers branch on. Every error the stores return for one of these reasons
// matches it with errors.Is.
var (
	// ErrNotFound: no such account, identity or request.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change conflicts with the current state; see ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrDisabled: the identity or its account is disabled; see DisabledError.
	ErrDisabled = errors.New("disabled")
	// ErrNotLinked: the identity is not linked to an account yet; see NotLinkedError.
	ErrNotLinked = errors.New("not linked yet")
	// ErrCorpNotAllowed: the identity's corp is not configured (BR-07).
	ErrCorpNotAllowed = errors.New("corp not allowed")
	// ErrInvalid: the input is malformed; see ValidationError.
	ErrInvalid = errors.New("invalid")
)

// Conflict names why a change was refused.
type Conflict string

// Reasons for a ConflictError.
const (
	ConflictIdentityLinked  Conflict = "identity_linked"  // the identity is already linked
	ConflictIdentityExists  Conflict = "identity_exists"  // an identity with this key exists
	ConflictUnionIDTaken    Conflict = "union_id_taken"   // another identity in the corp has this unionId
	ConflictUsernameTaken   Conflict = "username_taken"   // another account has this username
	ConflictAccountIDTaken  Conflict = "account_id_taken" // an account with this id exists
	ConflictStale           Conflict = "stale_version"    // someone changed the record since it was read
	ConflictHasIdentities   Conflict = "account_has_identities"
	ConflictNotLinked       Conflict = "identity_not_linked" // unlink or relink of an unlinked identity
	ConflictRequestDecided  Conflict = "request_decided"     // the request is no longer open
	ConflictIdentityMissing Conflict = "identity_missing"    // union-only import line with no identity
)

// ConflictError is a change refused because of the current state. It matches ErrConflict.
type ConflictError struct {
	Reason Conflict
	// AccountID is the account involved, when there is one: the one the identity is
	// linked to, or the one holding the username.
	AccountID string
	// Version is the record's current version, for ConflictStale.
	Version int64
}

// Error names the reason and the account involved.
func (e *ConflictError) Error() string {
	s := "conflict: " + string(e.Reason)
	if e.AccountID != "" {
		s += " (account " + e.AccountID + ")"
	}
	if e.Reason == ConflictStale {
		s += fmt.Sprintf(" (current version %d)", e.Version)
	}
	return s
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func conflict(r Conflict, accountID string) error {
	return &ConflictError{Reason: r, AccountID: accountID}
}

func stale(current int64) error {
	return &ConflictError{Reason: ConflictStale, Version: current}
}

// DisabledError says which of the identity and the account is disabled. It matches
// ErrDisabled.
type DisabledError struct {
	Identity bool // the DingTalk identity is disabled (e.g. left the corp)
	Account  bool // the enterprise account is disabled
}

// Error says what is disabled.
func (e *DisabledError) Error() string {
	switch {
	case e.Identity && e.Account:
		return "identity and account disabled"
	case e.Identity:
		return "identity disabled"
	default:
		return "account disabled"
	}
}

// Is makes a DisabledError match ErrDisabled.
func (e *DisabledError) Is(target error) bool { return target == ErrDisabled }

// NotLinkedError is the resolver's "not linked yet" result: the person should see the
// "not linked yet" page while an administrator looks at RequestID. It matches ErrNotLinked.
type NotLinkedError struct {
	// RequestID is the open pending request. It is empty when none could be recorded: an
	// identity that came with a unionId only and matched nothing.
	RequestID string
}

// Error names the pending request, if any.
func (e *NotLinkedError) Error() string {
	if e.RequestID == "" {
		return "not linked yet"
	}
	return "not linked yet: pending request " + e.RequestID
}

// Is makes a NotLinkedError match ErrNotLinked.
func (e *NotLinkedError) Is(target error) bool { return target == ErrNotLinked }

// ValidationError is malformed input, named by field. It matches ErrInvalid.
type ValidationError struct {
	Field   string // "username", "user_id", ...
	Problem string
}

// Error names the field and the problem.
func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// Is makes a ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// NewID returns a random identifier: 22 characters of base64url from 16 random bytes.
// Account ids (the OIDC sub) and request ids are made with it.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// clone returns a's copy that shares no memory with a.
func (a Account) clone() Account {
	a.Groups = slices.Clone(a.Groups)
	return a
}

// clone returns b's copy that shares no memory with b.
func (b Binding) clone() Binding {
	b.DeptIDs = slices.Clone(b.DeptIDs)
	return b
}

// clone returns r's copy that shares no memory with r.
func (r Request) clone() Request {
	r.SuggestedAccountIDs = slices.Clone(r.SuggestedAccountIDs)
	r.Binding = r.Binding.clone()
	return r
}
