package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

// auditActions are offered as suggestions in the action filter: families first, then
// the actions the stores and the console write.
var auditActions = []string{
	"account.", "identity.", "request.", "signin.", "admin.",
	"account.create", "account.update", "account.disable", "account.enable", "account.delete",
	"identity.create", "identity.update", "identity.link", "identity.relink", "identity.unlink",
	"identity.disable", "identity.enable", "identity.delete",
	"request.create", "request.approve", "request.reject", "request.close",
	mapping.ActionSignInDeny, mapping.ActionSignInFail, "admin.signin", "admin.denied",
}

// auditTimeLayouts are what the time filter accepts: the browser's datetime-local value,
// with or without seconds, or a day.
var auditTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

// auditFilters are the audit page's filters as the administrator typed them, kept in the
// form and in the pager's links.
type auditFilters struct {
	Actor, Action, Target, Since, Until string
}

type auditData struct {
	F       auditFilters
	Actions []string
	Zone    string
	After   string
	Events  []auditRow
	Next    string
}

// auditRow is one event as the page shows it.
type auditRow struct {
	mapping.AuditEvent
	At          string
	ActorName   string // the actor's username, when the actor is an account
	ActorID     string // the account to link to, when it is one
	TargetName  string // the target account's username, when it is one
	TargetLink  string // the target account's id, to link to
	Diff        []diffRow
	HasBefore   bool
	HasAfter    bool
	ChangedN    int
	Unstructure bool // before or after is not a JSON object: shown whole
}

// diffRow is one field of an event's before and after. Values are text, rendered
// escaped like any other text.
type diffRow struct {
	Field, Before, After string
	Changed              bool
}

// audit lists the audit trail, newest first, filtered by actor, action,
// target and time; each row opens to a field-by-field diff.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := r.URL.Query()
	f := auditFilters{
		Actor: strings.TrimSpace(v.Get("actor")), Action: strings.TrimSpace(v.Get("action")),
		Target: strings.TrimSpace(v.Get("target")), Since: strings.TrimSpace(v.Get("since")), Until: strings.TrimSpace(v.Get("until")),
	}
	p := s.newPage(r, "audit", "audit")
	loc := s.now().Location()
	d := auditData{F: f, Actions: auditActions, Zone: s.now().Format("MST -07:00"), After: v.Get("after")}
	q, errKey := s.auditQuery(r, f, loc)
	q.After = d.After
	if errKey == "" {
		page, err := s.cfg.Store.AuditTrail(ctx, q)
		switch {
		case errors.Is(err, mapping.ErrInvalid):
			errKey = "err_audit_filter"
			var ve *mapping.ValidationError
			if errors.As(err, &ve) && ve.Field == "until" {
				errKey = "err_audit_range"
			}
		case err != nil:
			s.internalError(w, r, err)
			return
		default:
			d.Events, d.Next = s.auditRows(r, page.Events, loc), page.Next
		}
	}
	p.D = d
	status := http.StatusOK
	if errKey != "" {
		p.Error, status = p.T[errKey], http.StatusBadRequest
	}
	s.render(w, r, status, "audit", p)
}

// auditQuery turns the filters into a store query: an actor or target given by
// username becomes that account's id; times are the server's.
func (s *Server) auditQuery(r *http.Request, f auditFilters, loc *time.Location) (mapping.AuditQuery, string) {
	ctx := r.Context()
	q := mapping.AuditQuery{Action: f.Action, Actor: f.Actor}
	if f.Actor != "" {
		if a, err := s.cfg.Store.AccountByUsername(ctx, f.Actor); err == nil {
			q.Actor = a.ID
		}
	}
	switch t := f.Target; {
	case t == "":
	case strings.Contains(t, "/"): // corp/user: a DingTalk identity
		q.TargetType, q.TargetID = "identity", t
	default:
		q.TargetType, q.TargetID = "account", t
		if a, err := s.cfg.Store.AccountByUsername(ctx, t); err == nil {
			q.TargetID = a.ID
		} else if _, err := s.cfg.Store.AccountByID(ctx, t); err != nil {
			if _, err := s.cfg.Store.PendingRequest(ctx, t); err == nil {
				q.TargetType = "request"
			}
		}
	}
	var ok bool
	if q.Since, ok = parseAuditTime(f.Since, loc); !ok {
		return q, "err_audit_time"
	}
	if q.Until, ok = parseAuditTime(f.Until, loc); !ok {
		return q, "err_audit_time"
	}
	if f.Until != "" && len(f.Until) == len("2006-01-02") {
		q.Until = q.Until.AddDate(0, 0, 1) // a day "until" includes that day
	}
	return q, ""
}

func parseAuditTime(s string, loc *time.Location) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range auditTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// auditRows prepares events for the page: times in the server's zone, account actors and
// targets by username, and the diff of before and after.
func (s *Server) auditRows(r *http.Request, es []mapping.AuditEvent, loc *time.Location) []auditRow {
	names := map[string]string{} // account id → username; "" when not an account
	username := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		names[id] = ""
		if a, err := s.cfg.Store.AccountByID(r.Context(), id); err == nil {
			names[id] = a.Username
		}
		return names[id]
	}
	rows := make([]auditRow, 0, len(es))
	for _, e := range es {
		row := auditRow{AuditEvent: e, At: e.At.In(loc).Format("2006-01-02 15:04:05"), HasBefore: e.Before != nil, HasAfter: e.After != nil}
		if n := username(e.Actor); n != "" {
			row.ActorName, row.ActorID = n, e.Actor
		}
		if e.TargetType == "account" {
			if n := username(e.TargetID); n != "" {
				row.TargetName, row.TargetLink = n, e.TargetID
			}
		}
		row.Diff, row.Unstructure = diff(e.Before, e.After)
		for _, d := range row.Diff {
			if d.Changed {
				row.ChangedN++
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// diff lists the fields of before and after (JSON objects), in the order they were
// written, after's new fields last; a field is changed when both sides exist and its
// values differ. Something that is not a JSON object is shown whole, as text.
func diff(before, after []byte) ([]diffRow, bool) {
	bf, bok := fields(before)
	af, aok := fields(after)
	if !bok || !aok {
		return []diffRow{{Field: "", Before: string(before), After: string(after), Changed: before != nil && after != nil && !bytes.Equal(before, after)}}, true
	}
	var rows []diffRow
	index := map[string]int{}
	for _, kv := range bf {
		index[kv.key] = len(rows)
		rows = append(rows, diffRow{Field: kv.key, Before: kv.text})
	}
	for _, kv := range af {
		if i, ok := index[kv.key]; ok {
			rows[i].After = kv.text
			continue
		}
		rows = append(rows, diffRow{Field: kv.key, After: kv.text})
	}
	if before != nil && after != nil {
		bset, aset := map[string]bool{}, map[string]bool{}
		for _, kv := range bf {
			bset[kv.key] = true
		}
		for _, kv := range af {
			aset[kv.key] = true
		}
		for i := range rows {
			rows[i].Changed = rows[i].Before != rows[i].After || bset[rows[i].Field] != aset[rows[i].Field]
		}
	}
	return rows, false
}

type jsonField struct{ key, text string }

// fields reads a JSON object's fields in order, each value as text: strings as they
// are, null as nothing, anything else as compact JSON. nil is an object without fields.
func fields(raw []byte) ([]jsonField, bool) {
	if raw == nil {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out []jsonField
	for dec.More() {
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, jsonField{key: key, text: valueText(v)})
	}
	return out, true
}

func valueText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var x any
	if string(v) == "null" || json.Unmarshal(v, &x) != nil {
		return ""
	}
	// Re-encoded without Go's HTML escaping (\u003c for <), so that the text reads as
	// written; the template escapes it for HTML.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(x) != nil {
		return string(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
