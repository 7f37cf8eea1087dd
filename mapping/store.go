package mapping

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Store is the mapping's storage: accounts, DingTalk identities (bindings), pending
// requests and the audit trail. Postgres is the production implementation and Memory the
// one for the demo and fast tests; both run through mappingtest.RunStoreTests.
//
// Every method that changes something takes a Meta and writes an audit row, with the
// record before and after, in the same transaction as the change. Sign-in observations
// are the exception: refreshing an identity's profile snapshot and last sign-in time, and
// counting a pending request's attempts, are not audited (creating a record is).
//
// Errors match ErrNotFound, ErrConflict (a *ConflictError says why), ErrDisabled or
// ErrInvalid (a *ValidationError names the field); database errors never leak through.
type Store interface {
	// CreateAccount creates an account. An empty ID gets a random one; an import may supply
	// one to keep the subs of an earlier provider.
	CreateAccount(ctx context.Context, m Meta, a Account) (Account, error)
	// AccountByID returns the account whose ID (OIDC sub) is id.
	AccountByID(ctx context.Context, id string) (Account, error)
	// AccountByUsername returns the account with this username (in any case).
	AccountByUsername(ctx context.Context, username string) (Account, error)
	// UpdateAccount writes a's fields (not Disabled: see SetAccountDisabled) if a.Version
	// is the current version.
	UpdateAccount(ctx context.Context, m Meta, a Account) (Account, error)
	// SetAccountDisabled disables or enables an account; doing it twice changes nothing.
	SetAccountDisabled(ctx context.Context, m Meta, id string, disabled bool) (Account, error)
	// DeleteAccount deletes an account that has no identities left.
	DeleteAccount(ctx context.Context, m Meta, id string, version int64) error
	// SearchAccounts lists accounts matching q, by username.
	SearchAccounts(ctx context.Context, q Query) (AccountPage, error)

	// CreateBinding records a DingTalk identity, linked to b.AccountID or not.
	CreateBinding(ctx context.Context, m Meta, b Binding) (Binding, error)
	// Binding returns the identity with this key.
	Binding(ctx context.Context, k Key) (Binding, error)
	// BindingByUnionID returns the identity with this unionId in the corp.
	BindingByUnionID(ctx context.Context, corpID, unionID string) (Binding, error)
	// BindingsByAccount returns the identities linked to an account, by key.
	BindingsByAccount(ctx context.Context, accountID string) ([]Binding, error)
	// UpdateBinding writes b's UnionID, OpenID and AppKey if b.Version is current.
	UpdateBinding(ctx context.Context, m Meta, b Binding) (Binding, error)
	// DeleteBinding deletes an identity and its pending requests.
	DeleteBinding(ctx context.Context, m Meta, k Key, version int64) error
	// Link links an identity that is not linked yet to an account. Of concurrent links of
	// one identity exactly one succeeds; the others get ConflictIdentityLinked.
	Link(ctx context.Context, m Meta, k Key, accountID string) (Binding, error)
	// Relink moves a linked identity to another account.
	Relink(ctx context.Context, m Meta, k Key, accountID string, version int64) (Binding, error)
	// Unlink removes an identity's link; the identity stays, with its profile.
	Unlink(ctx context.Context, m Meta, k Key, version int64) (Binding, error)
	// SetBindingDisabled disables or enables an identity (e.g. when it leaves the corp).
	SetBindingDisabled(ctx context.Context, m Meta, k Key, disabled bool) (Binding, error)
	// Search lists identities, with their accounts, matching q.
	Search(ctx context.Context, q Query) (SearchPage, error)

	// PendingRequests lists pending requests, most recently seen first.
	PendingRequests(ctx context.Context, q RequestQuery) (RequestPage, error)
	// PendingRequest returns one request.
	PendingRequest(ctx context.Context, id string) (Request, error)
	// Approve links the request's identity to an existing account.
	Approve(ctx context.Context, m Meta, requestID, accountID string) (Binding, error)
	// ApproveNewAccount creates an account and links the request's identity to it.
	ApproveNewAccount(ctx context.Context, m Meta, requestID string, a Account) (Account, Binding, error)
	// Reject closes the request without linking.
	Reject(ctx context.Context, m Meta, requestID, reason string) (Request, error)

	// RecordSignIn finds the identity by (corp, userId), else by (corp, unionId) under the
	// same app key, refreshes its profile snapshot and, when it resolves (linked, both it and
	// its account enabled), its last sign-in time. The account is nil while not linked.
	RecordSignIn(ctx context.Context, id Identity) (Binding, *Account, error)
	// AutoLink links the identity to the one active account whose field matches the
	// identity's attr, if exactly one does and it has no identity in this corp yet.
	AutoLink(ctx context.Context, m Meta, id Identity, attr Attribute) (Binding, Account, error)
	// Provision creates account a and links the identity to it (just-in-time provisioning).
	Provision(ctx context.Context, m Meta, id Identity, a Account) (Binding, Account, error)
	// RecordPending records the identity, unlinked, and opens or refreshes its pending
	// request with suggested accounts.
	RecordPending(ctx context.Context, m Meta, id Identity) (Request, error)

	// RecordEvent appends an audit row for something that changes no record.
	RecordEvent(ctx context.Context, m Meta, e Event) error
	// AuditEvents reads the first page of the audit trail, newest first (see AuditTrail).
	AuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error)

	// Import reads a CSV of links (see csv.go) and reports what each line does; with
	// opts.Apply it also does it, all or nothing.
	Import(ctx context.Context, m Meta, r io.Reader, opts ImportOptions) (ImportReport, error)
	// Export writes every account with its identities as CSV.
	Export(ctx context.Context, w io.Writer) error

	// CreateImportJob stores an administrator's upload (see importjob.go) with a new ID,
	// and deletes the jobs that have expired.
	CreateImportJob(ctx context.Context, j ImportJob) (ImportJob, error)
	// ImportJob returns owner's job, with the parts asked for; ErrNotFound when there is
	// none, it is another administrator's, or it has expired.
	ImportJob(ctx context.Context, owner, id string, parts JobParts) (ImportJob, error)
	// UpdateImportJob writes j's state, progress, report, digest, error and expiry (not
	// its data) if the job is owner's and in state from; otherwise it changes nothing and
	// returns a ConflictStale error (ErrNotFound when the job is gone).
	UpdateImportJob(ctx context.Context, j ImportJob, from JobState) (ImportJob, error)
	// ImportJobProgress records how far a running job is; quick, for progress callbacks.
	ImportJobProgress(ctx context.Context, id string, done, total int) error
	// DeleteExpiredImportJobs deletes the jobs that have expired, whoever's they are, and
	// returns how many, for a periodic clean-up. Several replicas may run it at once.
	DeleteExpiredImportJobs(ctx context.Context) (int, error)
	// AuditTrail reads one page of the audit trail, newest first, filtered by q.
	AuditTrail(ctx context.Context, q AuditQuery) (AuditPage, error)
	// Stats counts what the console's overview shows.
	Stats(ctx context.Context, q StatsQuery) (Stats, error)
	// CountOpenRequests counts the pending requests waiting for an administrator, as Stats
	// does (exact below a hundred thousand on Postgres, the planner's estimate above), in
	// one query: cheap enough for a metrics scrape.
	CountOpenRequests(ctx context.Context) (Count, error)
}

var (
	_ Store = (*Postgres)(nil)
	_ Store = (*Memory)(nil)
)

// Options configures a store.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// lockMode says how a read inside a write transaction locks the row it returns.
type lockMode int

const (
	noLock     lockMode = iota
	lockShare           // the row must not change until commit (an account being linked to)
	lockUpdate          // the row is about to change
)

// matchField is an account field that auto-link and suggestions look accounts up by.
type matchField int

const (
	byUsername matchField = iota
	byEmailKey
	byPhoneKey
	byDisplayName
)

// tx is one transaction on the mapping's tables: the primitives each store implements.
// The rules (validation, conflicts, versions, audit) are written once, in core, on top.
// Reads return ErrNotFound; writes return *ConflictError for uniqueness violations and
// ErrNotFound for a missing referenced account.
type tx interface {
	account(ctx context.Context, id string, lock lockMode) (Account, error)
	accountByUsername(ctx context.Context, username string, lock lockMode) (Account, error)
	accountsWhere(ctx context.Context, f matchField, value string, limit int) ([]Account, error)
	insertAccount(ctx context.Context, a Account) error
	// updateAccount writes every field of a (by ID), and the copy of its search document
	// that its identities hold.
	updateAccount(ctx context.Context, a Account) error
	deleteAccount(ctx context.Context, id string) error

	binding(ctx context.Context, k Key, lock lockMode) (Binding, error)
	bindingByUnionID(ctx context.Context, corpID, unionID string, lock lockMode) (Binding, error)
	bindingsByAccount(ctx context.Context, accountID string) ([]Binding, error)
	// insertBinding and updateBinding take the linked account (nil when not linked) for the
	// copy of its search document.
	insertBinding(ctx context.Context, b Binding, a *Account) error
	updateBinding(ctx context.Context, b Binding, a *Account) error
	deleteBinding(ctx context.Context, k Key) error

	request(ctx context.Context, id string, lock lockMode) (Request, error)
	// openRequest returns the identity's open request; callers hold the identity's lock.
	openRequest(ctx context.Context, k Key) (Request, error)
	insertRequest(ctx context.Context, r Request) error
	updateRequest(ctx context.Context, r Request) error
	requests(ctx context.Context, status RequestStatus, after []string, limit int) ([]Request, error)

	search(ctx context.Context, q textQuery, after []string, limit int) ([]SearchResult, error)
	searchAccounts(ctx context.Context, q textQuery, after []string, limit int) ([]Account, error)
	// export calls fn for every account, by username, with each of its identities by key
	// (once with nil for an account without any).
	export(ctx context.Context, fn func(Account, *Binding) error) error

	appendAudit(ctx context.Context, e AuditEvent) error
	// auditEvents returns up to f.Limit events passing f, newest first.
	auditEvents(ctx context.Context, f auditFilter) ([]AuditEvent, error)
	// stats counts for the overview; see Stats.
	stats(ctx context.Context, q StatsQuery) (Stats, error)
	// countOpenRequests counts open pending requests; see CountOpenRequests.
	countOpenRequests(ctx context.Context) (Count, error)

	// savepoint runs fn so that, if fn fails, what it did is undone and the transaction
	// goes on.
	savepoint(ctx context.Context, fn func(tx) error) error
}

// backend runs transactions.
type backend interface {
	// write runs fn in a transaction, committed if fn returns nil, rolled back otherwise.
	write(ctx context.Context, fn func(tx) error) error
	// read runs fn without a transaction; fn must not write.
	read(ctx context.Context, fn func(tx) error) error
}

// core implements Store on a backend; Postgres and Memory embed it.
type core struct {
	db  backend
	now func() time.Time
}

func newCore(db backend, opts Options) core {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return core{db: db, now: func() time.Time { return utc(now()) }}
}

// errRollback makes write roll back a transaction that did nothing wrong (a dry run).
var errRollback = errors.New("roll back")

// --- accounts ---

// CreateAccount implements Store.
func (c *core) CreateAccount(ctx context.Context, m Meta, a Account) (Account, error) {
	if err := validateMeta(m); err != nil {
		return Account{}, err
	}
	var out Account
	err := c.db.write(ctx, func(t tx) error {
		var err error
		out, err = c.createAccount(ctx, t, m, a)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return out, nil
}

func (c *core) createAccount(ctx context.Context, t tx, m Meta, a Account) (Account, error) {
	a = normalizeAccount(a)
	if a.ID == "" {
		a.ID = NewID()
	}
	if err := validateAccount(a); err != nil {
		return Account{}, err
	}
	if err := usernameFree(ctx, t, a); err != nil {
		return Account{}, err
	}
	now := c.now()
	a.CreatedAt, a.UpdatedAt, a.Version = now, now, 1
	if err := t.insertAccount(ctx, a); err != nil {
		return Account{}, err
	}
	return a, t.appendAudit(ctx, auditEvent(m, "account.create", "account", a.ID, nil, accountAudit(a)))
}

// AccountByID implements Store.
func (c *core) AccountByID(ctx context.Context, id string) (Account, error) {
	var a Account
	err := c.db.read(ctx, func(t tx) error {
		var err error
		a, err = t.account(ctx, id, noLock)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("account %q: %w", id, err)
	}
	return a, nil
}

// AccountByUsername implements Store.
func (c *core) AccountByUsername(ctx context.Context, username string) (Account, error) {
	username = NormalizeUsername(username)
	var a Account
	err := c.db.read(ctx, func(t tx) error {
		var err error
		a, err = t.accountByUsername(ctx, username, noLock)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("account %q: %w", username, err)
	}
	return a, nil
}

// UpdateAccount implements Store.
func (c *core) UpdateAccount(ctx context.Context, m Meta, a Account) (Account, error) {
	if err := validateMeta(m); err != nil {
		return Account{}, err
	}
	var out Account
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.account(ctx, a.ID, lockUpdate)
		if err != nil {
			return err
		}
		if cur.Version != a.Version {
			return stale(cur.Version)
		}
		out, _, err = c.updateAccount(ctx, t, m, cur, a)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("update account %q: %w", a.ID, err)
	}
	return out, nil
}

// updateAccount writes next's editable fields over cur (locked by the caller) and
// reports whether anything changed.
func (c *core) updateAccount(ctx context.Context, t tx, m Meta, cur, next Account) (Account, bool, error) {
	next = normalizeAccount(next)
	next.ID, next.Disabled, next.CreatedAt, next.UpdatedAt, next.Version = cur.ID, cur.Disabled, cur.CreatedAt, cur.UpdatedAt, cur.Version
	if err := validateAccount(next); err != nil {
		return Account{}, false, err
	}
	if sameAccount(cur, next) {
		return cur, false, nil
	}
	if err := usernameFree(ctx, t, next); err != nil {
		return Account{}, false, err
	}
	next.UpdatedAt, next.Version = c.now(), cur.Version+1
	if err := t.updateAccount(ctx, next); err != nil {
		return Account{}, false, err
	}
	return next, true, t.appendAudit(ctx, auditEvent(m, "account.update", "account", cur.ID, accountAudit(cur), accountAudit(next)))
}

// usernameFree refuses a's username if another account has it, naming that account.
// The unique index has the last word when two transactions race.
func usernameFree(ctx context.Context, t tx, a Account) error {
	other, err := t.accountByUsername(ctx, a.Username, noLock)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case other.ID != a.ID:
		return conflict(ConflictUsernameTaken, other.ID)
	}
	return nil
}

func sameAccount(a, b Account) bool {
	return a.Username == b.Username && a.DisplayName == b.DisplayName && a.Email == b.Email &&
		a.EmailVerified == b.EmailVerified && a.Phone == b.Phone && slices.Equal(a.Groups, b.Groups) &&
		a.Disabled == b.Disabled
}

// SetAccountDisabled implements Store.
func (c *core) SetAccountDisabled(ctx context.Context, m Meta, id string, disabled bool) (Account, error) {
	if err := validateMeta(m); err != nil {
		return Account{}, err
	}
	var a Account
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.account(ctx, id, lockUpdate)
		if err != nil {
			return err
		}
		a, _, err = c.setAccountDisabled(ctx, t, m, cur, disabled)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("set account %q disabled: %w", id, err)
	}
	return a, nil
}

func (c *core) setAccountDisabled(ctx context.Context, t tx, m Meta, cur Account, disabled bool) (Account, bool, error) {
	if cur.Disabled == disabled {
		return cur, false, nil
	}
	next := cur
	next.Disabled, next.UpdatedAt, next.Version = disabled, c.now(), cur.Version+1
	if err := t.updateAccount(ctx, next); err != nil {
		return Account{}, false, err
	}
	action := "account.enable"
	if disabled {
		action = "account.disable"
	}
	return next, true, t.appendAudit(ctx, auditEvent(m, action, "account", cur.ID, accountAudit(cur), accountAudit(next)))
}

// DeleteAccount implements Store.
func (c *core) DeleteAccount(ctx context.Context, m Meta, id string, version int64) error {
	if err := validateMeta(m); err != nil {
		return err
	}
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.account(ctx, id, lockUpdate)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return stale(cur.Version)
		}
		bs, err := t.bindingsByAccount(ctx, id)
		if err != nil {
			return err
		}
		if len(bs) > 0 {
			// Deleting would orphan a DingTalk identity's sign-ins; unlink first, on purpose.
			return conflict(ConflictHasIdentities, id)
		}
		if err := t.deleteAccount(ctx, id); err != nil {
			return err
		}
		return t.appendAudit(ctx, auditEvent(m, "account.delete", "account", id, accountAudit(cur), nil))
	})
	if err != nil {
		return fmt.Errorf("delete account %q: %w", id, err)
	}
	return nil
}

// SearchAccounts implements Store.
func (c *core) SearchAccounts(ctx context.Context, q Query) (AccountPage, error) {
	tq, limit, after, err := parseQuery(q, 1)
	if err != nil {
		return AccountPage{}, err
	}
	var page AccountPage
	err = c.db.read(ctx, func(t tx) error {
		page.Accounts, err = t.searchAccounts(ctx, tq, after, limit+1)
		return err
	})
	if err != nil {
		return AccountPage{}, fmt.Errorf("search accounts: %w", err)
	}
	if len(page.Accounts) > limit {
		page.Accounts = page.Accounts[:limit]
		page.Next = encodeCursor(page.Accounts[limit-1].Username)
	}
	return page, nil
}

// --- identities ---

// CreateBinding implements Store.
func (c *core) CreateBinding(ctx context.Context, m Meta, b Binding) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	b.Identity = normalizeIdentity(b.Identity)
	if err := validateIdentity(b.Identity, true); err != nil {
		return Binding{}, err
	}
	b.LastLoginAt = time.Time{} // only a sign-in sets it
	var out Binding
	err := c.db.write(ctx, func(t tx) error {
		var a *Account
		if b.AccountID != "" {
			acct, err := t.account(ctx, b.AccountID, lockShare)
			if err != nil {
				return fmt.Errorf("account %q: %w", b.AccountID, err)
			}
			a = &acct
		}
		var err error
		out, err = c.insertBinding(ctx, t, m, b, a, "")
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("create identity %s: %w", b.Key(), err)
	}
	return out, nil
}

// insertBinding creates b, linked to a (nil: not linked), with its audit row.
func (c *core) insertBinding(ctx context.Context, t tx, m Meta, b Binding, a *Account, matched Attribute) (Binding, error) {
	now := c.now()
	b.AccountID = ""
	if a != nil {
		b.AccountID = a.ID
	}
	b.Source = sourceOf(m)
	b.CreatedAt, b.UpdatedAt, b.Version = now, now, 1
	b.LastLoginAt = utc(b.LastLoginAt)
	if err := t.insertBinding(ctx, b, a); err != nil {
		return Binding{}, err
	}
	after := bindingAudit(b)
	if matched != "" {
		after = autoLinkAudit(b, matched)
	}
	return b, t.appendAudit(ctx, auditEvent(m, "identity.create", "identity", b.Key().String(), nil, after))
}

func sourceOf(m Meta) Source {
	if m.Source == "" {
		return SourceAdmin
	}
	return m.Source
}

// Binding implements Store.
func (c *core) Binding(ctx context.Context, k Key) (Binding, error) {
	var b Binding
	err := c.db.read(ctx, func(t tx) error {
		var err error
		b, err = t.binding(ctx, k, noLock)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("identity %s: %w", k, err)
	}
	return b, nil
}

// BindingByUnionID implements Store.
func (c *core) BindingByUnionID(ctx context.Context, corpID, unionID string) (Binding, error) {
	var b Binding
	err := c.db.read(ctx, func(t tx) error {
		var err error
		b, err = t.bindingByUnionID(ctx, corpID, unionID, noLock)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("identity with union id in %s: %w", corpID, err)
	}
	return b, nil
}

// BindingsByAccount implements Store.
func (c *core) BindingsByAccount(ctx context.Context, accountID string) ([]Binding, error) {
	var bs []Binding
	err := c.db.read(ctx, func(t tx) error {
		var err error
		bs, err = t.bindingsByAccount(ctx, accountID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("identities of account %q: %w", accountID, err)
	}
	return bs, nil
}

// UpdateBinding implements Store.
func (c *core) UpdateBinding(ctx context.Context, m Meta, b Binding) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	k := b.Key()
	var out Binding
	err := c.db.write(ctx, func(t tx) error {
		cur, a, err := c.lockBinding(ctx, t, k)
		if err != nil {
			return err
		}
		if cur.Version != b.Version {
			return stale(cur.Version)
		}
		out, _, err = c.updateIDs(ctx, t, m, cur, a, b.UnionID, b.OpenID, b.AppKey)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("update identity %s: %w", k, err)
	}
	return out, nil
}

// updateIDs sets an identity's unionId, openId and app key.
func (c *core) updateIDs(ctx context.Context, t tx, m Meta, cur Binding, a *Account, unionID, openID, appKey string) (Binding, bool, error) {
	next := cur
	next.UnionID, next.OpenID, next.AppKey = unionID, openID, appKey
	next.Identity = normalizeIdentity(next.Identity)
	if err := validateIdentity(next.Identity, true); err != nil {
		return Binding{}, false, err
	}
	if next.UnionID == cur.UnionID && next.OpenID == cur.OpenID && next.AppKey == cur.AppKey {
		return cur, false, nil
	}
	next, err := c.writeBinding(ctx, t, m, "identity.update", cur, next, a)
	return next, true, err
}

// writeBinding stores next over cur (locked by the caller) as an audited change.
func (c *core) writeBinding(ctx context.Context, t tx, m Meta, action string, cur, next Binding, a *Account) (Binding, error) {
	next.UpdatedAt, next.Version = c.now(), cur.Version+1
	if err := t.updateBinding(ctx, next, a); err != nil {
		return Binding{}, err
	}
	return next, t.appendAudit(ctx, auditEvent(m, action, "identity", cur.Key().String(), bindingAudit(cur), bindingAudit(next)))
}

// lockBinding locks an identity and reads its account, if linked.
func (c *core) lockBinding(ctx context.Context, t tx, k Key) (Binding, *Account, error) {
	b, err := t.binding(ctx, k, lockUpdate)
	if err != nil {
		return Binding{}, nil, err
	}
	if !b.Linked() {
		return b, nil, nil
	}
	a, err := t.account(ctx, b.AccountID, noLock)
	if err != nil {
		return Binding{}, nil, fmt.Errorf("account %q of identity %s: %w", b.AccountID, k, err)
	}
	return b, &a, nil
}

// DeleteBinding implements Store.
func (c *core) DeleteBinding(ctx context.Context, m Meta, k Key, version int64) error {
	if err := validateMeta(m); err != nil {
		return err
	}
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.binding(ctx, k, lockUpdate)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return stale(cur.Version)
		}
		if err := t.deleteBinding(ctx, k); err != nil {
			return err
		}
		return t.appendAudit(ctx, auditEvent(m, "identity.delete", "identity", k.String(), bindingAudit(cur), nil))
	})
	if err != nil {
		return fmt.Errorf("delete identity %s: %w", k, err)
	}
	return nil
}

// Link implements Store.
func (c *core) Link(ctx context.Context, m Meta, k Key, accountID string) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	var b Binding
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.binding(ctx, k, lockUpdate)
		if err != nil {
			return err
		}
		b, err = c.link(ctx, t, m, cur, accountID, RequestClosed)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("link identity %s: %w", k, err)
	}
	return b, nil
}

// link links cur (locked, not linked) to an account and settles its open request, if
// any, as closed or approved.
func (c *core) link(ctx context.Context, t tx, m Meta, cur Binding, accountID string, settle RequestStatus) (Binding, error) {
	if cur.Linked() {
		return Binding{}, conflict(ConflictIdentityLinked, cur.AccountID)
	}
	a, err := t.account(ctx, accountID, lockShare)
	if err != nil {
		return Binding{}, fmt.Errorf("account %q: %w", accountID, err)
	}
	next := cur
	next.AccountID, next.Source = a.ID, sourceOf(m)
	next, err = c.writeBinding(ctx, t, m, "identity.link", cur, next, &a)
	if err != nil {
		return Binding{}, err
	}
	return next, c.settleRequest(ctx, t, m, cur.Key(), settle, a.ID, "")
}

// settleRequest decides the identity's open request, if there is one.
func (c *core) settleRequest(ctx context.Context, t tx, m Meta, k Key, status RequestStatus, accountID, reason string) error {
	r, err := t.openRequest(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = c.decide(ctx, t, m, r, status, accountID, reason)
	return err
}

func (c *core) decide(ctx context.Context, t tx, m Meta, r Request, status RequestStatus, accountID, reason string) (Request, error) {
	next := r
	next.Status, next.AccountID, next.Reason = status, accountID, reason
	next.DecidedBy, next.DecidedAt = m.Actor, c.now()
	if err := t.updateRequest(ctx, next); err != nil {
		return Request{}, err
	}
	action := "request." + map[RequestStatus]string{RequestApproved: "approve", RequestRejected: "reject", RequestClosed: "close"}[status]
	return next, t.appendAudit(ctx, auditEvent(m, action, "request", r.ID, requestAudit(r), requestAudit(next)))
}

// Relink implements Store.
func (c *core) Relink(ctx context.Context, m Meta, k Key, accountID string, version int64) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	var b Binding
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.binding(ctx, k, lockUpdate)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return stale(cur.Version)
		}
		b, _, err = c.relink(ctx, t, m, cur, accountID)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("relink identity %s: %w", k, err)
	}
	return b, nil
}

func (c *core) relink(ctx context.Context, t tx, m Meta, cur Binding, accountID string) (Binding, bool, error) {
	if !cur.Linked() {
		return Binding{}, false, conflict(ConflictNotLinked, "")
	}
	if cur.AccountID == accountID {
		return cur, false, nil
	}
	a, err := t.account(ctx, accountID, lockShare)
	if err != nil {
		return Binding{}, false, fmt.Errorf("account %q: %w", accountID, err)
	}
	next := cur
	next.AccountID, next.Source = a.ID, sourceOf(m)
	next, err = c.writeBinding(ctx, t, m, "identity.relink", cur, next, &a)
	return next, true, err
}

// Unlink implements Store.
func (c *core) Unlink(ctx context.Context, m Meta, k Key, version int64) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	var b Binding
	err := c.db.write(ctx, func(t tx) error {
		cur, err := t.binding(ctx, k, lockUpdate)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return stale(cur.Version)
		}
		if !cur.Linked() {
			return conflict(ConflictNotLinked, "")
		}
		next := cur
		next.AccountID, next.Source = "", sourceOf(m)
		b, err = c.writeBinding(ctx, t, m, "identity.unlink", cur, next, nil)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("unlink identity %s: %w", k, err)
	}
	return b, nil
}

// SetBindingDisabled implements Store.
func (c *core) SetBindingDisabled(ctx context.Context, m Meta, k Key, disabled bool) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	var b Binding
	err := c.db.write(ctx, func(t tx) error {
		cur, a, err := c.lockBinding(ctx, t, k)
		if err != nil {
			return err
		}
		if cur.Disabled == disabled {
			b = cur
			return nil
		}
		next := cur
		next.Disabled = disabled
		action := "identity.enable"
		if disabled {
			action = "identity.disable"
		}
		b, err = c.writeBinding(ctx, t, m, action, cur, next, a)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("set identity %s disabled: %w", k, err)
	}
	return b, nil
}

// Search implements Store.
func (c *core) Search(ctx context.Context, q Query) (SearchPage, error) {
	tq, limit, after, err := parseQuery(q, 2)
	if err != nil {
		return SearchPage{}, err
	}
	var page SearchPage
	err = c.db.read(ctx, func(t tx) error {
		page.Results, err = t.search(ctx, tq, after, limit+1)
		return err
	})
	if err != nil {
		return SearchPage{}, fmt.Errorf("search identities: %w", err)
	}
	if len(page.Results) > limit {
		page.Results = page.Results[:limit]
		last := page.Results[limit-1].Binding
		page.Next = encodeCursor(last.CorpID, last.UserID)
	}
	return page, nil
}

// --- pending requests ---

// PendingRequests implements Store.
func (c *core) PendingRequests(ctx context.Context, q RequestQuery) (RequestPage, error) {
	status := q.Status
	if status == "" {
		status = RequestOpen
	}
	switch status {
	case RequestOpen, RequestApproved, RequestRejected, RequestClosed:
	default:
		return RequestPage{}, invalid("status", "unknown request status %q", status)
	}
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return RequestPage{}, err
	}
	after, err := decodeCursor(q.After, 2)
	if err != nil {
		return RequestPage{}, err
	}
	if after != nil {
		if _, err := time.Parse(time.RFC3339Nano, after[0]); err != nil {
			return RequestPage{}, invalid("after", "is not a cursor from a previous page")
		}
	}
	var page RequestPage
	err = c.db.read(ctx, func(t tx) error {
		page.Requests, err = t.requests(ctx, status, after, limit+1)
		return err
	})
	if err != nil {
		return RequestPage{}, fmt.Errorf("list pending requests: %w", err)
	}
	if len(page.Requests) > limit {
		page.Requests = page.Requests[:limit]
		last := page.Requests[limit-1]
		page.Next = encodeCursor(last.LastSeenAt.Format(time.RFC3339Nano), last.ID)
	}
	return page, nil
}

// PendingRequest implements Store.
func (c *core) PendingRequest(ctx context.Context, id string) (Request, error) {
	var r Request
	err := c.db.read(ctx, func(t tx) error {
		var err error
		r, err = t.request(ctx, id, noLock)
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("pending request %q: %w", id, err)
	}
	return r, nil
}

// lockOpenRequest locks a request's identity, then the request (the order every writer
// uses: identity first), and checks that the request is still open.
func (c *core) lockOpenRequest(ctx context.Context, t tx, id string) (Request, Binding, error) {
	r, err := t.request(ctx, id, noLock)
	if err != nil {
		return Request{}, Binding{}, err
	}
	b, err := t.binding(ctx, r.Key, lockUpdate)
	if err != nil {
		return Request{}, Binding{}, err
	}
	if r, err = t.request(ctx, id, lockUpdate); err != nil {
		return Request{}, Binding{}, err
	}
	if r.Status != RequestOpen {
		return Request{}, Binding{}, conflict(ConflictRequestDecided, r.AccountID)
	}
	return r, b, nil
}

// Approve implements Store.
func (c *core) Approve(ctx context.Context, m Meta, requestID, accountID string) (Binding, error) {
	if err := validateMeta(m); err != nil {
		return Binding{}, err
	}
	var b Binding
	err := c.db.write(ctx, func(t tx) error {
		_, cur, err := c.lockOpenRequest(ctx, t, requestID)
		if err != nil {
			return err
		}
		b, err = c.link(ctx, t, m, cur, accountID, RequestApproved)
		return err
	})
	if err != nil {
		return Binding{}, fmt.Errorf("approve request %q: %w", requestID, err)
	}
	return b, nil
}

// ApproveNewAccount implements Store.
func (c *core) ApproveNewAccount(ctx context.Context, m Meta, requestID string, a Account) (Account, Binding, error) {
	if err := validateMeta(m); err != nil {
		return Account{}, Binding{}, err
	}
	var (
		acct Account
		b    Binding
	)
	err := c.db.write(ctx, func(t tx) error {
		_, cur, err := c.lockOpenRequest(ctx, t, requestID)
		if err != nil {
			return err
		}
		if cur.Linked() {
			return conflict(ConflictIdentityLinked, cur.AccountID)
		}
		if acct, err = c.createAccount(ctx, t, m, a); err != nil {
			return err
		}
		b, err = c.link(ctx, t, m, cur, acct.ID, RequestApproved)
		return err
	})
	if err != nil {
		return Account{}, Binding{}, fmt.Errorf("approve request %q with a new account: %w", requestID, err)
	}
	return acct, b, nil
}

// Reject implements Store.
func (c *core) Reject(ctx context.Context, m Meta, requestID, reason string) (Request, error) {
	if err := validateMeta(m); err != nil {
		return Request{}, err
	}
	if len(reason) > maxReason {
		return Request{}, invalid("reason", "at most %d bytes", maxReason)
	}
	var r Request
	err := c.db.write(ctx, func(t tx) error {
		cur, b, err := c.lockOpenRequest(ctx, t, requestID)
		if err != nil {
			return err
		}
		r, err = c.decide(ctx, t, m, cur, RequestRejected, "", reason)
		r.Binding = b
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("reject request %q: %w", requestID, err)
	}
	return r, nil
}

// --- audit ---

// RecordEvent implements Store.
func (c *core) RecordEvent(ctx context.Context, m Meta, e Event) error {
	if err := validateMeta(m); err != nil {
		return err
	}
	if e.Action == "" || e.TargetType == "" {
		return invalid("event", "action and target type are required")
	}
	var detail []byte
	if e.Detail != nil {
		detail = mustJSON(e.Detail)
	}
	err := c.db.write(ctx, func(t tx) error {
		return t.appendAudit(ctx, auditEvent(m, e.Action, e.TargetType, e.TargetID, nil, detail))
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", e.Action, err)
	}
	return nil
}

// AuditEvents implements Store: the first page of AuditTrail.
func (c *core) AuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	page, err := c.AuditTrail(ctx, q)
	return page.Events, err
}
