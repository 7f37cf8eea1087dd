package mapping

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is the in-memory Store, for the demo and fast tests. It keeps the Postgres
// store's rules (they are shared code) and its guarantees: a transaction sees and makes
// changes all or nothing, because it works on a copy of the state that replaces the state
// only on success. Writers take turns; readers read the last committed state and, as in
// Postgres, do not wait for a writer (an import of thousands of lines is one long write).
type Memory struct {
	core
	wmu   sync.Mutex   // held by the writer
	mu    sync.RWMutex // guards the state pointer
	state *memState
	jobs  memJobs // import jobs, under their own lock (see memJobs)
}

// NewMemory returns an empty in-memory store.
func NewMemory(opts Options) *Memory {
	m := &Memory{state: newMemState()}
	m.core = newCore(memBackend{m}, opts)
	return m
}

type unionKey struct{ corpID, unionID string }

// memState is everything the store holds. Values in its maps are never modified in place,
// only replaced, so a shallow copy of the maps is a snapshot.
type memState struct {
	accounts  map[string]Account
	usernames map[string]string // username → account id
	bindings  map[Key]Binding
	unions    map[unionKey]Key
	requests  map[string]Request // without Binding; reads fill it in
	open      map[Key]string     // identity → its open request's id
	// audit is append-only; a rolled-back copy's extra events sit past the length of the
	// state that survives and are overwritten by its next appends.
	audit []AuditEvent
}

func newMemState() *memState {
	return &memState{
		accounts:  map[string]Account{},
		usernames: map[string]string{},
		bindings:  map[Key]Binding{},
		unions:    map[unionKey]Key{},
		requests:  map[string]Request{},
		open:      map[Key]string{},
	}
}

func (s *memState) clone() *memState {
	return &memState{
		accounts:  maps.Clone(s.accounts),
		usernames: maps.Clone(s.usernames),
		bindings:  maps.Clone(s.bindings),
		unions:    maps.Clone(s.unions),
		requests:  maps.Clone(s.requests),
		open:      maps.Clone(s.open),
		audit:     s.audit,
	}
}

type memBackend struct{ m *Memory }

func (b memBackend) write(ctx context.Context, fn func(tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.m.wmu.Lock()
	defer b.m.wmu.Unlock()
	// Only writers replace the state, so the one read here stays current until the swap
	// below; it is never modified in place, so readers may go on reading it meanwhile.
	work := b.m.snapshot().clone()
	if err := fn(&memTx{s: work, now: b.m.now}); err != nil {
		return err
	}
	b.m.mu.Lock()
	b.m.state = work
	b.m.mu.Unlock()
	return nil
}

func (m *Memory) snapshot() *memState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.state
}

func (b memBackend) read(ctx context.Context, fn func(tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(&memTx{s: b.m.snapshot(), now: b.m.now})
}

// memTx implements tx on a memState. Locks are no-ops: writers already take turns.
type memTx struct {
	s   *memState
	now func() time.Time
	// undo journals how to put back each map change, newest last, so that a savepoint
	// can roll back by replaying its part backwards. Copying the state instead made
	// every line of an import cost as much as the whole store.
	undo []func()
}

func (t *memTx) savepoint(ctx context.Context, fn func(tx) error) error {
	mark, audit := len(t.undo), len(t.s.audit)
	if err := fn(t); err != nil {
		for i := len(t.undo) - 1; i >= mark; i-- {
			t.undo[i]()
		}
		t.undo = t.undo[:mark]
		t.s.audit = t.s.audit[:audit]
		return err
	}
	return nil
}

// put sets m[k] = v, journaled.
func put[K comparable, V any](t *memTx, m map[K]V, k K, v V) {
	old, had := m[k]
	t.undo = append(t.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
	m[k] = v
}

// del deletes m[k], journaled.
func del[K comparable, V any](t *memTx, m map[K]V, k K) {
	old, had := m[k]
	if !had {
		return
	}
	t.undo = append(t.undo, func() { m[k] = old })
	delete(m, k)
}

func (t *memTx) account(_ context.Context, id string, _ lockMode) (Account, error) {
	a, ok := t.s.accounts[id]
	if !ok {
		return Account{}, ErrNotFound
	}
	return a.clone(), nil
}

func (t *memTx) accountByUsername(ctx context.Context, username string, lock lockMode) (Account, error) {
	id, ok := t.s.usernames[username]
	if !ok {
		return Account{}, ErrNotFound
	}
	return t.account(ctx, id, lock)
}

func (t *memTx) accountsWhere(_ context.Context, f matchField, value string, limit int) ([]Account, error) {
	var out []Account
	for _, a := range t.s.accounts {
		if fieldMatches(a, f, value) {
			out = append(out, a.clone())
		}
	}
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), limit)], nil
}

func (t *memTx) insertAccount(_ context.Context, a Account) error {
	if _, ok := t.s.accounts[a.ID]; ok {
		return conflict(ConflictAccountIDTaken, "")
	}
	if _, ok := t.s.usernames[a.Username]; ok {
		return conflict(ConflictUsernameTaken, "")
	}
	put(t, t.s.accounts, a.ID, a.clone())
	put(t, t.s.usernames, a.Username, a.ID)
	return nil
}

func (t *memTx) updateAccount(_ context.Context, a Account) error {
	cur, ok := t.s.accounts[a.ID]
	if !ok {
		return ErrNotFound
	}
	if other, ok := t.s.usernames[a.Username]; ok && other != a.ID {
		return conflict(ConflictUsernameTaken, "")
	}
	del(t, t.s.usernames, cur.Username)
	put(t, t.s.usernames, a.Username, a.ID)
	put(t, t.s.accounts, a.ID, a.clone())
	return nil
}

func (t *memTx) deleteAccount(_ context.Context, id string) error {
	a, ok := t.s.accounts[id]
	if !ok {
		return ErrNotFound
	}
	del(t, t.s.accounts, id)
	del(t, t.s.usernames, a.Username)
	return nil
}

func (t *memTx) binding(_ context.Context, k Key, _ lockMode) (Binding, error) {
	b, ok := t.s.bindings[k]
	if !ok {
		return Binding{}, ErrNotFound
	}
	return b.clone(), nil
}

func (t *memTx) bindingByUnionID(ctx context.Context, corpID, unionID string, lock lockMode) (Binding, error) {
	k, ok := t.s.unions[unionKey{corpID, unionID}]
	if !ok {
		return Binding{}, ErrNotFound
	}
	return t.binding(ctx, k, lock)
}

func (t *memTx) bindingsByAccount(_ context.Context, accountID string) ([]Binding, error) {
	var out []Binding
	for _, b := range t.s.bindings {
		if b.AccountID == accountID && accountID != "" {
			out = append(out, b.clone())
		}
	}
	slices.SortFunc(out, compareBindings)
	return out, nil
}

func compareBindings(a, b Binding) int {
	return cmp.Or(strings.Compare(a.CorpID, b.CorpID), strings.Compare(a.UserID, b.UserID))
}

// checkBinding enforces what Postgres's constraints enforce.
func (t *memTx) checkBinding(b Binding) error {
	if b.UnionID != "" {
		if k, ok := t.s.unions[unionKey{b.CorpID, b.UnionID}]; ok && k != b.Key() {
			return conflict(ConflictUnionIDTaken, "")
		}
	}
	if b.AccountID != "" {
		if _, ok := t.s.accounts[b.AccountID]; !ok {
			return ErrNotFound
		}
	}
	return nil
}

func (t *memTx) insertBinding(_ context.Context, b Binding, _ *Account) error {
	if _, ok := t.s.bindings[b.Key()]; ok {
		return conflict(ConflictIdentityExists, "")
	}
	if err := t.checkBinding(b); err != nil {
		return err
	}
	t.putBinding(b)
	return nil
}

func (t *memTx) updateBinding(_ context.Context, b Binding, _ *Account) error {
	cur, ok := t.s.bindings[b.Key()]
	if !ok {
		return ErrNotFound
	}
	if err := t.checkBinding(b); err != nil {
		return err
	}
	if cur.UnionID != "" {
		del(t, t.s.unions, unionKey{cur.CorpID, cur.UnionID})
	}
	t.putBinding(b)
	return nil
}

func (t *memTx) putBinding(b Binding) {
	b = b.clone()
	b.Identity.DeptIDs = nonNil(b.DeptIDs)
	put(t, t.s.bindings, b.Key(), b)
	if b.UnionID != "" {
		put(t, t.s.unions, unionKey{b.CorpID, b.UnionID}, b.Key())
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (t *memTx) deleteBinding(_ context.Context, k Key) error {
	b, ok := t.s.bindings[k]
	if !ok {
		return ErrNotFound
	}
	del(t, t.s.bindings, k)
	if b.UnionID != "" {
		del(t, t.s.unions, unionKey{b.CorpID, b.UnionID})
	}
	// Like the foreign key's on delete cascade.
	for id, r := range t.s.requests {
		if r.Key == k {
			del(t, t.s.requests, id)
		}
	}
	del(t, t.s.open, k)
	return nil
}

func (t *memTx) request(_ context.Context, id string, _ lockMode) (Request, error) {
	r, ok := t.s.requests[id]
	if !ok {
		return Request{}, ErrNotFound
	}
	return t.withBinding(r), nil
}

func (t *memTx) withBinding(r Request) Request {
	r = r.clone()
	r.Binding = t.s.bindings[r.Key].clone()
	return r
}

func (t *memTx) openRequest(ctx context.Context, k Key) (Request, error) {
	id, ok := t.s.open[k]
	if !ok {
		return Request{}, ErrNotFound
	}
	return t.request(ctx, id, noLock)
}

func (t *memTx) insertRequest(_ context.Context, r Request) error {
	if _, ok := t.s.bindings[r.Key]; !ok {
		return ErrNotFound
	}
	if _, ok := t.s.open[r.Key]; ok && r.Status == RequestOpen {
		return conflict(ConflictRequestDecided, "")
	}
	t.putRequest(r)
	return nil
}

func (t *memTx) updateRequest(_ context.Context, r Request) error {
	if _, ok := t.s.requests[r.ID]; !ok {
		return ErrNotFound
	}
	t.putRequest(r)
	return nil
}

func (t *memTx) putRequest(r Request) {
	r = r.clone()
	r.Binding = Binding{}
	r.SuggestedAccountIDs = nonNil(r.SuggestedAccountIDs)
	put(t, t.s.requests, r.ID, r)
	if r.Status == RequestOpen {
		put(t, t.s.open, r.Key, r.ID)
	} else if t.s.open[r.Key] == r.ID {
		del(t, t.s.open, r.Key)
	}
}

func (t *memTx) requests(_ context.Context, status RequestStatus, after []string, limit int) ([]Request, error) {
	var out []Request
	for _, r := range t.s.requests {
		if r.Status != status {
			continue
		}
		if after != nil {
			at, _ := time.Parse(time.RFC3339Nano, after[0]) // checked by the caller
			if c := r.LastSeenAt.Compare(at); c > 0 || c == 0 && r.ID >= after[1] {
				continue
			}
		}
		out = append(out, t.withBinding(r))
	}
	slices.SortFunc(out, func(a, b Request) int {
		return cmp.Or(b.LastSeenAt.Compare(a.LastSeenAt), strings.Compare(b.ID, a.ID))
	})
	return out[:min(len(out), limit)], nil
}

func (t *memTx) search(_ context.Context, q textQuery, after []string, limit int) ([]SearchResult, error) {
	keys := slices.Collect(maps.Keys(t.s.bindings))
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.CorpID, b.CorpID), strings.Compare(a.UserID, b.UserID))
	})
	var out []SearchResult
	for _, k := range keys {
		if after != nil && cmp.Or(strings.Compare(k.CorpID, after[0]), strings.Compare(k.UserID, after[1])) <= 0 {
			continue
		}
		b := t.s.bindings[k]
		var a *Account
		if acct, ok := t.s.accounts[b.AccountID]; ok {
			acct = acct.clone()
			a = &acct
		}
		if q.link.keeps(b) && q.matches(b, a) {
			out = append(out, SearchResult{Binding: b.clone(), Account: a})
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (t *memTx) searchAccounts(_ context.Context, q textQuery, after []string, limit int) ([]Account, error) {
	var out []Account
	for _, a := range t.sortedAccounts() {
		if after != nil && a.Username <= after[0] {
			continue
		}
		if q.keepsAccount(a) && q.matchesAccount(a) {
			out = append(out, a)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (t *memTx) sortedAccounts() []Account {
	out := make([]Account, 0, len(t.s.accounts))
	for _, a := range t.s.accounts {
		out = append(out, a.clone())
	}
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.Username, b.Username) })
	return out
}

func (t *memTx) export(ctx context.Context, fn func(Account, *Binding) error) error {
	byAccount := map[string][]Binding{}
	for _, b := range t.s.bindings {
		if b.Linked() {
			byAccount[b.AccountID] = append(byAccount[b.AccountID], b)
		}
	}
	for _, a := range t.sortedAccounts() {
		bs := byAccount[a.ID]
		if len(bs) == 0 {
			if err := fn(a, nil); err != nil {
				return err
			}
			continue
		}
		slices.SortFunc(bs, compareBindings)
		for _, b := range bs {
			b = b.clone()
			if err := fn(a, &b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *memTx) appendAudit(_ context.Context, e AuditEvent) error {
	e.ID = int64(len(t.s.audit)) + 1
	e.At = t.now()
	t.s.audit = append(t.s.audit, e)
	return nil
}

func (t *memTx) auditEvents(_ context.Context, f auditFilter) ([]AuditEvent, error) {
	var out []AuditEvent
	for i := len(t.s.audit) - 1; i >= 0 && len(out) < f.Limit; i-- {
		if e := t.s.audit[i]; f.keeps(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// --- import jobs ---

// memJobs holds import jobs. It has its own lock, not the mapping's: an import's progress
// callback writes to its job while the import's transaction holds the mapping's lock.
type memJobs struct {
	mu   sync.Mutex
	jobs map[string]ImportJob
}

// CreateImportJob implements Store.
func (m *Memory) CreateImportJob(ctx context.Context, j ImportJob) (ImportJob, error) {
	if err := ctx.Err(); err != nil {
		return ImportJob{}, err
	}
	if err := validateJob(j); err != nil {
		return ImportJob{}, err
	}
	now := m.now()
	j.ID, j.CreatedAt, j.UpdatedAt = NewID(), now, now
	j.Data, j.Report = slices.Clone(j.Data), cloneReport(j.Report)
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	if m.jobs.jobs == nil {
		m.jobs.jobs = map[string]ImportJob{}
	}
	for id, old := range m.jobs.jobs {
		if !old.ExpiresAt.After(now) {
			delete(m.jobs.jobs, id)
		}
	}
	m.jobs.jobs[j.ID] = j
	return j, nil
}

// ImportJob implements Store.
func (m *Memory) ImportJob(ctx context.Context, owner, id string, parts JobParts) (ImportJob, error) {
	if err := ctx.Err(); err != nil {
		return ImportJob{}, err
	}
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	j, ok := m.jobs.jobs[id]
	if !ok || j.Owner != owner || !j.ExpiresAt.After(m.now()) {
		return ImportJob{}, fmt.Errorf("import job %q: %w", id, ErrNotFound)
	}
	j.Report, j.Data = nil, nil
	if parts&JobReport != 0 {
		j.Report = cloneReport(m.jobs.jobs[id].Report)
	}
	if parts&JobData != 0 {
		j.Data = slices.Clone(m.jobs.jobs[id].Data)
	}
	return j, nil
}

// UpdateImportJob implements Store.
func (m *Memory) UpdateImportJob(ctx context.Context, j ImportJob, from JobState) (ImportJob, error) {
	if err := ctx.Err(); err != nil {
		return ImportJob{}, err
	}
	j.Data = nil
	if err := validateJob(j); err != nil {
		return ImportJob{}, err
	}
	now := m.now()
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	cur, ok := m.jobs.jobs[j.ID]
	if !ok || cur.Owner != j.Owner || !cur.ExpiresAt.After(now) {
		return ImportJob{}, fmt.Errorf("import job %q: %w", j.ID, ErrNotFound)
	}
	if cur.State != from {
		return ImportJob{}, fmt.Errorf("update import job %q: not %s: %w", j.ID, from, stale(0))
	}
	// What the Postgres store keeps: everything but the data, the file name and the
	// option, which belong to the upload.
	cur.State, cur.Done, cur.Total, cur.Report = j.State, j.Done, j.Total, cloneReport(j.Report)
	cur.Digest, cur.Error, cur.UpdatedAt, cur.ExpiresAt = j.Digest, j.Error, now, j.ExpiresAt
	m.jobs.jobs[j.ID] = cur
	j.UpdatedAt, j.FileName, j.Relink, j.CreatedAt = now, cur.FileName, cur.Relink, cur.CreatedAt
	return j, nil
}

// ImportJobProgress implements Store.
func (m *Memory) ImportJobProgress(ctx context.Context, id string, done, total int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	j, ok := m.jobs.jobs[id]
	if ok && (j.State == JobPreviewing || j.State == JobApplying) {
		j.Done, j.Total, j.UpdatedAt = done, total, m.now()
		m.jobs.jobs[id] = j
	}
	return nil
}

// DeleteExpiredImportJobs implements Store.
func (m *Memory) DeleteExpiredImportJobs(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := m.now()
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	n := 0
	for id, j := range m.jobs.jobs {
		if !j.ExpiresAt.After(now) {
			delete(m.jobs.jobs, id)
			n++
		}
	}
	return n, nil
}

// cloneReport copies a report so that the caller's and the store's share nothing.
func cloneReport(r *ImportReport) *ImportReport {
	if r == nil {
		return nil
	}
	c := *r
	c.Lines, c.Moved = slices.Clone(r.Lines), slices.Clone(r.Moved)
	for i := range c.Lines {
		c.Lines[i].Changes = slices.Clone(c.Lines[i].Changes)
	}
	return &c
}

// stats counts everything exactly: the demo's and tests' data are small.
func (t *memTx) countOpenRequests(context.Context) (Count, error) {
	return Count{N: int64(len(t.s.open))}, nil
}

func (t *memTx) stats(_ context.Context, q StatsQuery) (Stats, error) {
	st := Stats{Accounts: Count{N: int64(len(t.s.accounts))}, Identities: Count{N: int64(len(t.s.bindings))}}
	for _, b := range t.s.bindings {
		if b.Linked() {
			st.Linked.N++
		} else {
			st.Unlinked.N++
		}
		if !b.LastLoginAt.IsZero() && !b.LastLoginAt.Before(q.SignedInSince) {
			st.SignIns.N++
		}
	}
	st.OpenRequests.N = int64(len(t.s.open))
	byReason := map[string]int64{}
	for _, e := range t.s.audit {
		if (e.Action == ActionSignInDeny || e.Action == ActionSignInFail) && !e.At.Before(q.FailuresSince) {
			byReason[eventReason(e.After)]++
		}
	}
	for r, n := range byReason {
		st.Failures = append(st.Failures, ReasonCount{Reason: r, N: n})
	}
	return st, nil
}

// eventReason is the "reason" of an event's detail (a string map: Event.Detail); "" when
// there is none.
func eventReason(detail []byte) string {
	var d struct {
		Reason any `json:"reason"`
	}
	if json.Unmarshal(detail, &d) != nil {
		return ""
	}
	r, _ := d.Reason.(string)
	return r
}
