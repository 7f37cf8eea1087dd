package mapping

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is the in-memory Store, for the demo and fast tests. It keeps the Postgres
// store's rules (they are shared code) and its guarantees: a transaction sees and makes
// changes all or nothing, because it works on a copy of the state that replaces the state
// only on success. Writers take turns; readers share.
type Memory struct {
	core
	mu    sync.RWMutex
	state *memState
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
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	work := b.m.state.clone()
	if err := fn(&memTx{s: work, now: b.m.now}); err != nil {
		return err
	}
	b.m.state = work
	return nil
}

func (b memBackend) read(ctx context.Context, fn func(tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.m.mu.RLock()
	defer b.m.mu.RUnlock()
	return fn(&memTx{s: b.m.state, now: b.m.now})
}

// memTx implements tx on a memState. Locks are no-ops: writers already take turns.
type memTx struct {
	s   *memState
	now func() time.Time
}

func (t *memTx) savepoint(ctx context.Context, fn func(tx) error) error {
	work := t.s.clone()
	if err := fn(&memTx{s: work, now: t.now}); err != nil {
		return err
	}
	*t.s = *work
	return nil
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
	t.s.accounts[a.ID] = a.clone()
	t.s.usernames[a.Username] = a.ID
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
	delete(t.s.usernames, cur.Username)
	t.s.usernames[a.Username] = a.ID
	t.s.accounts[a.ID] = a.clone()
	return nil
}

func (t *memTx) deleteAccount(_ context.Context, id string) error {
	a, ok := t.s.accounts[id]
	if !ok {
		return ErrNotFound
	}
	delete(t.s.accounts, id)
	delete(t.s.usernames, a.Username)
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
		delete(t.s.unions, unionKey{cur.CorpID, cur.UnionID})
	}
	t.putBinding(b)
	return nil
}

func (t *memTx) putBinding(b Binding) {
	b = b.clone()
	b.Identity.DeptIDs = nonNil(b.DeptIDs)
	t.s.bindings[b.Key()] = b
	if b.UnionID != "" {
		t.s.unions[unionKey{b.CorpID, b.UnionID}] = b.Key()
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
	delete(t.s.bindings, k)
	if b.UnionID != "" {
		delete(t.s.unions, unionKey{b.CorpID, b.UnionID})
	}
	// Like the foreign key's on delete cascade.
	for id, r := range t.s.requests {
		if r.Key == k {
			delete(t.s.requests, id)
		}
	}
	delete(t.s.open, k)
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
	t.s.requests[r.ID] = r
	if r.Status == RequestOpen {
		t.s.open[r.Key] = r.ID
	} else if t.s.open[r.Key] == r.ID {
		delete(t.s.open, r.Key)
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
		if q.matchesAccount(a) {
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

// stats counts everything exactly: the demo's and tests' data are small.
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
