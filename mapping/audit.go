package mapping

import (
	"encoding/json"
	"time"
)

// The JSON the audit trail records as before and after. The shapes are part of the audit
// trail's meaning, so they are spelled out here rather than derived from the Go structs:
// renaming a field in Go must not silently rename it in years of history.

type accountJSON struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	DisplayName   string   `json:"display_name"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Phone         string   `json:"phone"`
	Groups        []string `json:"groups"`
	Disabled      bool     `json:"disabled"`
	Version       int64    `json:"version"`
}

type bindingJSON struct {
	CorpID    string `json:"corp_id"`
	UserID    string `json:"user_id"`
	UnionID   string `json:"union_id"`
	OpenID    string `json:"open_id"`
	AppKey    string `json:"app_key"`
	AccountID string `json:"account_id"`
	Disabled  bool   `json:"disabled"`
	Source    Source `json:"source"`
	Name      string `json:"name"`
	Version   int64  `json:"version"`
	// MatchedOn is the directory attribute an auto-link matched on.
	MatchedOn Attribute `json:"matched_on,omitempty"`
}

type requestJSON struct {
	ID                  string        `json:"id"`
	CorpID              string        `json:"corp_id"`
	UserID              string        `json:"user_id"`
	Status              RequestStatus `json:"status"`
	Attempts            int           `json:"attempts"`
	SuggestedAccountIDs []string      `json:"suggested_account_ids"`
	AccountID           string        `json:"account_id"`
	DecidedBy           string        `json:"decided_by"`
	Reason              string        `json:"reason"`
}

func accountAudit(a Account) []byte {
	groups := a.Groups
	if groups == nil {
		groups = []string{}
	}
	return mustJSON(accountJSON{a.ID, a.Username, a.DisplayName, a.Email, a.EmailVerified, a.Phone, groups, a.Disabled, a.Version})
}

func bindingAudit(b Binding) []byte {
	return mustJSON(bindingJSON{b.CorpID, b.UserID, b.UnionID, b.OpenID, b.AppKey, b.AccountID, b.Disabled, b.Source, b.Name, b.Version, ""})
}

func autoLinkAudit(b Binding, attr Attribute) []byte {
	return mustJSON(bindingJSON{b.CorpID, b.UserID, b.UnionID, b.OpenID, b.AppKey, b.AccountID, b.Disabled, b.Source, b.Name, b.Version, attr})
}

func requestAudit(r Request) []byte {
	ids := r.SuggestedAccountIDs
	if ids == nil {
		ids = []string{}
	}
	return mustJSON(requestJSON{r.ID, r.Key.CorpID, r.Key.UserID, r.Status, r.Attempts, ids, r.AccountID, r.DecidedBy, r.Reason})
}

// mustJSON marshals values that cannot fail to marshal (strings, numbers, bools).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("mapping: audit JSON: " + err.Error())
	}
	return b
}

// auditEvent builds the audit row of a change made by m.
func auditEvent(m Meta, action, targetType, targetID string, before, after []byte) AuditEvent {
	return AuditEvent{
		Actor:      m.Actor,
		Action:     action,
		TargetType: targetType,
		TargetID:   targetID,
		Before:     before,
		After:      after,
		RequestID:  m.RequestID,
		ClientIP:   m.ClientIP,
	}
}

// Event is something worth recording that changes no record: a refused sign-in, for
// instance. Detail becomes the audit row's after.
type Event struct {
	Action     string
	TargetType string
	TargetID   string
	Detail     map[string]string
}

// utc truncates t to what Postgres stores (microseconds), in UTC, so that both stores
// return the same times.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}
