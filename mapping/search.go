package mapping

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Query asks for one page of search results.
type Query struct {
	// Text is matched, ignoring case, as a substring of username, display name, email and
	// phone of accounts and DingTalk name, userId, mobile, job number and org email of
	// identities; a whole unionId matches its identity. Empty lists everything.
	Text string
	// Link narrows identities to those linked to an account, or to those that are not
	// (people waiting, directory entries nobody linked yet); empty: both. Account
	// searches ignore it.
	Link LinkFilter
	// Status narrows accounts to enabled or disabled ones; empty: both. Identity
	// searches ignore it.
	Status AccountStatus
	// Group narrows accounts to members of this group, matched exactly (as groups are
	// stored, trimmed); empty: any. Identity searches ignore it.
	Group string
	// Limit is the page size: 1 to MaxPageSize; 0 means DefaultPageSize.
	Limit int
	// After is the previous page's Next; empty for the first page.
	After string
}

// LinkFilter narrows an identity search by whether identities are linked.
type LinkFilter string

// Link filters.
const (
	LinkAny      LinkFilter = ""
	LinkLinked   LinkFilter = "linked"
	LinkUnlinked LinkFilter = "unlinked"
)

func (f LinkFilter) valid() bool { return f == LinkAny || f == LinkLinked || f == LinkUnlinked }

// keeps reports whether an identity passes the filter: the rule both stores implement.
func (f LinkFilter) keeps(b Binding) bool {
	switch f {
	case LinkLinked:
		return b.Linked()
	case LinkUnlinked:
		return !b.Linked()
	}
	return true
}

// AccountStatus narrows an account search by whether accounts are disabled.
type AccountStatus string

// Account status filters.
const (
	StatusAny      AccountStatus = ""
	StatusEnabled  AccountStatus = "enabled"
	StatusDisabled AccountStatus = "disabled"
)

func (f AccountStatus) valid() bool {
	return f == StatusAny || f == StatusEnabled || f == StatusDisabled
}

// keepsAccount reports whether an account passes the status and group filters: the rule
// both stores implement.
func (q textQuery) keepsAccount(a Account) bool {
	switch {
	case q.status == StatusEnabled && a.Disabled, q.status == StatusDisabled && !a.Disabled:
		return false
	case q.group != "" && !slices.Contains(a.Groups, q.group):
		return false
	}
	return true
}

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// SearchResult is a DingTalk identity found by Search, with its account if it has one.
type SearchResult struct {
	Binding Binding
	Account *Account // nil while the identity is not linked
}

// SearchPage is one page of identities, in (corp id, user id) order.
type SearchPage struct {
	Results []SearchResult
	Next    string // for Query.After; empty on the last page
}

// AccountPage is one page of accounts, in username order.
type AccountPage struct {
	Accounts []Account
	Next     string
}

// RequestQuery asks for one page of pending requests, most recently seen first.
type RequestQuery struct {
	Status RequestStatus // RequestOpen when empty
	Limit  int
	After  string
}

// RequestPage is one page of pending requests.
type RequestPage struct {
	Requests []Request
	Next     string
}

// AuditQuery asks for one page of audit events, newest first (by id: the order rows
// were appended). Every filter set must match.
type AuditQuery struct {
	TargetType string // with TargetID: one record's history
	TargetID   string
	Actor      string // what one actor did
	// Action is an action ("account.disable"), or, ending in a dot, every action of a
	// family ("account.").
	Action string
	// Since and Until bound the event's time: Since <= At < Until; zero: unbounded.
	Since, Until time.Time
	Limit        int
	// After is the previous page's Next; empty for the newest events.
	After string
}

// AuditPage is one page of the audit trail, newest first.
type AuditPage struct {
	Events []AuditEvent
	Next   string // for AuditQuery.After; empty on the last page
}

// maxAction bounds an action filter; actions are short dotted words.
const maxAction = 64

// auditFilter is an AuditQuery checked for both stores.
type auditFilter struct {
	AuditQuery
	prefix bool  // Action names a family ("account.")
	before int64 // events with a smaller id only; 0: from the newest
}

func parseAuditQuery(q AuditQuery) (auditFilter, error) {
	f := auditFilter{AuditQuery: q}
	var err error
	if f.Limit, err = pageLimit(q.Limit); err != nil {
		return auditFilter{}, err
	}
	if len(q.Action) > maxAction || !utf8.ValidString(q.Action) || strings.ContainsFunc(q.Action, unicode.IsControl) {
		return auditFilter{}, invalid("action", "at most %d bytes of text", maxAction)
	}
	f.prefix = strings.HasSuffix(q.Action, ".")
	if q.TargetID != "" && q.TargetType == "" {
		return auditFilter{}, invalid("target_type", "is required with a target id")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return auditFilter{}, invalid("until", "must be after since")
	}
	f.Since, f.Until = utc(q.Since), utc(q.Until)
	after, err := decodeCursor(q.After, 1)
	if err != nil {
		return auditFilter{}, err
	}
	if after != nil {
		if f.before, err = strconv.ParseInt(after[0], 10, 64); err != nil || f.before <= 0 {
			return auditFilter{}, invalid("after", "is not a cursor from a previous page")
		}
	}
	return f, nil
}

// keeps reports whether an event passes the filter: the rule both stores implement.
func (f auditFilter) keeps(e AuditEvent) bool {
	switch {
	case f.before > 0 && e.ID >= f.before:
	case f.TargetType != "" && (e.TargetType != f.TargetType || e.TargetID != f.TargetID && f.TargetID != ""):
	case f.Actor != "" && e.Actor != f.Actor:
	case f.Action != "" && !f.prefix && e.Action != f.Action:
	case f.prefix && !strings.HasPrefix(e.Action, f.Action):
	case !f.Since.IsZero() && e.At.Before(f.Since):
	case !f.Until.IsZero() && !e.At.Before(f.Until):
	default:
		return true
	}
	return false
}

// textQuery is a search text prepared for both stores, with the identity search's link
// filter.
type textQuery struct {
	raw     string   // trimmed, for the exact unionId match
	needle  string   // lower-cased: a substring of a search document
	like    string   // LIKE pattern for pg_trgm, or "" when no trigram can be extracted
	bigrams []string // for the CJK index, or nil
	link    LinkFilter
	status  AccountStatus // account searches only
	group   string        // account searches only
}

// prepareText turns search text into what the stores match. Control characters (and so
// the newline that separates a document's fields) cannot be searched for.
func prepareText(s string) (textQuery, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		return textQuery{}, invalid("text", "at most %d bytes", maxText)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return textQuery{}, invalid("text", "must be text without control characters")
	}
	q := textQuery{raw: s, needle: strings.ToLower(s)}
	if hasASCIIRun(q.needle, 3) {
		q.like = "%" + escapeLike(q.needle) + "%"
	}
	q.bigrams = cjkBigrams(nil, q.needle)
	return q, nil
}

// hasASCIIRun reports whether s has n ASCII letters or digits in a row: then pg_trgm
// extracts at least one trigram from a LIKE pattern, whatever the database's locale.
func hasASCIIRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// cjkBigrams appends to dst every pair of adjacent non-ASCII characters of s (which
// must be lower-cased): what the CJK index stores for a document and looks up for a
// query. Pairs never span a newline, so never two fields. A one-character query has no
// pair and uses no index.
func cjkBigrams(dst []string, s string) []string {
	var prev rune = -1
	for i, r := range s {
		if r < utf8.RuneSelf {
			prev = -1
			continue
		}
		if prev >= 0 {
			start := i - utf8.RuneLen(prev)
			dst = append(dst, s[start:i+utf8.RuneLen(r)])
		}
		prev = r
	}
	return dedupe(dst)
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// accountDoc is an account's search document: the searchable fields, lower-cased, one
// per line.
func accountDoc(a Account) string {
	return strings.ToLower(strings.Join([]string{a.Username, a.DisplayName, a.Email, a.Phone}, "\n"))
}

// identityDoc is an identity's search document. The unionId is not in it: unionIds are
// random and only ever pasted whole, so they are matched exactly.
func identityDoc(id Identity) string {
	return strings.ToLower(strings.Join([]string{id.Name, id.UserID, id.Mobile, id.JobNumber, id.OrgEmail}, "\n"))
}

// matches reports whether a binding (with its account, if linked) matches q: the rule
// both stores implement.
func (q textQuery) matches(b Binding, a *Account) bool {
	if q.needle == "" {
		return true
	}
	if b.UnionID != "" && b.UnionID == q.raw {
		return true
	}
	if strings.Contains(identityDoc(b.Identity), q.needle) {
		return true
	}
	return a != nil && strings.Contains(accountDoc(*a), q.needle)
}

// matchesAccount reports whether an account matches q.
func (q textQuery) matchesAccount(a Account) bool {
	return q.needle == "" || strings.Contains(accountDoc(a), q.needle)
}

// pageLimit applies the default and the bounds to a requested page size.
// parseQuery validates a search request: its text, its page size, and its
// cursor of cursorParts values.
func parseQuery(q Query, cursorParts int) (textQuery, int, []string, error) {
	tq, err := prepareText(q.Text)
	if err != nil {
		return textQuery{}, 0, nil, err
	}
	if !q.Link.valid() {
		return textQuery{}, 0, nil, invalid("link", "must be linked, unlinked or empty; got %q", q.Link)
	}
	tq.link = q.Link
	if !q.Status.valid() {
		return textQuery{}, 0, nil, invalid("status", "must be enabled, disabled or empty; got %q", q.Status)
	}
	tq.status = q.Status
	tq.group = strings.TrimSpace(q.Group)
	if err := checkText("group", tq.group); err != nil {
		return textQuery{}, 0, nil, err
	}
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return textQuery{}, 0, nil, err
	}
	after, err := decodeCursor(q.After, cursorParts)
	if err != nil {
		return textQuery{}, 0, nil, err
	}
	return tq, limit, after, nil
}

func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	return n, nil
}

// Cursors are opaque to callers: base64url of the sort key's parts, separated by a byte
// that no identifier contains.
const cursorSep = "\x1f"

func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, cursorSep)))
}

func decodeCursor(c string, n int) ([]string, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.Split(string(b), cursorSep)
	if err != nil || len(parts) != n {
		return nil, invalid("after", "is not a cursor from a previous page")
	}
	return parts, nil
}
