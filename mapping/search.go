package mapping

import (
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Query asks for one page of search results.
type Query struct {
	// Text is matched, ignoring case, as a substring of username, display name, email and
	// phone of accounts and DingTalk name, userId, mobile, job number and org email of
	// identities; a whole unionId matches its identity. Empty lists everything.
	Text string
	// Limit is the page size: 1 to MaxPageSize; 0 means DefaultPageSize.
	Limit int
	// After is the previous page's Next; empty for the first page.
	After string
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

// AuditQuery asks for audit events, newest first.
type AuditQuery struct {
	TargetType string // with TargetID: one record's history
	TargetID   string
	Actor      string // what one actor did
	Limit      int
}

// textQuery is a search text prepared for both stores.
type textQuery struct {
	raw     string   // trimmed, for the exact unionId match
	needle  string   // lower-cased: a substring of a search document
	like    string   // LIKE pattern for pg_trgm, or "" when no trigram can be extracted
	bigrams []string // for the CJK index, or nil
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
