package mapping

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CSV import and export of links.
//
// A file is UTF-8 CSV with a header line naming its columns, in any order:
//
//	username        required: the account's username; the account is created if it does
//	                not exist (or renamed, when account_id names an existing account)
//	account_id      optional: the account's id (OIDC sub). Given, it names the account and
//	                a new account gets it, so subs from an earlier provider survive
//	display_name, email, email_verified (true/false), phone, groups (separated by ";"),
//	disabled (true/false)
//	                optional account fields. A column that is present is authoritative
//	                (an empty cell clears the field); an absent column changes nothing
//	corp_id         the DingTalk corp; with user_id and/or union_id it names an identity
//	                that the line links to the account. Without all three, the line is
//	                about the account alone
//	user_id         the identity's userId; a new identity is created when none exists
//	union_id, app_key
//	                the identity's unionId and the app key it was obtained through (both or
//	                neither, BR-08). With union_id but no user_id the line names an
//	                identity that exists already (it signed in, or a sync recorded it)
//
// Export writes these columns and some more that import ignores: open_id,
// identity_disabled, source, dingtalk_name, job_number, mobile, org_email, last_login_at.
//
// Each line's outcome is create (something was created), update (something changed),
// no-op, conflict (the line contradicts the mapping: the identity is linked to another
// account, the username is another account's, the unionId is another identity's) or
// error (the line is malformed or names nothing). A dry run does all of it in a
// transaction that it rolls back, so what it reports is exactly what an apply does; an
// apply with any conflict or error writes nothing.
//
// Spreadsheets run cells that start with = + - @ (or a tab or carriage return) as
// formulas. Export puts a ' before such a cell, and before a cell that starts with ' (so
// that the rule can be undone); import removes one leading ' from every cell (ADM-08).

// Limits of one import (ADM-08).
const (
	MaxImportBytes = 16 << 20
	MaxImportLines = 100_000
)

// ImportOptions configures an import.
type ImportOptions struct {
	// Apply writes the changes; otherwise the import is a dry run that writes nothing.
	Apply bool
	// Relink lets a line move an identity that is linked to another account; otherwise
	// such a line is a conflict.
	Relink bool
	// Progress, when set, is told how many lines are done out of how many: once the file
	// is read, then after each line. It runs inside the import's transaction, so it must
	// be quick and must not wait for the store (it may write elsewhere, e.g. a job's
	// progress).
	Progress func(done, total int)
	// Expect, when set, is the Digest of a dry run that this import must repeat line for
	// line. If the mapping changed since, so that any line's outcome or changes differ,
	// the import writes nothing and reports Changed, with the lines as they are now.
	Expect string
}

// Outcome is what one import line does.
type Outcome string

// Outcomes of an import line.
const (
	OutcomeCreate   Outcome = "create"
	OutcomeUpdate   Outcome = "update"
	OutcomeNoop     Outcome = "no-op"
	OutcomeConflict Outcome = "conflict"
	OutcomeError    Outcome = "error"
)

// LineReport is the outcome of one line.
type LineReport struct {
	Line     int // in the file; the header is line 1
	Outcome  Outcome
	Identity Key // zero for a line about an account alone
	Username string
	Detail   string // what the line does, or why it cannot, in English
	// Changes is what a create or an update writes, field by field, so that a person can
	// judge it before applying. Values the store makes up (a new account's random id) are
	// left out: a dry run and its apply report the same changes.
	Changes []Change `json:",omitempty"`
	// Conflict is why a conflict line contradicts the mapping, and ConflictWith what it
	// collides with: the username of the account that has the identity or the username,
	// or the key of the identity that has the unionId.
	Conflict     Conflict `json:",omitempty"`
	ConflictWith string   `json:",omitempty"`
	// Field is the column an error line's problem is in ("line" for a line with the wrong
	// number of cells); empty when the line names an account that does not exist.
	Field string `json:",omitempty"`
}

// Change is one field a line changes.
type Change struct {
	// Field is an account's column (username, display_name, email, email_verified, phone,
	// groups, disabled), or of the line's identity: identity (created), linked_to (the
	// account it is linked to, by username), union_id, app_key.
	Field  string
	Before string `json:",omitempty"`
	After  string `json:",omitempty"`
}

// ImportReport is the outcome of an import, line by line.
type ImportReport struct {
	Lines   []LineReport
	Applied bool // the changes were written
	// Changed: ImportOptions.Expect was given and the lines now differ from it, so
	// nothing was written; Lines are what the import would do now.
	Changed bool `json:",omitempty"`
	// Moved lists, in line order, the identities that the lines moved from the account
	// they were linked to to another (ImportOptions.Relink), so that the caller can end
	// what was signed in through them as the old account. An import neither unlinks nor
	// disables identities (identity_disabled is export-only); linking an identity that
	// was not linked moves nothing. Like Lines it is what an apply does: written only
	// when Applied. It is not part of Digest: Lines say the same, by username.
	Moved []MovedIdentity `json:",omitempty"`
}

// MovedIdentity is an identity that an import linked to another account.
type MovedIdentity struct {
	Identity Key
	From     string // the id of the account it was linked to
}

// Digest identifies what the report's lines do, for ImportOptions.Expect: equal lines,
// equal digests.
func (r ImportReport) Digest() string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(r.Lines); err != nil {
		panic(err) // plain strings, ints and slices of them: cannot fail
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Count returns how many lines had outcome o.
func (r ImportReport) Count(o Outcome) int {
	n := 0
	for _, l := range r.Lines {
		if l.Outcome == o {
			n++
		}
	}
	return n
}

// OK reports whether no line has a conflict or an error, so that an apply writes.
func (r ImportReport) OK() bool {
	return r.Count(OutcomeConflict) == 0 && r.Count(OutcomeError) == 0
}

// Columns import understands, and those only export writes.
var (
	importColumns = []string{"account_id", "username", "display_name", "email", "email_verified", "phone",
		"groups", "disabled", "corp_id", "user_id", "union_id", "app_key"}
	exportOnlyColumns = []string{"open_id", "identity_disabled", "source", "dingtalk_name", "job_number",
		"mobile", "org_email", "last_login_at"}
)

// importLine is one parsed line: each column's value, present or not.
type importLine struct {
	num    int
	values map[string]string // only the columns the file has
	err    error             // a line that could not be parsed
}

func (l importLine) has(col string) bool   { _, ok := l.values[col]; return ok }
func (l importLine) get(col string) string { return l.values[col] }
func (l importLine) identityNamed() bool {
	return l.get("corp_id")+l.get("user_id")+l.get("union_id") != ""
}
func (l importLine) key() Key         { return Key{CorpID: l.get("corp_id"), UserID: l.get("user_id")} }
func (l importLine) username() string { return NormalizeUsername(l.get("username")) }
func (l importLine) boolean(col string) (bool, error) {
	switch strings.ToLower(l.get(col)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no", "":
		return false, nil
	}
	return false, invalid(col, "must be true or false; got %q", l.get(col))
}

// parseImport reads a whole import file. Problems with the file as a whole (size, header,
// CSV syntax) are errors; problems with one line are recorded on the line.
func parseImport(r io.Reader) ([]importLine, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read import: %w", err)
	}
	if len(data) > MaxImportBytes {
		return nil, invalid("file", "larger than %d MiB", MaxImportBytes>>20)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // spreadsheets save UTF-8 with a BOM
	cr := csv.NewReader(bytes.NewReader(data))
	header, err := cr.Read()
	if err != nil {
		return nil, invalid("header", "cannot read the header line: %v", err)
	}
	cols := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case seen[h]:
			return nil, invalid("header", "column %q appears twice", h)
		case !slices.Contains(importColumns, h) && !slices.Contains(exportOnlyColumns, h):
			return nil, invalid("header", "unknown column %q (known: %s)", h, strings.Join(importColumns, ", "))
		}
		seen[h] = true
		cols[i] = h
	}
	if !seen["username"] {
		return nil, invalid("header", "the username column is required")
	}
	var lines []importLine
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return nil, invalid("file", "%v", err)
		}
		if len(lines) >= MaxImportLines {
			return nil, invalid("file", "more than %d lines", MaxImportLines)
		}
		line, _ := cr.FieldPos(0)
		l := importLine{num: line, values: map[string]string{}}
		switch {
		case err != nil:
			l.err = invalid("line", "has %d cells, the header %d", len(rec), len(cols))
		default:
			for i, v := range rec {
				if slices.Contains(importColumns, cols[i]) {
					l.values[cols[i]] = strings.TrimSpace(unescapeCell(v))
				}
			}
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// CheckImport reads an import file as Import does, without a store, and returns how many
// lines it has, or why it cannot be imported at all (an error matching ErrInvalid: the
// size, the header, the CSV syntax).
func CheckImport(r io.Reader) (int, error) {
	lines, err := parseImport(r)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return len(lines), nil
}

// errLineFailed rolls back a line's savepoint; the line's report says why.
var errLineFailed = errors.New("import line failed")

// Import implements Store.
func (c *core) Import(ctx context.Context, m Meta, r io.Reader, opts ImportOptions) (ImportReport, error) {
	if err := validateMeta(m); err != nil {
		return ImportReport{}, err
	}
	m.Source = SourceImport
	lines, err := parseImport(r)
	if err != nil {
		return ImportReport{}, fmt.Errorf("import: %w", err)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(int, int) {}
	}
	var report ImportReport
	err = c.db.write(ctx, func(t tx) error {
		report = ImportReport{Lines: make([]LineReport, 0, len(lines))}
		progress(0, len(lines))
		for i, l := range lines {
			var (
				lr LineReport
				ce *ConflictError
				d  doing
			)
			err := t.savepoint(ctx, func(t tx) error {
				var err error
				if lr, ce, err = c.importLine(ctx, t, m, l, opts, &d); err != nil {
					return err
				}
				if lr.Outcome == OutcomeConflict || lr.Outcome == OutcomeError {
					return errLineFailed
				}
				return nil
			})
			if err != nil && !errors.Is(err, errLineFailed) {
				return fmt.Errorf("line %d: %w", l.num, err)
			}
			if ce != nil {
				// Described after the savepoint is rolled back: in Postgres a unique
				// violation aborts the statements after it until then.
				lr.ConflictWith, lr.Detail = c.describeConflict(ctx, t, ce, l)
			}
			report.Lines = append(report.Lines, lr)
			if d.moved != nil && err == nil { // a failed line's savepoint undid its move
				report.Moved = append(report.Moved, *d.moved)
			}
			progress(i+1, len(lines))
		}
		// Compared inside the transaction that would commit, so that what is written is
		// exactly what was previewed.
		if opts.Expect != "" && report.Digest() != opts.Expect {
			report.Changed = true
			return errRollback
		}
		if !opts.Apply || !report.OK() {
			return errRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		return ImportReport{}, fmt.Errorf("import: %w", err)
	}
	report.Applied = err == nil
	return report, nil
}

// importLine does what one line says, in t, recording it in d. A conflict or a malformed
// line is the report's outcome, not an error; an error is a failure of the store.
func (c *core) importLine(ctx context.Context, t tx, m Meta, l importLine, opts ImportOptions, d *doing) (LineReport, *ConflictError, error) {
	lr := LineReport{Line: l.num, Username: l.username()}
	if l.identityNamed() {
		lr.Identity = l.key()
	}
	created, err := c.importAccountAndLink(ctx, t, m, l, opts, d)
	var (
		ce  *ConflictError
		ve  *ValidationError
		did = d.did
	)
	switch {
	case err == nil && created:
		lr.Outcome, lr.Changes = OutcomeCreate, d.changes
	case err == nil && len(did) > 0:
		lr.Outcome, lr.Changes = OutcomeUpdate, d.changes
	case err == nil:
		lr.Outcome, did = OutcomeNoop, []string{"nothing to change"}
	case errors.As(err, &ce):
		lr.Outcome, lr.Conflict = OutcomeConflict, ce.Reason
		return lr, ce, nil // the caller describes it
	case errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound):
		lr.Outcome, did = OutcomeError, []string{err.Error()}
		if errors.As(err, &ve) {
			lr.Field = ve.Field
		}
	default:
		return LineReport{}, nil, err
	}
	lr.Detail = strings.Join(did, "; ")
	return lr, nil, nil
}

// doing collects what a line does: in words, field by field, and the identity it moved
// to another account.
type doing struct {
	did     []string
	changes []Change
	moved   *MovedIdentity
}

func (d *doing) change(field, before, after string) {
	if before != after {
		d.changes = append(d.changes, Change{Field: field, Before: before, After: after})
	}
}

// accountChanges records the fields in which next differs from cur (zero for a new
// account).
func (d *doing) accountChanges(cur, next Account) {
	d.change("username", cur.Username, next.Username)
	d.change("display_name", cur.DisplayName, next.DisplayName)
	d.change("email", cur.Email, next.Email)
	d.change("email_verified", boolCell(cur.EmailVerified, cur.Username != ""), boolCell(next.EmailVerified, true))
	d.change("phone", cur.Phone, next.Phone)
	d.change("groups", strings.Join(cur.Groups, ";"), strings.Join(next.Groups, ";"))
	d.change("disabled", boolCell(cur.Disabled, cur.Username != ""), boolCell(next.Disabled, true))
}

// boolCell is a boolean as a cell; "" for a field of an account that does not exist yet.
func boolCell(v, exists bool) string {
	if !exists {
		return ""
	}
	return strconv.FormatBool(v)
}

func (c *core) importAccountAndLink(ctx context.Context, t tx, m Meta, l importLine, opts ImportOptions, d *doing) (created bool, err error) {
	if l.err != nil {
		return false, l.err
	}
	a, created, err := c.importAccount(ctx, t, m, l, d)
	if err != nil || !l.identityNamed() {
		return created, err
	}
	made, err := c.importIdentity(ctx, t, m, l, a, opts, d)
	return created || made, err
}

// importAccount finds, creates or updates the line's account.
func (c *core) importAccount(ctx context.Context, t tx, m Meta, l importLine, d *doing) (Account, bool, error) {
	next := Account{ID: l.get("account_id"), Username: l.get("username")}
	var err error
	if next.EmailVerified, err = l.boolean("email_verified"); err != nil {
		return Account{}, false, err
	}
	disabled, err := l.boolean("disabled")
	if err != nil {
		return Account{}, false, err
	}
	if next.Username == "" {
		return Account{}, false, invalid("username", "is required")
	}
	var cur Account
	if next.ID != "" {
		cur, err = t.account(ctx, next.ID, lockUpdate)
	} else {
		cur, err = t.accountByUsername(ctx, NormalizeUsername(next.Username), lockUpdate)
	}
	if errors.Is(err, ErrNotFound) {
		next.DisplayName, next.Email, next.Phone = l.get("display_name"), l.get("email"), l.get("phone")
		next.Groups, next.Disabled = splitGroups(l.get("groups")), disabled
		a, err := c.createAccount(ctx, t, m, next)
		if err != nil {
			return Account{}, false, err
		}
		d.did = append(d.did, "create account "+a.Username)
		d.accountChanges(Account{}, a)
		return a, true, nil
	}
	if err != nil {
		return Account{}, false, err
	}
	// Columns the file does not have keep their values.
	next.ID = cur.ID
	next.DisplayName = pick(l, "display_name", cur.DisplayName)
	next.Email = pick(l, "email", cur.Email)
	next.Phone = pick(l, "phone", cur.Phone)
	if !l.has("email_verified") {
		next.EmailVerified = cur.EmailVerified
	}
	next.Groups = cur.Groups
	if l.has("groups") {
		next.Groups = splitGroups(l.get("groups"))
	}
	a, changed, err := c.updateAccount(ctx, t, m, cur, next)
	if err != nil {
		return Account{}, false, err
	}
	if changed {
		d.did = append(d.did, "update account "+a.Username)
	}
	if l.has("disabled") {
		if a, changed, err = c.setAccountDisabled(ctx, t, m, a, disabled); err != nil {
			return Account{}, false, err
		}
		if changed {
			d.did = append(d.did, map[bool]string{true: "disable", false: "enable"}[disabled]+" account "+a.Username)
		}
	}
	d.accountChanges(cur, a)
	return a, false, nil
}

func pick(l importLine, col, cur string) string {
	if l.has(col) {
		return l.get(col)
	}
	return cur
}

func splitGroups(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ";")
}

// importIdentity finds or creates the line's identity and links it to a.
func (c *core) importIdentity(ctx context.Context, t tx, m Meta, l importLine, a Account, opts ImportOptions, d *doing) (bool, error) {
	id := normalizeIdentity(Identity{CorpID: l.get("corp_id"), UserID: l.get("user_id"), UnionID: l.get("union_id"), AppKey: l.get("app_key")})
	if err := validateIdentity(id, false); err != nil {
		return false, err
	}
	if (id.AppKey != "") != (id.UnionID != "") {
		return false, invalid("app_key", "union_id and app_key go together (BR-08)")
	}
	var (
		cur Binding
		err error
	)
	if id.UserID != "" {
		cur, err = t.binding(ctx, id.Key(), lockUpdate)
	} else {
		cur, err = t.bindingByUnionID(ctx, id.CorpID, id.UnionID, lockUpdate)
		if err == nil && cur.AppKey != id.AppKey {
			err = ErrNotFound // another developer's unionId (BR-08)
		}
		if errors.Is(err, ErrNotFound) {
			return false, invalid("union_id", "no identity in %s has this union_id under app key %s; give its user_id to create one", id.CorpID, id.AppKey)
		}
	}
	if errors.Is(err, ErrNotFound) {
		b, err := c.insertBinding(ctx, t, m, Binding{Identity: id}, &a, "")
		if err != nil {
			return false, err
		}
		d.did = append(d.did, fmt.Sprintf("create identity %s linked to %s", b.Key(), a.Username))
		d.change("identity", "", b.Key().String())
		d.change("linked_to", "", a.Username)
		d.change("union_id", "", b.UnionID)
		d.change("app_key", "", b.AppKey)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if id.UserID != "" && id.UnionID != "" && (id.UnionID != cur.UnionID || id.AppKey != cur.AppKey) {
		acct, err := accountOf(ctx, t, cur)
		if err != nil {
			return false, err
		}
		prev := cur
		if cur, _, err = c.updateIDs(ctx, t, m, cur, acct, id.UnionID, cur.OpenID, id.AppKey); err != nil {
			return false, err
		}
		d.did = append(d.did, "set union_id of "+cur.Key().String())
		d.change("union_id", prev.UnionID, cur.UnionID)
		d.change("app_key", prev.AppKey, cur.AppKey)
	}
	switch {
	case !cur.Linked():
		if _, err := c.link(ctx, t, m, cur, a.ID, RequestClosed); err != nil {
			return false, err
		}
		d.did = append(d.did, fmt.Sprintf("link %s to %s", cur.Key(), a.Username))
		d.change("linked_to", "", a.Username)
	case cur.AccountID == a.ID:
	case opts.Relink:
		from := cur.AccountID
		if prev, err := t.account(ctx, cur.AccountID, noLock); err == nil {
			from = prev.Username
		}
		if _, _, err := c.relink(ctx, t, m, cur, a.ID); err != nil {
			return false, err
		}
		d.did = append(d.did, fmt.Sprintf("relink %s to %s", cur.Key(), a.Username))
		d.change("linked_to", from, a.Username)
		d.moved = &MovedIdentity{Identity: cur.Key(), From: cur.AccountID}
	default:
		return false, conflict(ConflictIdentityLinked, cur.AccountID)
	}
	return false, nil
}

func accountOf(ctx context.Context, t tx, b Binding) (*Account, error) {
	if !b.Linked() {
		return nil, nil
	}
	a, err := t.account(ctx, b.AccountID, noLock)
	return &a, err
}

// describeConflict says what a line contradicts, naming accounts by username: what it
// collides with, and a sentence.
func (c *core) describeConflict(ctx context.Context, t tx, ce *ConflictError, l importLine) (with, detail string) {
	who := ce.AccountID
	if who != "" {
		if a, err := t.account(ctx, who, noLock); err == nil {
			who = a.Username
		}
	}
	switch ce.Reason {
	case ConflictIdentityLinked:
		return who, fmt.Sprintf("identity %s is linked to %s, not %s (unlink it first, or import with relink)", l.key(), who, l.username())
	case ConflictUsernameTaken:
		return l.username(), fmt.Sprintf("username %s belongs to another account", l.username())
	case ConflictUnionIDTaken:
		other := ""
		if b, err := t.bindingByUnionID(ctx, strings.TrimSpace(l.get("corp_id")), strings.TrimSpace(l.get("union_id")), noLock); err == nil {
			other = b.Key().String()
		}
		return other, fmt.Sprintf("union_id %s belongs to another identity in %s", l.get("union_id"), l.get("corp_id"))
	case ConflictAccountIDTaken:
		return l.get("account_id"), fmt.Sprintf("account id %s is taken", l.get("account_id"))
	}
	return who, ce.Error()
}

// exportHeader is the export's columns, in order.
var exportHeader = []string{"account_id", "username", "display_name", "email", "email_verified", "phone",
	"groups", "disabled", "corp_id", "user_id", "union_id", "app_key", "open_id", "identity_disabled",
	"source", "dingtalk_name", "job_number", "mobile", "org_email", "last_login_at"}

// Export implements Store. It writes a UTF-8 byte order mark first, so that spreadsheets
// show Chinese names correctly; import skips it.
func (c *core) Export(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString("\ufeff"); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cw := csv.NewWriter(bw)
	if err := cw.Write(exportHeader); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err := c.db.read(ctx, func(t tx) error {
		return t.export(ctx, func(a Account, b *Binding) error {
			rec := []string{a.ID, a.Username, a.DisplayName, a.Email, strconv.FormatBool(a.EmailVerified), a.Phone,
				strings.Join(a.Groups, ";"), strconv.FormatBool(a.Disabled)}
			if b == nil {
				rec = append(rec, make([]string, len(exportHeader)-len(rec))...)
			} else {
				last := ""
				if !b.LastLoginAt.IsZero() {
					last = b.LastLoginAt.Format(time.RFC3339)
				}
				rec = append(rec, b.CorpID, b.UserID, b.UnionID, b.AppKey, b.OpenID, strconv.FormatBool(b.Disabled),
					string(b.Source), b.Name, b.JobNumber, b.Mobile, b.OrgEmail, last)
			}
			for i := range rec {
				rec[i] = escapeCell(rec[i])
			}
			return cw.Write(rec)
		})
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// escapeCell defuses a cell that a spreadsheet would run as a formula (ADM-08).
func escapeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r'", rune(s[0])) {
		return "'" + s
	}
	return s
}

// unescapeCell undoes escapeCell.
func unescapeCell(s string) string { return strings.TrimPrefix(s, "'") }
