package mappingtest

import (
	"encoding/json"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// NewStore returns a new, empty store for one test, using opts.
type NewStore func(t *testing.T, opts mapping.Options) mapping.Store

// NewPostgres is a NewStore for Postgres: a fresh migrated database per test. The calling
// package's tests must run through pgtest.Main.
func NewPostgres(t *testing.T, opts mapping.Options) mapping.Store {
	t.Helper()
	return mapping.NewPostgres(pgtest.NewDatabase(t), opts)
}

// RunStoreTests runs the conformance suite against the stores newStore makes.
func RunStoreTests(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, newStore NewStore)
	}{
		{"Accounts", testAccounts},
		{"AccountConflicts", testAccountConflicts},
		{"AccountDelete", testAccountDelete},
		{"Identities", testIdentities},
		{"LinkUnlinkRelink", testLinkUnlinkRelink},
		{"ConcurrentLinks", testConcurrentLinks},
		{"ConcurrentUsernames", testConcurrentUsernames},
		{"Disable", testDisable},
		{"Audit", testAudit},
		{"AuditTrail", testAuditTrail},
		{"Stats", testStats},
		{"Search", testSearch},
		{"SearchPaging", testSearchPaging},
		{"SearchLinkFilter", testSearchLinkFilter},
		{"SearchFollowsAccountChanges", testSearchFollowsAccount},
		{"SearchAccounts", testSearchAccounts},
		{"SearchAccountFilters", testSearchAccountFilters},
		{"Pending", testPending},
		{"PendingDecisions", testPendingDecisions},
		{"RecordSignIn", testRecordSignIn},
		{"Resolver", testResolver},
		{"ResolverRefreshesSnapshot", testResolverRefresh},
		{"ConcurrentAutoLinks", testConcurrentAutoLinks},
		{"ImportOutcomes", testImportOutcomes},
		{"ImportDryRunEqualsApply", testImportDryRunEqualsApply},
		{"ImportAllOrNothing", testImportAllOrNothing},
		{"ExportImportRoundTrip", testExportImportRoundTrip},
		{"ExportEscapesFormulas", testExportEscapesFormulas},
		{"ImportChanges", testImportChanges},
		{"ImportExpect", testImportExpect},
		{"ImportProgress", testImportProgress},
		{"ImportJobs", testImportJobs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

// clock is a settable clock, so that tests check times without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's store and clock.
type env struct {
	t     *testing.T
	s     mapping.Store
	clock *clock
}

func newEnv(t *testing.T, newStore NewStore) *env {
	t.Helper()
	c := newClock()
	return &env{t: t, s: newStore(t, mapping.Options{Now: c.Now}), clock: c}
}

// admin is the Meta of an administrator's change.
var admin = mapping.Meta{Actor: "admin-1", RequestID: "req-1", ClientIP: netip.MustParseAddr("192.0.2.1")}

func (e *env) account(username string, mods ...func(*mapping.Account)) mapping.Account {
	e.t.Helper()
	a := mapping.Account{Username: username, DisplayName: username}
	for _, m := range mods {
		m(&a)
	}
	got, err := e.s.CreateAccount(e.t.Context(), admin, a)
	if err != nil {
		e.t.Fatalf("CreateAccount(%s): %v", username, err)
	}
	return got
}

func (e *env) binding(b mapping.Binding) mapping.Binding {
	e.t.Helper()
	got, err := e.s.CreateBinding(e.t.Context(), admin, b)
	if err != nil {
		e.t.Fatalf("CreateBinding(%s): %v", b.Key(), err)
	}
	return got
}

func ident(corp, user string) mapping.Identity {
	return mapping.Identity{CorpID: corp, UserID: user}
}

func key(corp, user string) mapping.Key { return mapping.Key{CorpID: corp, UserID: user} }

// lastAudit returns the newest audit event about a target.
func (e *env) lastAudit(targetType, targetID string) mapping.AuditEvent {
	e.t.Helper()
	es := e.audit(targetType, targetID)
	if len(es) == 0 {
		e.t.Fatalf("no audit event for %s %s", targetType, targetID)
	}
	return es[0]
}

func (e *env) audit(targetType, targetID string) []mapping.AuditEvent {
	e.t.Helper()
	es, err := e.s.AuditEvents(e.t.Context(), mapping.AuditQuery{TargetType: targetType, TargetID: targetID, Limit: mapping.MaxPageSize})
	if err != nil {
		e.t.Fatalf("AuditEvents: %v", err)
	}
	return es
}

// auditCount counts the audit events (up to a page: tests write fewer).
func (e *env) auditCount() int {
	e.t.Helper()
	es, err := e.s.AuditEvents(e.t.Context(), mapping.AuditQuery{Limit: mapping.MaxPageSize})
	if err != nil {
		e.t.Fatalf("AuditEvents: %v", err)
	}
	return len(es)
}

// field decodes one field of an audit event's JSON; nil when the JSON is null.
func field(t *testing.T, raw []byte, name string) any {
	t.Helper()
	if raw == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("audit JSON %s: %v", raw, err)
	}
	return m[name]
}

// wantConflict fails unless err is a *ConflictError for reason.
func wantConflict(t *testing.T, what string, err error, reason mapping.Conflict) *mapping.ConflictError {
	t.Helper()
	var ce *mapping.ConflictError
	if !errors.As(err, &ce) || ce.Reason != reason || !errors.Is(err, mapping.ErrConflict) {
		t.Fatalf("%s: error = %v, want a conflict %s", what, err, reason)
	}
	return ce
}

func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
