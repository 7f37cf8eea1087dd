package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the production Store, on the tables of migration 0002 and audit_log. Each
// change is one transaction; rows about to change are locked (SELECT … FOR UPDATE), an
// identity always before an account or a request, so concurrent changes queue instead of
// overwriting each other, and the unique indexes settle the races that locks cannot
// (two new rows with one key). The common sign-in is a single UPDATE instead (signInSQL).
type Postgres struct {
	core
	pool *pgxpool.Pool
}

// NewPostgres returns a store on pool, whose database must be migrated.
func NewPostgres(pool *pgxpool.Pool, opts Options) *Postgres {
	p := &Postgres{pool: pool}
	p.core = newCore(pgBackend{pool}, opts)
	return p
}

// Pool is the pool the store works on: other parts of dingbridge keep their
// own tables in the same database (the admin console's sessions).
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

type pgBackend struct{ pool *pgxpool.Pool }

// maxAttempts bounds how often a transaction that Postgres aborted to break a deadlock or
// a serialization conflict is tried again.
const maxAttempts = 3

func (b pgBackend) write(ctx context.Context, fn func(tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, b.pool, func(t pgx.Tx) error { return fn(&pgTx{q: t, tx: t}) })
		if errors.Is(err, errRollback) || attempt == maxAttempts || !retryable(err) {
			return mapError(err)
		}
	}
}

func (b pgBackend) read(ctx context.Context, fn func(tx) error) error {
	return mapError(fn(&pgTx{q: b.pool}))
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// mapError turns what Postgres says into the package's errors, so that pgx.ErrNoRows and
// SQLSTATE 23505 never leave the package.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		switch pe.ConstraintName {
		case "accounts_pkey":
			return conflict(ConflictAccountIDTaken, "")
		case "accounts_username_key":
			return conflict(ConflictUsernameTaken, "")
		case "dingtalk_identities_pkey":
			return conflict(ConflictIdentityExists, "")
		case "dingtalk_identities_union_key":
			return conflict(ConflictUnionIDTaken, "")
		}
		return fmt.Errorf("unique index %s: %w", pe.ConstraintName, ErrConflict)
	case "23503": // foreign_key_violation: the account (or identity) is gone
		return fmt.Errorf("%s: %w", pe.ConstraintName, ErrNotFound)
	case "23514": // check_violation: the Go validation should have caught it
		return invalid(pe.ConstraintName, "violates a check constraint")
	}
	return err
}

// collect is pgx.CollectRows with the package's errors.
func collect[T any](rows pgx.Rows, fn pgx.RowToFunc[T]) ([]T, error) {
	out, err := pgx.CollectRows(rows, fn)
	return out, mapError(err)
}

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgTx implements tx. tx is nil outside a transaction (reads).
type pgTx struct {
	q  querier
	tx pgx.Tx
}

func (t *pgTx) savepoint(ctx context.Context, fn func(tx) error) error {
	return pgx.BeginFunc(ctx, t.tx, func(sp pgx.Tx) error {
		// A failed statement aborts the transaction up to the savepoint: map the error
		// now, so the caller can tell a conflict from a broken connection.
		return mapError(fn(&pgTx{q: sp, tx: sp}))
	})
}

func lockClause(l lockMode, update string) string {
	switch l {
	case lockShare:
		return " for share"
	case lockUpdate:
		return " for " + update
	}
	return ""
}

// --- accounts ---

const accountCols = `a.id, a.username, a.display_name, a.email, a.email_verified, a.phone, a.groups,
	a.disabled_at is not null, a.created_at, a.updated_at, a.version`

func scanAccount(row pgx.Row) (Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.Username, &a.DisplayName, &a.Email, &a.EmailVerified, &a.Phone, &a.Groups,
		&a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.Version)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, mapError(err)
}

// Accounts are locked "for no key update": their id never changes, so this does not block
// the foreign key checks of identities being linked to them meanwhile.
func (t *pgTx) account(ctx context.Context, id string, lock lockMode) (Account, error) {
	return scanAccount(t.q.QueryRow(ctx, `select `+accountCols+` from accounts a where a.id = $1`+lockClause(lock, "no key update"), id))
}

func (t *pgTx) accountByUsername(ctx context.Context, username string, lock lockMode) (Account, error) {
	return scanAccount(t.q.QueryRow(ctx, `select `+accountCols+` from accounts a where a.username = $1`+lockClause(lock, "no key update"), username))
}

func (t *pgTx) accountsWhere(ctx context.Context, f matchField, value string, limit int) ([]Account, error) {
	col := map[matchField]string{byUsername: "username", byEmailKey: "email_key", byPhoneKey: "phone_key", byDisplayName: "display_name"}[f]
	rows, _ := t.q.Query(ctx, `select `+accountCols+` from accounts a where a.`+col+` = $1 order by a.id limit $2`, value, limit)
	return collect(rows, func(r pgx.CollectableRow) (Account, error) { return scanAccount(r) })
}

// accountArgs are the values of the columns insertAccountSQL and updateAccountSQL write.
func accountArgs(a Account) []any {
	doc := accountDoc(a)
	return []any{a.ID, a.Username, a.DisplayName, a.Email, a.EmailVerified, a.Phone, nonNil(a.Groups), a.Disabled,
		emailKey(a.Email), phoneKey(a.Phone), doc, nonNil(cjkBigrams(nil, doc)), a.CreatedAt, a.UpdatedAt, a.Version}
}

const insertAccountSQL = `
insert into accounts (id, username, display_name, email, email_verified, phone, groups, disabled_at,
	email_key, phone_key, search_doc, search_cjk, created_at, updated_at, version)
values ($1, $2, $3, $4, $5, $6, $7, case when $8 then $14::timestamptz end,
	$9, $10, $11, $12, $13, $14, $15)`

func (t *pgTx) insertAccount(ctx context.Context, a Account) error {
	_, err := t.q.Exec(ctx, insertAccountSQL, accountArgs(a)...)
	return mapError(err)
}

const (
	updateAccountSQL = `
update accounts set username = $2, display_name = $3, email = $4, email_verified = $5, phone = $6, groups = $7,
	disabled_at = case when $8 then coalesce(disabled_at, $13) end,
	email_key = $9, phone_key = $10, search_doc = $11, search_cjk = $12, updated_at = $13, version = $14
where id = $1`

	// The identities' copy of the account's search document (see the migration).
	updateAccountCopySQL = `
update dingtalk_identities set search_account = $2, account_cjk = $3
where account_id = $1 and (search_account <> $2 or account_cjk <> $3)`
)

func (t *pgTx) updateAccount(ctx context.Context, a Account) error {
	args := accountArgs(a)
	args = append(args[:12:12], a.UpdatedAt, a.Version) // all but created_at
	tag, err := t.q.Exec(ctx, updateAccountSQL, args...)
	if err != nil {
		return mapError(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	_, err = t.q.Exec(ctx, updateAccountCopySQL, a.ID, args[10], args[11])
	return mapError(err)
}

func (t *pgTx) deleteAccount(ctx context.Context, id string) error {
	tag, err := t.q.Exec(ctx, `delete from accounts where id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return mapError(err)
}

// --- identities ---

const bindingCols = `i.corp_id, i.user_id, coalesce(i.union_id, ''), coalesce(i.open_id, ''), i.app_key,
	coalesce(i.account_id, ''), i.status = 'disabled', i.source, i.name, i.mobile, i.org_email, i.email,
	i.job_number, i.title, i.dept_ids, i.active, i.last_login_at, i.created_at, i.updated_at, i.version`

// bindingDest returns the scan destinations of bindingCols into b.
func bindingDest(b *Binding, lastLogin **time.Time) []any {
	return []any{&b.CorpID, &b.UserID, &b.UnionID, &b.OpenID, &b.AppKey, &b.AccountID, &b.Disabled, &b.Source,
		&b.Name, &b.Mobile, &b.OrgEmail, &b.Email, &b.JobNumber, &b.Title, &b.DeptIDs, &b.Active,
		lastLogin, &b.CreatedAt, &b.UpdatedAt, &b.Version}
}

func fixBinding(b *Binding, lastLogin *time.Time) {
	if lastLogin != nil {
		b.LastLoginAt = lastLogin.UTC()
	}
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
}

func scanBinding(row pgx.Row) (Binding, error) {
	var (
		b         Binding
		lastLogin *time.Time
	)
	err := row.Scan(bindingDest(&b, &lastLogin)...)
	fixBinding(&b, lastLogin)
	return b, mapError(err)
}

func (t *pgTx) binding(ctx context.Context, k Key, lock lockMode) (Binding, error) {
	return scanBinding(t.q.QueryRow(ctx, `select `+bindingCols+` from dingtalk_identities i
		where i.corp_id = $1 and i.user_id = $2`+lockClause(lock, "update"), k.CorpID, k.UserID))
}

func (t *pgTx) bindingByUnionID(ctx context.Context, corpID, unionID string, lock lockMode) (Binding, error) {
	return scanBinding(t.q.QueryRow(ctx, `select `+bindingCols+` from dingtalk_identities i
		where i.union_id = $1 and i.corp_id = $2`+lockClause(lock, "update"), unionID, corpID))
}

func (t *pgTx) bindingsByAccount(ctx context.Context, accountID string) ([]Binding, error) {
	rows, _ := t.q.Query(ctx, `select `+bindingCols+` from dingtalk_identities i
		where i.account_id = $1 order by i.corp_id, i.user_id`, accountID)
	return collect(rows, func(r pgx.CollectableRow) (Binding, error) { return scanBinding(r) })
}

// bindingArgs are the values of the columns insertBindingSQL and updateBindingSQL write.
func bindingArgs(b Binding, a *Account) []any {
	doc := identityDoc(b.Identity)
	var acctDoc string
	if a != nil {
		acctDoc = accountDoc(*a)
	}
	var lastLogin *time.Time
	if !b.LastLoginAt.IsZero() {
		lastLogin = &b.LastLoginAt
	}
	return []any{b.CorpID, b.UserID, b.UnionID, b.OpenID, b.AppKey, b.AccountID, b.Disabled, string(b.Source),
		b.Name, b.Mobile, b.OrgEmail, b.Email, b.JobNumber, b.Title, nonNil(b.DeptIDs), b.Active,
		doc, nonNil(cjkBigrams(nil, doc)), acctDoc, nonNil(cjkBigrams(nil, acctDoc)),
		lastLogin, b.CreatedAt, b.UpdatedAt, b.Version}
}

const insertBindingSQL = `
insert into dingtalk_identities (corp_id, user_id, union_id, open_id, app_key, account_id, status, disabled_at, source,
	name, mobile, org_email, email, job_number, title, dept_ids, active,
	search_doc, search_cjk, search_account, account_cjk, last_login_at, created_at, updated_at, version)
values ($1, $2, nullif($3, ''), nullif($4, ''), $5, nullif($6, ''),
	case when $7 then 'disabled' else 'active' end, case when $7 then $23::timestamptz end, $8,
	$9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`

func (t *pgTx) insertBinding(ctx context.Context, b Binding, a *Account) error {
	_, err := t.q.Exec(ctx, insertBindingSQL, bindingArgs(b, a)...)
	return mapError(err)
}

const updateBindingSQL = `
update dingtalk_identities set union_id = nullif($3, ''), open_id = nullif($4, ''), app_key = $5,
	account_id = nullif($6, ''), status = case when $7 then 'disabled' else 'active' end,
	disabled_at = case when $7 then coalesce(disabled_at, $22) end, source = $8,
	name = $9, mobile = $10, org_email = $11, email = $12, job_number = $13, title = $14, dept_ids = $15, active = $16,
	search_doc = $17, search_cjk = $18, search_account = $19, account_cjk = $20,
	last_login_at = $21, updated_at = $22, version = $23
where corp_id = $1 and user_id = $2`

func (t *pgTx) updateBinding(ctx context.Context, b Binding, a *Account) error {
	args := bindingArgs(b, a)
	args = append(args[:21:21], b.UpdatedAt, b.Version) // all but created_at
	tag, err := t.q.Exec(ctx, updateBindingSQL, args...)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return mapError(err)
}

// signInSQL records a sign-in of identity ($1, $2) in one statement (see
// signInStatement) when the row keeps its unionId: $3 is the sign-in's unionId and $4 its
// app key, compared as keepsUnionID does. It writes what RecordSignIn's transaction would
// (refresh and the sign-in time): the profile snapshot and its search document; the
// openId $5 if it came through the row's app; the sign-in time $6 if the identity is
// linked and neither it nor its account is disabled. It leaves alone what a sign-in does
// not change, which the transaction rewrites with the same values: link, status, source,
// unionId, app key, the copy of the account's search document (written whenever the link
// or the account changes), updated_at and version. So the only indexed columns it writes
// are search_doc and search_cjk, and they change only when the profile does: the update
// stays HOT (fillfactor in 0002).
//
// cur is the row and its account as the statement's snapshot sees them. The update takes
// the row's lock; if another transaction changed the row meanwhile (an administrator
// linked, unlinked or disabled it, another sign-in refreshed it), Postgres hands the
// update the newer version, which that transaction wrote: its xmin is not cur's, nothing
// is updated, and the transaction path, which reads the row again under its lock, takes
// over. The sign-in time is thus decided on the very version of the row that is written,
// and on its account as seen no earlier than that version, as in the transaction. (Not
// ctid: the planner then reads cur by a TID scan on i's ctid, and older Postgres
// releases do not recheck a TID scan's condition against the newer version.) A linked
// row whose account cannot be found is left to the transaction too, which reports it.
const signInSQL = `
with cur as (
	select c.xmin, c.account_id from dingtalk_identities c
	where c.corp_id = $1 and c.user_id = $2
		and ($3 = '' or c.union_id = $3 or (c.union_id is not null and c.app_key <> $4))
)
update dingtalk_identities i set
	name = $7, mobile = $8, org_email = $9, email = $10, job_number = $11, title = $12, dept_ids = $13, active = $14,
	search_doc = $15, search_cjk = $16,
	open_id = case when $5 <> '' and i.app_key = $4 then $5 else i.open_id end,
	last_login_at = case when a.id is not null and a.disabled_at is null and i.status = 'active' then $6 else i.last_login_at end
from cur left join accounts a on a.id = cur.account_id
where i.corp_id = $1 and i.user_id = $2 and i.xmin = cur.xmin and (cur.account_id is null or a.id is not null)
returning ` + bindingCols + `, a.id, ` + nullableAccountCols

func (b pgBackend) recordKnownSignIn(ctx context.Context, id Identity, now time.Time) (Binding, *Account, bool, error) {
	// The search document of the identity as refresh leaves it: identityDoc reads only the
	// userId and the profile, which all come from the sign-in.
	doc := identityDoc(id)
	row := b.pool.QueryRow(ctx, signInSQL, id.CorpID, id.UserID, id.UnionID, id.AppKey, id.OpenID, now,
		id.Name, id.Mobile, id.OrgEmail, id.Email, id.JobNumber, id.Title, nonNil(id.DeptIDs), id.Active,
		doc, nonNil(cjkBigrams(nil, doc)))
	bd, a, err := scanBindingAccount(row)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Binding{}, nil, false, nil
	case err != nil:
		return Binding{}, nil, false, mapError(err)
	}
	return bd, a, true, nil
}

var _ signInStatement = pgBackend{}

func (t *pgTx) deleteBinding(ctx context.Context, k Key) error {
	tag, err := t.q.Exec(ctx, `delete from dingtalk_identities where corp_id = $1 and user_id = $2`, k.CorpID, k.UserID)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return mapError(err)
}

// --- pending requests ---

const requestCols = `r.id, r.corp_id, r.user_id, r.status, r.attempts, r.first_seen_at, r.last_seen_at,
	r.suggested_account_ids, coalesce(r.account_id, ''), coalesce(r.decided_by, ''), r.decided_at, r.reason, ` + bindingCols

const requestFrom = ` from pending_requests r join dingtalk_identities i on i.corp_id = r.corp_id and i.user_id = r.user_id`

func scanRequest(row pgx.Row) (Request, error) {
	var (
		r                    Request
		decidedAt, lastLogin *time.Time
	)
	dest := append([]any{&r.ID, &r.Key.CorpID, &r.Key.UserID, &r.Status, &r.Attempts, &r.FirstSeenAt, &r.LastSeenAt,
		&r.SuggestedAccountIDs, &r.AccountID, &r.DecidedBy, &decidedAt, &r.Reason}, bindingDest(&r.Binding, &lastLogin)...)
	err := row.Scan(dest...)
	fixBinding(&r.Binding, lastLogin)
	r.FirstSeenAt, r.LastSeenAt = r.FirstSeenAt.UTC(), r.LastSeenAt.UTC()
	if decidedAt != nil {
		r.DecidedAt = decidedAt.UTC()
	}
	return r, mapError(err)
}

func (t *pgTx) request(ctx context.Context, id string, lock lockMode) (Request, error) {
	return scanRequest(t.q.QueryRow(ctx, `select `+requestCols+requestFrom+` where r.id = $1`+lockClause(lock, "update of r"), id))
}

func (t *pgTx) openRequest(ctx context.Context, k Key) (Request, error) {
	return scanRequest(t.q.QueryRow(ctx, `select `+requestCols+requestFrom+`
		where r.corp_id = $1 and r.user_id = $2 and r.status = 'open'`, k.CorpID, k.UserID))
}

func requestArgs(r Request) []any {
	var decidedAt, decidedBy, accountID any
	if r.Status != RequestOpen {
		decidedAt, decidedBy = r.DecidedAt, r.DecidedBy
	}
	if r.AccountID != "" {
		accountID = r.AccountID
	}
	return []any{r.ID, r.Key.CorpID, r.Key.UserID, string(r.Status), r.Attempts, r.FirstSeenAt, r.LastSeenAt,
		nonNil(r.SuggestedAccountIDs), accountID, decidedBy, decidedAt, r.Reason}
}

const insertRequestSQL = `
insert into pending_requests (id, corp_id, user_id, status, attempts, first_seen_at, last_seen_at,
	suggested_account_ids, account_id, decided_by, decided_at, reason)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

func (t *pgTx) insertRequest(ctx context.Context, r Request) error {
	_, err := t.q.Exec(ctx, insertRequestSQL, requestArgs(r)...)
	return mapError(err)
}

const updateRequestSQL = `
update pending_requests set status = $4, attempts = $5, first_seen_at = $6, last_seen_at = $7,
	suggested_account_ids = $8, account_id = $9, decided_by = $10, decided_at = $11, reason = $12
where id = $1 and corp_id = $2 and user_id = $3`

func (t *pgTx) updateRequest(ctx context.Context, r Request) error {
	tag, err := t.q.Exec(ctx, updateRequestSQL, requestArgs(r)...)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return mapError(err)
}

func (t *pgTx) requests(ctx context.Context, status RequestStatus, after []string, limit int) ([]Request, error) {
	sql := `select ` + requestCols + requestFrom + ` where r.status = $1`
	args := []any{string(status), limit}
	if after != nil {
		sql += ` and (r.last_seen_at, r.id) < ($3::timestamptz, $4)`
		args = append(args, after[0], after[1])
	}
	rows, _ := t.q.Query(ctx, sql+` order by r.last_seen_at desc, r.id desc limit $2`, args...)
	return collect(rows, func(r pgx.CollectableRow) (Request, error) { return scanRequest(r) })
}

// --- search ---

// searchCond is the WHERE condition for a text query on a search document and its CJK
// bigrams, with the query's arguments appended to args. It spells the indexed expressions
// exactly as the migration does, so the planner can use them.
func searchCond(q textQuery, doc, cjk string, args *[]any) string {
	arg := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	var conds []string
	if q.like != "" {
		conds = append(conds, doc+` like `+arg(q.like))
	}
	if len(q.bigrams) > 0 {
		conds = append(conds, cjk+` @> `+arg(q.bigrams))
	}
	if q.like == "" {
		// No trigram index can help (short or non-ASCII): the CJK index, if any, narrows
		// the rows and this decides; else the planner walks the page order.
		conds = append(conds, `strpos(`+doc+`, `+arg(q.needle)+`) > 0`)
	}
	return "(" + strings.Join(conds, " and ") + ")"
}

func (t *pgTx) search(ctx context.Context, q textQuery, after []string, limit int) ([]SearchResult, error) {
	sql, args := searchSQL(q, after, limit)
	rows, _ := t.q.Query(ctx, sql, args...)
	return collect(rows, func(row pgx.CollectableRow) (SearchResult, error) {
		var res SearchResult
		b, a, err := scanBindingAccount(row)
		res.Binding, res.Account = b, a
		return res, err
	})
}

// searchSQL is the identity search's query: one index-friendly condition, the page
// order of the primary key, and keyset paging.
func searchSQL(q textQuery, after []string, limit int) (string, []any) {
	args := []any{limit}
	where := []string{"true"}
	if q.needle != "" {
		cond := searchCond(q, `(i.search_doc || E'\n' || i.search_account)`, `(i.search_cjk || i.account_cjk)`, &args)
		args = append(args, q.raw)
		where[0] = "(" + cond + ` or i.union_id = $` + strconv.Itoa(len(args)) + ")"
	}
	switch q.link {
	case LinkLinked:
		where = append(where, `i.account_id is not null`)
	case LinkUnlinked:
		// Served by dingtalk_identities_unlinked_idx (0008) in page order.
		where = append(where, `i.account_id is null`)
	}
	if after != nil {
		args = append(args, after[0], after[1])
		where = append(where, fmt.Sprintf(`(i.corp_id, i.user_id) > ($%d, $%d)`, len(args)-1, len(args)))
	}
	// The page is chosen first and only its rows are joined to their accounts: joining
	// every match before the limit costs an account lookup per match.
	return `select ` + bindingCols + `, a.id, ` + nullableAccountCols + `
		from (select * from dingtalk_identities i
			where ` + strings.Join(where, " and ") + `
			order by i.corp_id, i.user_id limit $1) i
		left join accounts a on a.id = i.account_id
		order by i.corp_id, i.user_id`, args
}

// nullableAccountCols are accountCols (without the id) for a left join.
const nullableAccountCols = `coalesce(a.username, ''), coalesce(a.display_name, ''), coalesce(a.email, ''),
	coalesce(a.email_verified, false), coalesce(a.phone, ''), coalesce(a.groups, '{}'), a.disabled_at is not null,
	coalesce(a.created_at, 'epoch'), coalesce(a.updated_at, 'epoch'), coalesce(a.version, 0)`

// scanBindingAccount scans bindingCols, a.id and nullableAccountCols.
func scanBindingAccount(row pgx.Row) (Binding, *Account, error) {
	var (
		b         Binding
		lastLogin *time.Time
		aid       *string
		a         Account
	)
	dest := append(bindingDest(&b, &lastLogin), &aid, &a.Username, &a.DisplayName, &a.Email, &a.EmailVerified,
		&a.Phone, &a.Groups, &a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.Version)
	if err := row.Scan(dest...); err != nil {
		return Binding{}, nil, err
	}
	fixBinding(&b, lastLogin)
	if aid == nil {
		return b, nil, nil
	}
	a.ID, a.CreatedAt, a.UpdatedAt = *aid, a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return b, &a, nil
}

func (t *pgTx) searchAccounts(ctx context.Context, q textQuery, after []string, limit int) ([]Account, error) {
	args := []any{limit}
	where := []string{"true"}
	if q.needle != "" {
		where[0] = searchCond(q, `a.search_doc`, `a.search_cjk`, &args)
	}
	switch q.status {
	case StatusEnabled:
		where = append(where, `a.disabled_at is null`)
	case StatusDisabled:
		where = append(where, `a.disabled_at is not null`)
	}
	if q.group != "" {
		args = append(args, q.group)
		// @> rather than = any(): only @> can read the GIN index of 0011.
		where = append(where, `a.groups @> array[$`+strconv.Itoa(len(args))+`::text]`)
	}
	if after != nil {
		args = append(args, after[0])
		where = append(where, `a.username > $`+strconv.Itoa(len(args)))
	}
	// Planned for each call's values (an unnamed statement), not once for all: whether a
	// group's members are best read from its index or by walking usernames depends on how
	// many it has (see 0011), and a cached generic plan, which cannot see the group, would
	// pick one way for every group.
	rows, _ := t.q.Query(ctx, `select `+accountCols+` from accounts a where `+strings.Join(where, " and ")+
		` order by a.username limit $1`, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
	return collect(rows, func(r pgx.CollectableRow) (Account, error) { return scanAccount(r) })
}

const exportSQL = `
select ` + accountCols + `, i.corp_id is not null, ` + nullableBindingCols + `
from accounts a left join dingtalk_identities i on i.account_id = a.id
order by a.username, i.corp_id, i.user_id`

// nullableBindingCols are bindingCols for a left join.
const nullableBindingCols = `coalesce(i.corp_id, ''), coalesce(i.user_id, ''), coalesce(i.union_id, ''),
	coalesce(i.open_id, ''), coalesce(i.app_key, ''), coalesce(i.account_id, ''), coalesce(i.status = 'disabled', false),
	coalesce(i.source, ''), coalesce(i.name, ''), coalesce(i.mobile, ''), coalesce(i.org_email, ''), coalesce(i.email, ''),
	coalesce(i.job_number, ''), coalesce(i.title, ''), coalesce(i.dept_ids, '{}'), coalesce(i.active, false),
	i.last_login_at, coalesce(i.created_at, 'epoch'), coalesce(i.updated_at, 'epoch'), coalesce(i.version, 0)`

func (t *pgTx) export(ctx context.Context, fn func(Account, *Binding) error) error {
	rows, err := t.q.Query(ctx, exportSQL)
	if err != nil {
		return mapError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a         Account
			b         Binding
			has       bool
			lastLogin *time.Time
		)
		dest := append([]any{&a.ID, &a.Username, &a.DisplayName, &a.Email, &a.EmailVerified, &a.Phone, &a.Groups,
			&a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.Version, &has}, bindingDest(&b, &lastLogin)...)
		if err := rows.Scan(dest...); err != nil {
			return mapError(err)
		}
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		var bp *Binding
		if has {
			fixBinding(&b, lastLogin)
			bp = &b
		}
		if err := fn(a, bp); err != nil {
			return err
		}
	}
	return mapError(rows.Err())
}

// --- audit ---

const insertAuditSQL = `
insert into audit_log (actor, action, target_type, target_id, before, after, request_id, client_ip)
values ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)`

func (t *pgTx) appendAudit(ctx context.Context, e AuditEvent) error {
	var ip any
	if e.ClientIP.IsValid() {
		ip = e.ClientIP
	}
	_, err := t.q.Exec(ctx, insertAuditSQL, e.Actor, e.Action, e.TargetType, e.TargetID, e.Before, e.After, e.RequestID, ip)
	return mapError(err)
}

// auditEvents reads newest first by id. Each filter has an index to start from (0001:
// target, actor, BRIN on at; 0008: action); the planner picks between walking the primary
// key backwards and collecting the filter's rows, whichever reads less.
func (t *pgTx) auditEvents(ctx context.Context, f auditFilter) ([]AuditEvent, error) {
	args := []any{f.Limit}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	sql := `select id, at, actor, action, target_type, target_id, before, after, coalesce(request_id, ''),
		coalesce(host(client_ip), '') from audit_log where true`
	if f.TargetType != "" {
		sql += ` and target_type = ` + arg(f.TargetType)
		if f.TargetID != "" {
			sql += ` and target_id = ` + arg(f.TargetID)
		}
	}
	if f.Actor != "" {
		sql += ` and actor = ` + arg(f.Actor)
	}
	// Actions compare byte by byte whatever the database's locale (as in the Memory
	// store, and as audit_log_action_idx is built): a family is the range from
	// "account." up to "account/", the next byte.
	switch {
	case f.prefix:
		sql += ` and action collate "C" >= ` + arg(f.Action) + ` and action collate "C" < ` + arg(f.Action[:len(f.Action)-1]+"/")
	case f.Action != "":
		sql += ` and action collate "C" = ` + arg(f.Action)
	}
	if !f.Since.IsZero() {
		sql += ` and at >= ` + arg(f.Since)
	}
	if !f.Until.IsZero() {
		sql += ` and at < ` + arg(f.Until)
	}
	if f.before > 0 {
		sql += ` and id < ` + arg(f.before)
	}
	rows, _ := t.q.Query(ctx, sql+` order by id desc limit $1`, args...)
	return collect(rows, func(row pgx.CollectableRow) (AuditEvent, error) {
		var (
			e  AuditEvent
			ip string
		)
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &e.Before, &e.After, &e.RequestID, &ip)
		e.At = e.At.UTC()
		if ip != "" {
			e.ClientIP, _ = netip.ParseAddr(ip)
		}
		return e, err
	})
}

// --- import jobs ---

const (
	deleteExpiredJobsSQL = `delete from import_jobs where expires_at <= $1`
	insertJobSQL         = `
insert into import_jobs (id, owner, file_name, relink, state, done, total, data, report, digest, error,
	created_at, updated_at, expires_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)`
)

// CreateImportJob implements Store.
func (p *Postgres) CreateImportJob(ctx context.Context, j ImportJob) (ImportJob, error) {
	if err := validateJob(j); err != nil {
		return ImportJob{}, err
	}
	now := p.now()
	j.ID, j.CreatedAt, j.UpdatedAt = NewID(), now, now
	report, err := jobReportJSON(j.Report)
	if err != nil {
		return ImportJob{}, err
	}
	err = pgx.BeginFunc(ctx, p.pool, func(t pgx.Tx) error {
		if _, err := t.Exec(ctx, deleteExpiredJobsSQL, now); err != nil {
			return err
		}
		_, err := t.Exec(ctx, insertJobSQL, j.ID, j.Owner, j.FileName, j.Relink, j.State, j.Done, j.Total,
			nonNil(j.Data), report, j.Digest, j.Error, now, j.ExpiresAt)
		return err
	})
	if err != nil {
		return ImportJob{}, fmt.Errorf("create import job: %w", mapError(err))
	}
	return j, nil
}

func jobReportJSON(r *ImportReport) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode import report: %w", err)
	}
	return b, nil
}

// ImportJob implements Store.
func (p *Postgres) ImportJob(ctx context.Context, owner, id string, parts JobParts) (ImportJob, error) {
	// Only the parts asked for leave the database: a progress poll reads neither the file
	// nor the report.
	report, data := "null::json", "''::bytea"
	if parts&JobReport != 0 {
		report = "report"
	}
	if parts&JobData != 0 {
		data = "data"
	}
	var (
		j   ImportJob
		raw []byte
	)
	err := p.pool.QueryRow(ctx, `select id, owner, file_name, relink, state, done, total, `+report+`, `+data+`,
		digest, error, created_at, updated_at, expires_at from import_jobs
		where id = $1 and owner = $2 and expires_at > $3`, id, owner, p.now()).
		Scan(&j.ID, &j.Owner, &j.FileName, &j.Relink, &j.State, &j.Done, &j.Total, &raw, &j.Data,
			&j.Digest, &j.Error, &j.CreatedAt, &j.UpdatedAt, &j.ExpiresAt)
	if err != nil {
		return ImportJob{}, fmt.Errorf("import job %q: %w", id, mapError(err))
	}
	j.CreatedAt, j.UpdatedAt, j.ExpiresAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC(), j.ExpiresAt.UTC()
	if len(raw) > 0 && string(raw) != "null" {
		j.Report = new(ImportReport)
		if err := json.Unmarshal(raw, j.Report); err != nil {
			return ImportJob{}, fmt.Errorf("import job %q: decode report: %w", id, err)
		}
	}
	if len(j.Data) == 0 {
		j.Data = nil
	}
	return j, nil
}

const updateJobSQL = `
update import_jobs set state = $4, done = $5, total = $6, report = $7, digest = $8, error = $9,
	updated_at = $10, expires_at = $11
where id = $1 and owner = $2 and state = $3 and expires_at > $10`

// UpdateImportJob implements Store.
func (p *Postgres) UpdateImportJob(ctx context.Context, j ImportJob, from JobState) (ImportJob, error) {
	j.Data = nil
	if err := validateJob(j); err != nil {
		return ImportJob{}, err
	}
	report, err := jobReportJSON(j.Report)
	if err != nil {
		return ImportJob{}, err
	}
	now := p.now()
	tag, err := p.pool.Exec(ctx, updateJobSQL, j.ID, j.Owner, from, j.State, j.Done, j.Total, report, j.Digest, j.Error, now, j.ExpiresAt)
	if err != nil {
		return ImportJob{}, fmt.Errorf("update import job %q: %w", j.ID, mapError(err))
	}
	if tag.RowsAffected() == 0 {
		// Tell a job in another state from one that is gone.
		if _, err := p.ImportJob(ctx, j.Owner, j.ID, 0); err != nil {
			return ImportJob{}, err
		}
		return ImportJob{}, fmt.Errorf("update import job %q: not %s: %w", j.ID, from, stale(0))
	}
	j.UpdatedAt = now
	return j, nil
}

// ImportJobProgress implements Store.
func (p *Postgres) ImportJobProgress(ctx context.Context, id string, done, total int) error {
	_, err := p.pool.Exec(ctx, `update import_jobs set done = $2, total = $3, updated_at = $4
		where id = $1 and state in ('previewing', 'applying')`, id, done, total, p.now())
	if err != nil {
		return fmt.Errorf("import job %q progress: %w", id, mapError(err))
	}
	return nil
}

// DeleteExpiredImportJobs implements Store.
func (p *Postgres) DeleteExpiredImportJobs(ctx context.Context) (int, error) {
	tag, err := p.pool.Exec(ctx, deleteExpiredJobsSQL, p.now())
	if err != nil {
		return 0, fmt.Errorf("delete expired import jobs: %w", mapError(err))
	}
	return int(tag.RowsAffected()), nil
}

// --- overview ---

// exactCountLimit: where the planner expects fewer rows than this, Stats counts them;
// above, it reports the estimate. Counting reads every row (an index-only scan at best),
// which at a million rows costs more than a page may spend.
const exactCountLimit = 100_000

// Each count's rows, spelled for the index that serves it.
const (
	countAccountsSQL   = `select 1 from accounts`
	countIdentitiesSQL = `select 1 from dingtalk_identities`
	countLinkedSQL     = `select 1 from dingtalk_identities where account_id is not null` // dingtalk_identities_account_idx
	countUnlinkedSQL   = `select 1 from dingtalk_identities where account_id is null`     // dingtalk_identities_unlinked_idx (0008)
	countOpenSQL       = `select 1 from pending_requests where status = 'open'`           // pending_requests_one_open
	countSignInsSQL    = `select 1 from dingtalk_identities where last_login_at >= $1`    // no index on purpose (see 0008)

	// Failed sign-ins by reason, over a time window that audit_log_at_brin narrows.
	failuresSQL = `
select coalesce(after->>'reason', ''), count(*) from audit_log
where at >= $1 and action collate "C" in ('` + ActionSignInDeny + `', '` + ActionSignInFail + `')
group by 1`
)

func (t *pgTx) stats(ctx context.Context, q StatsQuery) (Stats, error) {
	var st Stats
	for _, c := range []struct {
		dst  *Count
		sql  string
		args []any
	}{
		{&st.Accounts, countAccountsSQL, nil},
		{&st.Identities, countIdentitiesSQL, nil},
		{&st.Linked, countLinkedSQL, nil},
		{&st.Unlinked, countUnlinkedSQL, nil},
		{&st.OpenRequests, countOpenSQL, nil},
	} {
		n, err := t.count(ctx, c.sql, c.args...)
		if err != nil {
			return Stats{}, err
		}
		*c.dst = n
	}
	var err error
	if st.SignIns, err = t.signIns(ctx, q.SignedInSince, st.Identities); err != nil {
		return Stats{}, err
	}
	rows, _ := t.q.Query(ctx, failuresSQL, q.FailuresSince)
	st.Failures, err = collect(rows, pgx.RowToStructByPos[ReasonCount])
	return st, err
}

func (t *pgTx) countOpenRequests(ctx context.Context) (Count, error) {
	return t.count(ctx, countOpenSQL)
}

// signInsSampleSQL estimates the share of identities signed in since $1 from a sample of
// $2 percent of the table's pages.
const signInsSampleSQL = `
select count(*) filter (where last_login_at >= $1), count(*)
from dingtalk_identities tablesample system ($2)`

// signIns counts the identities signed in since a time. No index serves last_login_at (see
// migration 0008: one would cost every sign-in), so counting reads the whole table: exact
// while it holds fewer than exactCountLimit rows; above, an estimate from a sample of pages
// holding about that many rows. The planner's own estimate would not do: its statistics
// only know sign-ins up to the last ANALYZE, so in the morning "today" looks empty.
func (t *pgTx) signIns(ctx context.Context, since time.Time, identities Count) (Count, error) {
	if !identities.Estimate {
		return t.count(ctx, countSignInsSQL, since)
	}
	pct := min(100, 100*float64(exactCountLimit)/float64(identities.N))
	var hits, sampled int64
	if err := t.q.QueryRow(ctx, signInsSampleSQL, since, pct).Scan(&hits, &sampled); err != nil {
		return Count{}, mapError(err)
	}
	if sampled == 0 {
		return Count{Estimate: true}, nil
	}
	return Count{N: int64(float64(hits) / float64(sampled) * float64(identities.N)), Estimate: true}, nil
}

// count counts the rows of sql (a "select 1 from …"), or returns the planner's estimate
// when that is at least exactCountLimit.
func (t *pgTx) count(ctx context.Context, sql string, args ...any) (Count, error) {
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := t.q.QueryRow(ctx, `explain (format json) `+sql, args...).Scan(&plan); err != nil {
		return Count{}, mapError(err)
	}
	if len(plan) == 1 && plan[0].Plan.Rows >= exactCountLimit {
		return Count{N: int64(plan[0].Plan.Rows), Estimate: true}, nil
	}
	var n int64
	err := t.q.QueryRow(ctx, `select count(*) from (`+sql+`) c`, args...).Scan(&n)
	return Count{N: n}, mapError(err)
}
