package mapping

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The shapes of identifiers (ADM-06). The migration's check constraints say the same, so
// that a row written around this package cannot break these rules either.
var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)    // account ids, corp ids
	userIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)  // DingTalk userids
	openIDPattern   = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{1,64}$`) // unionIds, openIds
	appKeyPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{0,64}$`)
	usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,63}$`)
)

// Limits on free-text fields, so that a row stays small and a page stays readable.
const (
	maxText   = 256 // display name, email, phone, profile fields
	maxGroups = 100
	maxReason = 1000
)

// NormalizeUsername returns the canonical form of a username: trimmed and lower-cased.
// Usernames are unique in that form, so "ZhangSan" and "zhangsan" cannot be two accounts.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidUsername reports whether s, normalized, is a username an account may have.
func ValidUsername(s string) bool { return usernamePattern.MatchString(NormalizeUsername(s)) }

// normalizeAccount trims a's fields, lower-cases its username, and sorts and de-duplicates
// its groups, so that equal accounts compare equal (an import of an export is all no-ops).
func normalizeAccount(a Account) Account {
	a.Username = NormalizeUsername(a.Username)
	a.DisplayName = strings.TrimSpace(a.DisplayName)
	a.Email = strings.TrimSpace(a.Email)
	a.Phone = strings.TrimSpace(a.Phone)
	groups := make([]string, 0, len(a.Groups))
	for _, g := range a.Groups {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	a.Groups = slices.Compact(groups)
	return a
}

// validateAccount checks a normalized account's fields.
func validateAccount(a Account) error {
	if a.ID != "" && !idPattern.MatchString(a.ID) {
		return invalid("account_id", "must be 1 to 64 letters, digits, - or _")
	}
	if !usernamePattern.MatchString(a.Username) {
		return invalid("username", "must be 1 to 64 characters: lower-case letters, digits and . _ @ + -, starting with a letter or digit; got %q", a.Username)
	}
	for field, v := range map[string]string{"display_name": a.DisplayName, "email": a.Email, "phone": a.Phone} {
		if err := checkText(field, v); err != nil {
			return err
		}
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t")) {
		return invalid("email", "is not an email address: %q", a.Email)
	}
	if len(a.Groups) > maxGroups {
		return invalid("groups", "at most %d groups", maxGroups)
	}
	for _, g := range a.Groups {
		if err := checkText("groups", g); err != nil {
			return err
		}
		if strings.Contains(g, ";") {
			return invalid("groups", "a group name must not contain ';' (the CSV separator): %q", g)
		}
	}
	return nil
}

// checkText refuses over-long values and control characters (a newline would also break
// the search document, whose fields are newline-separated).
func checkText(field, v string) error {
	if len(v) > maxText {
		return invalid(field, "at most %d bytes", maxText)
	}
	if !utf8.ValidString(v) {
		return invalid(field, "is not valid UTF-8")
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return invalid(field, "must not contain control characters")
	}
	return nil
}

// normalizeIdentity trims an identity's fields.
func normalizeIdentity(id Identity) Identity {
	for _, p := range []*string{&id.CorpID, &id.UserID, &id.UnionID, &id.OpenID, &id.AppKey,
		&id.Name, &id.Mobile, &id.OrgEmail, &id.Email, &id.JobNumber, &id.Title} {
		*p = strings.TrimSpace(*p)
	}
	return id
}

// validateIdentity checks a normalized identity. needUserID is false where a unionId
// alone may name the identity (resolution, union-only import lines).
func validateIdentity(id Identity, needUserID bool) error {
	if !idPattern.MatchString(id.CorpID) {
		return invalid("corp_id", "must be 1 to 64 letters, digits, - or _; got %q", id.CorpID)
	}
	switch {
	case id.UserID != "" && !userIDPattern.MatchString(id.UserID):
		return invalid("user_id", "must be 1 to 64 letters, digits and . _ @ -; got %q", id.UserID)
	case id.UserID == "" && (needUserID || id.UnionID == ""):
		return invalid("user_id", "is required")
	}
	if id.UnionID != "" && !openIDPattern.MatchString(id.UnionID) {
		return invalid("union_id", "must be 1 to 64 letters, digits and + / = _ -")
	}
	if id.OpenID != "" && !openIDPattern.MatchString(id.OpenID) {
		return invalid("open_id", "must be 1 to 64 letters, digits and + / = _ -")
	}
	if !appKeyPattern.MatchString(id.AppKey) {
		return invalid("app_key", "must be up to 64 letters, digits, - or _")
	}
	if (id.UnionID != "" || id.OpenID != "") && id.AppKey == "" {
		// BR-08: a unionId means nothing without the developer account it belongs to.
		return invalid("app_key", "is required with union_id or open_id: unionIds are only unique per DingTalk developer account")
	}
	for field, v := range map[string]string{"name": id.Name, "mobile": id.Mobile, "org_email": id.OrgEmail,
		"email": id.Email, "job_number": id.JobNumber, "title": id.Title} {
		if err := checkText(field, v); err != nil {
			return err
		}
	}
	if len(id.DeptIDs) > maxGroups {
		return invalid("dept_ids", "at most %d departments", maxGroups)
	}
	return nil
}

// validateMeta checks who is acting.
func validateMeta(m Meta) error {
	if strings.TrimSpace(m.Actor) == "" {
		return invalid("actor", "is required: every change is audited with who made it")
	}
	if m.Source != "" && !m.Source.valid() {
		return invalid("source", "unknown source %q", m.Source)
	}
	return nil
}

// emailKey is the form in which emails are compared: lower-cased.
func emailKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// phoneKey is the form in which phone numbers are compared: the digits, without China's
// country code, so "+86 185-1234-7676" equals DingTalk's "18512347676". Fewer than five
// digits is no phone number.
func phoneKey(s string) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	if strings.HasPrefix(digits, "0086") {
		digits = digits[4:]
	} else if strings.HasPrefix(digits, "86") && len(digits) == 13 {
		digits = digits[2:]
	}
	if len(digits) < 5 {
		return ""
	}
	return digits
}
