package idp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ Store = (*PostgresStore)(nil)

// PostgresStore is the production Store: the tables of migration
// 0003_idp_state, shared by every replica. Everything single-use is consumed
// by one conditional UPDATE, so Postgres's row locks decide which of several
// racing replicas wins. Times are compared with the now the caller passes,
// never with the database clock.
//
// Transactions that lock rows of several tables, or several rows of one,
// lock them in one order, so that they cannot deadlock: one auth request or
// session row first, then refresh tokens in hash order, then access tokens in
// id order (see the revoke* statements). The only other multi-row writer,
// DeleteExpired, skips rows that others hold, so it never waits.
//
// Creating a token of a grant locks the grant's auth request row FOR SHARE
// (first, as the order wants) and inserts in the same transaction; a code
// replay updates that row and then revokes the grant's tokens. The row lock
// serializes the two, see ConsumeCode. Transactions run at READ COMMITTED,
// Postgres's default, which that argument relies on.
type PostgresStore struct {
	pool      *pgxpool.Pool
	batchSize int // rows DeleteExpired removes per transaction
}

// NewPostgresStore returns a PostgresStore on pool, whose database has the
// migrations applied.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore {
	return &PostgresStore{pool: pool, batchSize: 1000}
}

// dbError translates what callers branch on into this package's sentinels,
// so that pgx.ErrNoRows and SQLSTATEs never leave this file: no row is
// ErrNotFound, a unique violation ErrConflict, and any other server error
// keeps its text but not its type (it is a failure, not an answer). Other
// errors stay wrapped, so that callers still see context.DeadlineExceeded.
func dbError(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if pgErr.Code == "23505" { // unique_violation
			return fmt.Errorf("%s: %w", op, ErrConflict)
		}
		return fmt.Errorf("%s: %v", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

const authRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type,
	response_mode, code_challenge, code_challenge_method, prompt, max_age, ui_locales,
	login_hint, hint_subject, browser_id, created_at, expires_at,
	done, subject, auth_time, amr, session_id, dingtalk_corp_id, dingtalk_user_id, dingtalk_union_id`

// scanAuthRequest scans authRequestColumns from row, followed by after
// (the columns of another table read with the request).
func scanAuthRequest(row pgx.Row, after ...any) (*AuthRequest, error) {
	return scanAuthRequestAmid(row, nil, after)
}

// scanAuthRequestAmid scans authRequestColumns from row, preceded by before
// and followed by after.
func scanAuthRequestAmid(row pgx.Row, before, after []any) (*AuthRequest, error) {
	var (
		ar       AuthRequest
		authTime *time.Time
	)
	dst := append(before, &ar.ID, &ar.ClientID, &ar.RedirectURI, &ar.Scopes, &ar.State, &ar.Nonce, &ar.ResponseType,
		&ar.ResponseMode, &ar.CodeChallenge, &ar.CodeChallengeMethod, &ar.Prompt, &ar.MaxAge, &ar.UILocales,
		&ar.LoginHint, &ar.HintSubject, &ar.BrowserID, &ar.CreatedAt, &ar.ExpiresAt,
		&ar.Done, &ar.Subject, &authTime, &ar.AMR, &ar.SessionID, &ar.DingTalk.CorpID, &ar.DingTalk.UserID, &ar.DingTalk.UnionID)
	err := row.Scan(append(dst, after...)...)
	if err != nil {
		return nil, err
	}
	ar.Scopes, ar.Prompt, ar.UILocales, ar.AMR = emptyNil(ar.Scopes), emptyNil(ar.Prompt), emptyNil(ar.UILocales), emptyNil(ar.AMR)
	ar.CreatedAt, ar.ExpiresAt = ar.CreatedAt.UTC(), ar.ExpiresAt.UTC()
	if authTime != nil {
		ar.AuthTime = authTime.UTC()
	}
	return &ar, nil
}

const createAuthRequestSQL = `insert into auth_requests (` + authRequestColumns + `)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
	$19, $20, $21, $22, $23, $24, $25, $26)`

// CreateAuthRequest implements Store. An id already taken is ErrConflict.
func (s *PostgresStore) CreateAuthRequest(ctx context.Context, ar *AuthRequest) error {
	_, err := s.pool.Exec(ctx, createAuthRequestSQL,
		ar.ID, ar.ClientID, ar.RedirectURI, textArray(ar.Scopes), ar.State, ar.Nonce, ar.ResponseType,
		ar.ResponseMode, ar.CodeChallenge, ar.CodeChallengeMethod, textArray(ar.Prompt), ar.MaxAge, textArray(ar.UILocales),
		ar.LoginHint, ar.HintSubject, ar.BrowserID, ar.CreatedAt, ar.ExpiresAt,
		ar.Done, ar.Subject, nullTime(ar.AuthTime), textArray(ar.AMR), ar.SessionID, ar.DingTalk.CorpID, ar.DingTalk.UserID, ar.DingTalk.UnionID)
	if err != nil {
		return dbError("insert auth request", err)
	}
	return nil
}

const authRequestSQL = `select ` + authRequestColumns + ` from auth_requests where id = $1`

// AuthRequest implements Store.
func (s *PostgresStore) AuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	ar, err := scanAuthRequest(s.pool.QueryRow(ctx, authRequestSQL, id))
	if err != nil {
		return nil, dbError("select auth request", err)
	}
	return ar, nil
}

// authRequestWithSessionSQL reads the request and, beside it, the session
// (null columns when there is none). The subqueries keep the two tables'
// like-named columns apart.
const authRequestWithSessionSQL = `
select ar.*, s.* from (select ` + authRequestColumns + ` from auth_requests where id = $1) ar
left join (select ` + sessionColumns + ` from sso_sessions where id = $2) s on true`

// AuthRequestWithSession implements Store: one statement.
func (s *PostgresStore) AuthRequestWithSession(ctx context.Context, id, sessionID string) (*AuthRequest, *Session, error) {
	var (
		sess                               Session
		sessID, subject, corp, user, union *string
		authTime, createdAt, expiresAt     *time.Time
	)
	ar, err := scanAuthRequest(s.pool.QueryRow(ctx, authRequestWithSessionSQL, id, sessionID), // the session's columns after the request's
		&sessID, &subject, &authTime, &sess.AMR, &corp, &user, &union, &createdAt, &expiresAt, &sess.EndedAt)
	if err != nil {
		return nil, nil, dbError("select auth request and session", err)
	}
	if sessID == nil {
		return ar, nil, nil
	}
	sess.ID, sess.Subject, sess.DingTalk = *sessID, *subject, DingTalkIDs{CorpID: *corp, UserID: *user, UnionID: *union}
	sess.AuthTime, sess.CreatedAt, sess.ExpiresAt = *authTime, *createdAt, *expiresAt
	return ar, normalizeSession(&sess), nil
}

const (
	completeAuthRequestSQL = `
update auth_requests
set done = true, subject = $3, auth_time = $4, amr = $5, session_id = $6,
	dingtalk_corp_id = $7, dingtalk_user_id = $8, dingtalk_union_id = $9
where id = $1 and not done and expires_at > $2`

	authRequestLiveSQL = `select expires_at > $2 from auth_requests where id = $1`
)

// CompleteAuthRequest implements Store. An expired request is ErrNotFound
// even if it is done.
func (s *PostgresStore) CompleteAuthRequest(ctx context.Context, id string, c Completion, now time.Time) error {
	tag, err := s.pool.Exec(ctx, completeAuthRequestSQL, id, now,
		c.Subject, nullTime(c.AuthTime), textArray(c.AMR), c.SessionID, c.DingTalk.CorpID, c.DingTalk.UserID, c.DingTalk.UnionID)
	if err != nil {
		return dbError("complete auth request", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.notCompleted(ctx, id, now)
}

// notCompleted says why a completion updated no row: unknown, expired or
// done. The answer may be a moment newer than the update, which only
// matters if the request was deleted in between: not found.
func (s *PostgresStore) notCompleted(ctx context.Context, id string, now time.Time) error {
	var live bool
	if err := s.pool.QueryRow(ctx, authRequestLiveSQL, id, now).Scan(&live); err != nil {
		return dbError("complete auth request", err)
	}
	if !live {
		return fmt.Errorf("complete auth request: expired: %w", ErrNotFound)
	}
	return fmt.Errorf("complete auth request: already done: %w", ErrConflict)
}

// completeWithCodeSQL is completeAuthRequestSQL and saveCodeSQL in one
// statement: the request becomes done and gets its code together, so a
// sign-in's last write is one round trip.
const completeWithCodeSQL = `
update auth_requests
set done = true, subject = $3, auth_time = $4, amr = $5, session_id = $6,
	dingtalk_corp_id = $7, dingtalk_user_id = $8, dingtalk_union_id = $9,
	code_hash = $10, code_expires_at = $11
where id = $1 and not done and expires_at > $2`

// CompleteAuthRequestWithCode is CompleteAuthRequest followed by SaveCode,
// in one statement: both happen or neither. Its errors are
// CompleteAuthRequest's, and a code hash that another request has is
// ErrConflict.
func (s *PostgresStore) CompleteAuthRequestWithCode(ctx context.Context, id string, c Completion, codeHash string, codeExpiresAt, now time.Time) error {
	tag, err := s.pool.Exec(ctx, completeWithCodeSQL, id, now,
		c.Subject, nullTime(c.AuthTime), textArray(c.AMR), c.SessionID, c.DingTalk.CorpID, c.DingTalk.UserID, c.DingTalk.UnionID,
		codeHash, codeExpiresAt)
	if err != nil {
		return dbError("complete auth request", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.notCompleted(ctx, id, now)
}

// startSessionWithCodeSQL is completeWithCodeSQL and createSessionSQL in
// one statement, the completion taking its values from the session ($5…
// $14, createSessionSQL's columns): the session is inserted only if the
// update completed the request, and a failed insert (a taken id) undoes
// the update. So a sign-in's last write is one round trip, and a request
// that could not be completed leaves no session behind.
const startSessionWithCodeSQL = `
with a as (
	update auth_requests
	set done = true, subject = $6, auth_time = $7, amr = $8, session_id = $5,
		dingtalk_corp_id = $9, dingtalk_user_id = $10, dingtalk_union_id = $11,
		code_hash = $3, code_expires_at = $4
	where id = $1 and not done and expires_at > $2
	returning id
)
insert into sso_sessions (` + sessionColumns + `)
select $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 from a`

// StartSessionWithCode implements Store.
func (s *PostgresStore) StartSessionWithCode(ctx context.Context, sess *Session, authRequestID, codeHash string, codeExpiresAt, now time.Time) error {
	tag, err := s.pool.Exec(ctx, startSessionWithCodeSQL, authRequestID, now, codeHash, codeExpiresAt,
		sess.ID, sess.Subject, sess.AuthTime, textArray(sess.AMR), sess.DingTalk.CorpID, sess.DingTalk.UserID, sess.DingTalk.UnionID,
		sess.CreatedAt, sess.ExpiresAt, sess.EndedAt)
	if err != nil {
		return dbError("start session and complete auth request", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.notCompleted(ctx, authRequestID, now)
}

const (
	saveCodeSQL = `
update auth_requests set code_hash = $2, code_expires_at = $3
where id = $1 and done and code_hash is null`

	authRequestExistsSQL = `select exists (select 1 from auth_requests where id = $1)`
)

// SaveCode implements Store. A request that is not done yet gets no code
// (ErrConflict): a code must never stand for an unauthenticated request. A
// hash that another request already has is ErrConflict too.
func (s *PostgresStore) SaveCode(ctx context.Context, authRequestID, codeHash string, expiresAt time.Time) error {
	tag, err := s.pool.Exec(ctx, saveCodeSQL, authRequestID, codeHash, expiresAt)
	if err != nil {
		return dbError("save code", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, authRequestExistsSQL, authRequestID).Scan(&exists); err != nil {
		return dbError("save code", err)
	}
	if !exists {
		return fmt.Errorf("save code: %w", ErrNotFound)
	}
	return fmt.Errorf("save code: request not done or has a code: %w", ErrConflict)
}

const (
	// consumeCodeSQL is the whole of single use: of concurrent updates of one
	// row, the first takes the row lock, the others wait for it to commit and
	// then find consumed_at set, so they update nothing.
	consumeCodeSQL = `
update auth_requests set consumed_at = $2
where code_hash = $1 and consumed_at is null and code_expires_at > $2
returning ` + authRequestColumns

	// replayCodeSQL marks the grant of a consumed code revoked, keeping the
	// first time, and returns the grant's id; an unknown code or one that
	// expired unconsumed matches nothing. Its row lock (FOR NO KEY UPDATE)
	// conflicts with the FOR SHARE of grantOf2 and grantOf4.
	replayCodeSQL = `
update auth_requests set grant_revoked_at = coalesce(grant_revoked_at, $2)
where code_hash = $1 and consumed_at is not null
returning id`
)

// ConsumeCode implements Store. A consumed code is a replay even after it
// expired, as long as its tombstone exists. The replay's mark and revocation
// commit in the transaction that found the replay, which holds the request's
// row (first in the lock order) from the mark on.
//
// The mark is what makes the revocation complete. Token creation of the
// grant (createInGrant) holds the row FOR SHARE from its check of the mark
// until its insert commits. So the replay's update waits until every
// creation that got the row before it has committed, and the revoke
// statements after it, each reading a snapshot taken when it starts, see
// those tokens and revoke them; a creation that asks for the row later
// waits for the replay to commit and then reads the mark, and fails. A
// token of the grant is thus revoked or never stored, including the tokens
// of the exchange that won the code, which are created after this call.
func (s *PostgresStore) ConsumeCode(ctx context.Context, codeHash string, now time.Time) (*AuthRequest, error) {
	var replayed bool
	// The consuming update is atomic on its own; only a replay needs a
	// transaction, for its mark and revocation. So the common case is one
	// statement, and a failed consume starts the replay's transaction.
	ar, err := scanAuthRequest(s.pool.QueryRow(ctx, consumeCodeSQL, codeHash, now))
	if err == nil {
		return ar, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, dbError("consume code", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, replayCodeSQL, codeHash, now).Scan(&id); err != nil {
			return err // unknown, or expired unconsumed: ErrNoRows
		}
		replayed = true
		return revoke(ctx, tx, revokeRefreshByGrantSQL, revokeAccessByGrantSQL, id, now)
	})
	switch {
	case err != nil:
		return nil, dbError("consume code", err)
	case replayed:
		return nil, ErrCodeReplayed
	}
	return nil, fmt.Errorf("consume code: %w", ErrNotFound)
}

// The revoke statements revoke, at $2, the tokens of one grant, family or
// session ($1) that are not revoked yet, keeping earlier revocation times.
// Each locks its rows in key order before it updates them (the lock order of
// PostgresStore), and a transaction runs the refresh statement before the
// access one.
const (
	revokeRefreshByGrantSQL = `
update refresh_tokens set revoked_at = $2 where hash in (
	select hash from refresh_tokens where grant_id = $1 and revoked_at is null order by hash for update
)`
	revokeAccessByGrantSQL = `
update access_tokens set revoked_at = $2 where id in (
	select id from access_tokens where grant_id = $1 and revoked_at is null order by id for update
)`
	revokeRefreshByFamilySQL = `
update refresh_tokens set revoked_at = $2 where hash in (
	select hash from refresh_tokens where family_id = $1 and revoked_at is null order by hash for update
)`
	revokeAccessByFamilySQL = `
update access_tokens set revoked_at = $2 where id in (
	select id from access_tokens where family_id = $1 and revoked_at is null order by id for update
)`
	revokeRefreshBySessionSQL = `
update refresh_tokens set revoked_at = $2 where hash in (
	select hash from refresh_tokens where session_id = $1 and revoked_at is null order by hash for update
)`
	revokeAccessBySessionSQL = `
update access_tokens set revoked_at = $2 where id in (
	select id from access_tokens where session_id = $1 and revoked_at is null order by id for update
)`
)

// revoke runs a pair of revoke statements in tx, refresh tokens first.
func revoke(ctx context.Context, tx pgx.Tx, refreshSQL, accessSQL, id string, now time.Time) error {
	if _, err := tx.Exec(ctx, refreshSQL, id, now); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, accessSQL, id, now)
	return err
}

// revokeTx runs a pair of revoke statements in a transaction of their own.
func (s *PostgresStore) revokeTx(ctx context.Context, refreshSQL, accessSQL, id string, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return revoke(ctx, tx, refreshSQL, accessSQL, id, now)
	})
}

const accessTokenColumns = `id, grant_id, family_id, session_id, client_id, subject, scopes, audience,
	auth_time, amr, dingtalk_corp_id, dingtalk_user_id, dingtalk_union_id, created_at, expires_at, revoked_at`

const (
	createAccessTokenSQL = `insert into access_tokens (` + accessTokenColumns + `)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

	// createAccessTokenInGrantSQL is createAccessTokenSQL for a token of
	// grant $2, unless a code replay revoked it: see createInGrant.
	createAccessTokenInGrantSQL = `with ` + grantOf2 + `
insert into access_tokens (` + accessTokenColumns + `)
select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
where not exists (select from g where revoked)`
)

// grantOf2 and grantOf4 read, as the common table expression g, whether
// the grant (the auth request whose id is parameter $2 or $4) is revoked,
// and hold its row until the transaction ends. FOR SHARE, because it must
// conflict with replayCodeSQL's update of a non-key column, which FOR KEY
// SHARE does not; and not FOR UPDATE, so that creations of one grant do not
// wait for each other. A grant id that names no request (never stored, or
// garbage-collected) reads nothing and locks nothing.
const (
	grantOf2 = `g as (select grant_revoked_at is not null as revoked from auth_requests where id = $2 for share)`
	grantOf4 = `g as (select grant_revoked_at is not null as revoked from auth_requests where id = $4 for share)`
)

// CreateAccessToken implements Store. An id already taken is ErrConflict.
func (s *PostgresStore) CreateAccessToken(ctx context.Context, t *AccessToken) error {
	err := s.createInGrant(ctx, t.GrantID, createAccessTokenSQL, createAccessTokenInGrantSQL, accessTokenArgs(t)...)
	if err != nil {
		return dbError("insert access token", err)
	}
	return nil
}

// accessTokenArgs are the arguments of createAccessTokenSQL.
func accessTokenArgs(t *AccessToken) []any {
	return []any{t.ID, t.GrantID, t.FamilyID, t.SessionID, t.ClientID, t.Subject, textArray(t.Scopes), textArray(t.Audience),
		t.AuthTime, textArray(t.AMR), t.DingTalk.CorpID, t.DingTalk.UserID, t.DingTalk.UnionID, t.CreatedAt, t.ExpiresAt, t.RevokedAt}
}

// createInGrant inserts a token of grantID with checkedSQL: one statement
// that takes the grant's row FOR SHARE (the CTE g of grantOf2, grantOf4)
// and inserts unless g says revoked. The statement is its own transaction,
// so the row lock is held until the insert commits: the check and the
// insert in one transaction, as migration 0004 describes, in one round
// trip. The insert thus commits before any replay of the grant's code can
// mark it (and the replay then revokes the token), or it reads the mark
// and inserts nothing: ErrGrantRevoked. Under READ COMMITTED a row lock
// that had to wait for a replay's update reads the row as that update left
// it. Without a grant (or for a grant whose request is gone, which locks
// nothing) plainSQL inserts as before.
func (s *PostgresStore) createInGrant(ctx context.Context, grantID, plainSQL, checkedSQL string, args ...any) error {
	if grantID == "" {
		_, err := s.pool.Exec(ctx, plainSQL, args...)
		return err
	}
	tag, err := s.pool.Exec(ctx, checkedSQL, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrGrantRevoked
	}
	return nil
}

const accessTokenSQL = `select ` + accessTokenColumns + ` from access_tokens where id = $1`

// AccessToken implements Store.
func (s *PostgresStore) AccessToken(ctx context.Context, id string) (*AccessToken, error) {
	var t AccessToken
	err := s.pool.QueryRow(ctx, accessTokenSQL, id).Scan(
		&t.ID, &t.GrantID, &t.FamilyID, &t.SessionID, &t.ClientID, &t.Subject, &t.Scopes, &t.Audience,
		&t.AuthTime, &t.AMR, &t.DingTalk.CorpID, &t.DingTalk.UserID, &t.DingTalk.UnionID, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt)
	if err != nil {
		return nil, dbError("select access token", err)
	}
	t.Scopes, t.Audience, t.AMR = emptyNil(t.Scopes), emptyNil(t.Audience), emptyNil(t.AMR)
	t.AuthTime, t.CreatedAt, t.ExpiresAt = t.AuthTime.UTC(), t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	t.RevokedAt = utcPtr(t.RevokedAt)
	return &t, nil
}

// revokeAccessTokenSQL keeps the first revocation time; it updates the row
// whether or not it was revoked, so that the row count says whether it exists.
const revokeAccessTokenSQL = `update access_tokens set revoked_at = coalesce(revoked_at, $2) where id = $1`

// RevokeAccessToken implements Store. A token revoked before keeps its first
// revocation time.
func (s *PostgresStore) RevokeAccessToken(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, revokeAccessTokenSQL, id, now)
	if err != nil {
		return dbError("revoke access token", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke access token: %w", ErrNotFound)
	}
	return nil
}

const refreshTokenColumns = `hash, id, family_id, grant_id, session_id, client_id, subject, scopes, audience,
	auth_time, amr, dingtalk_corp_id, dingtalk_user_id, dingtalk_union_id, created_at, expires_at,
	family_expires_at, used_at, revoked_at`

const (
	createRefreshTokenSQL = `insert into refresh_tokens (` + refreshTokenColumns + `)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`

	// createRefreshTokenInGrantSQL is createRefreshTokenSQL for a token of
	// grant $4, unless a code replay revoked it: see createInGrant.
	createRefreshTokenInGrantSQL = `with ` + grantOf4 + `
insert into refresh_tokens (` + refreshTokenColumns + `)
select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19
where not exists (select from g where revoked)`
)

// CreateRefreshToken implements Store. Hash and ID are both unique:
// ErrConflict if either is taken.
func (s *PostgresStore) CreateRefreshToken(ctx context.Context, t *RefreshToken) error {
	if err := s.createInGrant(ctx, t.GrantID, createRefreshTokenSQL, createRefreshTokenInGrantSQL, refreshTokenArgs(t, t.FamilyID)...); err != nil {
		return dbError("insert refresh token", err)
	}
	return nil
}

// createTokensSQL is createRefreshTokenInGrantSQL ($1…$19) and, for the
// same grant, createAccessTokenSQL ($20…$35) in one statement: the grant's
// row is held FOR SHARE (g, as in createInGrant) until both inserts commit,
// and the access token is inserted only with the refresh token.
const createTokensSQL = `with ` + grantOf4 + `,
r as (
	insert into refresh_tokens (` + refreshTokenColumns + `)
	select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19
	where not exists (select from g where revoked)
	returning hash
)
insert into access_tokens (` + accessTokenColumns + `)
select $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35 from r`

// CreateTokens implements Store: one statement, so one transaction and one
// round trip. A revoked grant inserts neither token.
func (s *PostgresStore) CreateTokens(ctx context.Context, rt *RefreshToken, at *AccessToken) error {
	if err := samePair(rt, at, true); err != nil {
		return err
	}
	args := append(refreshTokenArgs(rt, rt.FamilyID), accessTokenArgs(at)...)
	tag, err := s.pool.Exec(ctx, createTokensSQL, args...)
	switch {
	case err != nil:
		return dbError("insert refresh and access token", err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("insert refresh and access token: %w", ErrGrantRevoked)
	}
	return nil
}

// refreshTokenArgs are the arguments of createRefreshTokenSQL: t, in familyID.
func refreshTokenArgs(t *RefreshToken, familyID string) []any {
	return []any{t.Hash, t.ID, familyID, t.GrantID, t.SessionID, t.ClientID, t.Subject, textArray(t.Scopes), textArray(t.Audience),
		t.AuthTime, textArray(t.AMR), t.DingTalk.CorpID, t.DingTalk.UserID, t.DingTalk.UnionID, t.CreatedAt, t.ExpiresAt,
		t.FamilyExpiresAt, t.UsedAt, t.RevokedAt}
}

const refreshTokenSQL = `select ` + refreshTokenColumns + ` from refresh_tokens where hash = $1`

// RefreshToken implements Store.
func (s *PostgresStore) RefreshToken(ctx context.Context, hash string) (*RefreshToken, error) {
	var t RefreshToken
	err := s.pool.QueryRow(ctx, refreshTokenSQL, hash).Scan(
		&t.Hash, &t.ID, &t.FamilyID, &t.GrantID, &t.SessionID, &t.ClientID, &t.Subject, &t.Scopes, &t.Audience,
		&t.AuthTime, &t.AMR, &t.DingTalk.CorpID, &t.DingTalk.UserID, &t.DingTalk.UnionID, &t.CreatedAt, &t.ExpiresAt,
		&t.FamilyExpiresAt, &t.UsedAt, &t.RevokedAt)
	if err != nil {
		return nil, dbError("select refresh token", err)
	}
	t.Scopes, t.Audience, t.AMR = emptyNil(t.Scopes), emptyNil(t.Audience), emptyNil(t.AMR)
	t.AuthTime, t.CreatedAt, t.ExpiresAt, t.FamilyExpiresAt = t.AuthTime.UTC(), t.CreatedAt.UTC(), t.ExpiresAt.UTC(), t.FamilyExpiresAt.UTC()
	t.UsedAt, t.RevokedAt = utcPtr(t.UsedAt), utcPtr(t.RevokedAt)
	return &t, nil
}

const (
	// rotateRefreshTokenSQL is the whole rotation in one statement, so in one
	// transaction: it holds next's grant row FOR SHARE (g, as in
	// grantOf2, taken first as the lock order wants: the uncorrelated test of g
	// is a one-time filter evaluated before the token is scanned), marks
	// the old token used (single use, as consumeCodeSQL) unless the grant
	// is revoked, and inserts next ($3…$20: createRefreshTokenSQL's columns but
	// the family)
	// into the old token's family. Nothing is inserted, and nothing
	// changes, if the old token is not rotatable or the grant is revoked;
	// a failed insert (a taken hash or id) undoes the mark.
	rotateRefreshTokenSQL = rotateMarkSQL + `
insert into refresh_tokens (` + refreshTokenColumns + `)
select ` + rotateNextValues + ` from u`

	// rotateMarkSQL is the part of both rotations that locks the grant and
	// marks the old token used (u, returning its family).
	rotateMarkSQL = `with g as (select grant_revoked_at is not null as revoked from auth_requests where id = $5 for share),
u as (
	update refresh_tokens set used_at = $2
	where hash = $1 and used_at is null and revoked_at is null and expires_at > $2 and family_expires_at > $2
		and not exists (select from g where revoked)
	returning family_id
)`
	rotateNextValues = `$3, $4, u.family_id, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20`

	// rotateWithAccessSQL is rotateRefreshTokenSQL that also inserts the
	// access token issued from next ($21…$35: createAccessTokenSQL's
	// columns but the family) into the same family, from the inserted
	// row, so exactly when the rotation happens; a failed insert (a taken
	// id) undoes the whole rotation.
	rotateWithAccessSQL = rotateMarkSQL + `,
n as (
	insert into refresh_tokens (` + refreshTokenColumns + `)
	select ` + rotateNextValues + ` from u
	returning family_id
)
insert into access_tokens (` + accessTokenColumns + `)
select $21, $22, n.family_id, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35 from n`

	// refreshTokenStateSQL tells why a rotation changed nothing: whether
	// the old token was used, whether it is still usable, and whether
	// next's grant ($3) is revoked.
	refreshTokenStateSQL = `
select family_id, used_at is not null,
	revoked_at is null and expires_at > $2 and family_expires_at > $2,
	coalesce((select grant_revoked_at is not null from auth_requests where id = $3), false)
from refresh_tokens where hash = $1`
)

// RotateRefreshToken implements Store. next is stored in the old token's
// family, whatever next.FamilyID says. A token past its idle expiry or its
// family's absolute expiry is expired. A used token is a replay even when it
// has also been revoked or has expired since. If next's hash or id is taken,
// nothing changes and the error is ErrConflict.
//
// The rotation is one statement (rotateRefreshTokenSQL), which checks
// next's grant, holding the auth request row before the refresh token's
// (the lock order), marks and inserts. When it changes nothing, a second
// read says why, and a revoked grant is reported only when the old token
// was rotatable: a replay or an unusable token is answered as such. That
// read is a moment newer, which cannot mislead: a used, revoked or expired
// token and a revoked grant never become usable again. Revoking a replayed
// token's family happens after it, in a transaction of its own.
func (s *PostgresStore) RotateRefreshToken(ctx context.Context, oldHash string, next *RefreshToken, now time.Time) error {
	return s.rotate(ctx, oldHash, next, nil, now)
}

// RotateRefreshTokenWithAccess implements Store: RotateRefreshToken's one
// statement with the access token's insert added (rotateWithAccessSQL).
func (s *PostgresStore) RotateRefreshTokenWithAccess(ctx context.Context, oldHash string, next *RefreshToken, at *AccessToken, now time.Time) error {
	if err := samePair(next, at, false); err != nil {
		return err
	}
	return s.rotate(ctx, oldHash, next, at, now)
}

// rotate rotates oldHash into next and, unless at is nil, inserts at in
// the same statement.
func (s *PostgresStore) rotate(ctx context.Context, oldHash string, next *RefreshToken, at *AccessToken, now time.Time) error {
	// next's arguments without its family, which the statement takes from
	// the old token: $3, $4, then $5 on.
	nextArgs := refreshTokenArgs(next, "")
	args := append([]any{oldHash, now}, nextArgs[:2]...)
	args = append(args, nextArgs[3:]...)
	sql := rotateRefreshTokenSQL
	if at != nil {
		// at's arguments without its family, likewise: $21, $22, then $23 on.
		atArgs := accessTokenArgs(at)
		args = append(append(args, atArgs[:2]...), atArgs[3:]...)
		sql = rotateWithAccessSQL
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return dbError("rotate refresh token", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}

	var (
		family                    string
		replayed, usable, revoked bool
	)
	err = s.pool.QueryRow(ctx, refreshTokenStateSQL, oldHash, now, next.GrantID).Scan(&family, &replayed, &usable, &revoked)
	switch {
	case err != nil:
		return dbError("rotate refresh token", err) // unknown token: ErrNotFound
	case replayed:
	case usable && revoked:
		return fmt.Errorf("rotate refresh token: %w", ErrGrantRevoked)
	default:
		return fmt.Errorf("rotate refresh token: revoked or expired: %w", ErrNotFound)
	}
	if err := s.revokeTx(ctx, revokeRefreshByFamilySQL, revokeAccessByFamilySQL, family, now); err != nil {
		return dbError("rotate refresh token: revoke replayed family", err)
	}
	return ErrRefreshReplayed
}

// RevokeRefreshFamily implements Store. An empty familyID revokes nothing
// (it is what tokens outside any family carry).
func (s *PostgresStore) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	if familyID == "" {
		return nil
	}
	if err := s.revokeTx(ctx, revokeRefreshByFamilySQL, revokeAccessByFamilySQL, familyID, now); err != nil {
		return dbError("revoke refresh family", err)
	}
	return nil
}

// RevokeGrant implements Store. An empty grantID revokes nothing.
func (s *PostgresStore) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	if grantID == "" {
		return nil
	}
	if err := s.revokeTx(ctx, revokeRefreshByGrantSQL, revokeAccessByGrantSQL, grantID, now); err != nil {
		return dbError("revoke grant", err)
	}
	return nil
}

const sessionColumns = `id, subject, auth_time, amr, dingtalk_corp_id, dingtalk_user_id, dingtalk_union_id,
	created_at, expires_at, ended_at`

const createSessionSQL = `insert into sso_sessions (` + sessionColumns + `)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

// CreateSession implements Store. An id already taken is ErrConflict.
func (s *PostgresStore) CreateSession(ctx context.Context, sess *Session) error {
	_, err := s.pool.Exec(ctx, createSessionSQL,
		sess.ID, sess.Subject, sess.AuthTime, textArray(sess.AMR), sess.DingTalk.CorpID, sess.DingTalk.UserID, sess.DingTalk.UnionID,
		sess.CreatedAt, sess.ExpiresAt, sess.EndedAt)
	if err != nil {
		return dbError("insert session", err)
	}
	return nil
}

const sessionSQL = `select ` + sessionColumns + ` from sso_sessions where id = $1`

// Session implements Store.
func (s *PostgresStore) Session(ctx context.Context, id string) (*Session, error) {
	var sess Session
	err := s.pool.QueryRow(ctx, sessionSQL, id).Scan(
		&sess.ID, &sess.Subject, &sess.AuthTime, &sess.AMR, &sess.DingTalk.CorpID, &sess.DingTalk.UserID, &sess.DingTalk.UnionID,
		&sess.CreatedAt, &sess.ExpiresAt, &sess.EndedAt)
	if err != nil {
		return nil, dbError("select session", err)
	}
	return normalizeSession(&sess), nil
}

// normalizeSession makes a scanned session what both stores return.
func normalizeSession(sess *Session) *Session {
	sess.AMR = emptyNil(sess.AMR)
	sess.AuthTime, sess.CreatedAt, sess.ExpiresAt = sess.AuthTime.UTC(), sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	sess.EndedAt = utcPtr(sess.EndedAt)
	return sess
}

// endSessionSQL keeps the first end time; it updates the row whether or not
// the session ended before, so that the row count says whether it exists.
const endSessionSQL = `update sso_sessions set ended_at = coalesce(ended_at, $2) where id = $1`

// EndSession implements Store. A session ended before keeps its first end
// time. For an id with no session (never created, or garbage-collected) it
// still revokes the tokens that carry that SessionID, then returns
// ErrNotFound. An empty id ends and revokes nothing.
func (s *PostgresStore) EndSession(ctx context.Context, id string, now time.Time) error {
	if id == "" {
		return fmt.Errorf("end session: %w", ErrNotFound)
	}
	var exists bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, endSessionSQL, id, now)
		if err != nil {
			return err
		}
		exists = tag.RowsAffected() == 1
		return revoke(ctx, tx, revokeRefreshBySessionSQL, revokeAccessBySessionSQL, id, now)
	})
	if err != nil {
		return dbError("end session", err)
	}
	if !exists {
		return fmt.Errorf("end session: %w", ErrNotFound)
	}
	return nil
}

const (
	keySetVersionSQL = `select version from signing_key_set`

	signingKeysSQL = `
select kid, algorithm, state, encrypted_private_key, public_jwk, created_at, activated_at, retired_at
from signing_keys order by ordinal`
)

// SigningKeys implements Store. It reads the version and the keys in one
// snapshot, so they always belong together.
func (s *PostgresStore) SigningKeys(ctx context.Context) (KeySet, error) {
	var set KeySet
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, keySetVersionSQL).Scan(&set.Version); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, signingKeysSQL) // CollectRows reports the error
		keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SigningKey, error) {
			var k SigningKey
			if err := row.Scan(&k.ID, &k.Algorithm, &k.State, &k.EncryptedPrivateKey, &k.PublicJWK, &k.CreatedAt, &k.ActivatedAt, &k.RetiredAt); err != nil {
				return k, err
			}
			k.EncryptedPrivateKey, k.PublicJWK = emptyNil(k.EncryptedPrivateKey), emptyNil(k.PublicJWK)
			k.CreatedAt, k.ActivatedAt, k.RetiredAt = k.CreatedAt.UTC(), utcPtr(k.ActivatedAt), utcPtr(k.RetiredAt)
			return k, nil
		})
		set.Keys = emptyNil(keys)
		return err
	})
	if err != nil {
		return KeySet{}, dbError("select signing keys", err)
	}
	return set, nil
}

const (
	// bumpKeySetVersionSQL is the optimistic lock: of two replicas replacing
	// the set from one version, the second waits for the first to commit,
	// then finds another version and updates nothing.
	bumpKeySetVersionSQL = `update signing_key_set set version = version + 1 where version = $1 returning version`

	deleteSigningKeysSQL = `delete from signing_keys`

	insertSigningKeySQL = `
insert into signing_keys (kid, ordinal, algorithm, state, encrypted_private_key, public_jwk, created_at, activated_at, retired_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
)

// ReplaceSigningKeys implements Store. Two keys with one ID are a conflict.
func (s *PostgresStore) ReplaceSigningKeys(ctx context.Context, fromVersion int64, keys []SigningKey) (int64, error) {
	var version int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, bumpKeySetVersionSQL, fromVersion).Scan(&version); err != nil {
			return err // another version: ErrNoRows
		}
		if _, err := tx.Exec(ctx, deleteSigningKeysSQL); err != nil {
			return err
		}
		for i, k := range keys {
			_, err := tx.Exec(ctx, insertSigningKeySQL, k.ID, i, k.Algorithm, k.State,
				byteArray(k.EncryptedPrivateKey), byteArray(k.PublicJWK), k.CreatedAt, k.ActivatedAt, k.RetiredAt)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("replace signing keys: version is not %d: %w", fromVersion, ErrConflict)
	}
	if err != nil {
		return 0, dbError("replace signing keys", err)
	}
	return version, nil
}

// gcLockKey is the transaction-level advisory lock that keeps DeleteExpired
// to one replica at a time: the first eight bytes of
// sha256("dingbridge:idp-gc"), big-endian, as an int64.
const gcLockKey int64 = 1406357958280908017

const (
	tryGCLockSQL = `select pg_try_advisory_xact_lock($1)`

	deleteExpiredAuthRequestsSQL = `
delete from auth_requests where id in (
	select id from auth_requests where greatest(expires_at, code_expires_at) <= $1 limit $2 for update skip locked
)`
	deleteExpiredAccessTokensSQL = `
delete from access_tokens where id in (
	select id from access_tokens where expires_at <= $1 limit $2 for update skip locked
)`
	deleteExpiredRefreshTokensSQL = `
delete from refresh_tokens where hash in (
	select hash from refresh_tokens where least(expires_at, family_expires_at) <= $1 limit $2 for update skip locked
)`
	deleteExpiredSessionsSQL = `
delete from sso_sessions where id in (
	select id from sso_sessions where expires_at <= $1 or ended_at <= $2 limit $3 for update skip locked
)`
	deleteExpiredUpstreamsSQL = `
delete from upstream_transactions where state_hash in (
	select state_hash from upstream_transactions where expires_at <= $1 limit $2 for update skip locked
)`
	deleteExpiredAppTokensSQL = `
delete from dingtalk_app_tokens where app_key in (
	select app_key from dingtalk_app_tokens where expires_at <= $1 limit $2 for update skip locked
)`
)

// DeleteExpired implements Store. It deletes in batches of at most
// batchSize rows, each in its own short transaction that first tries the GC
// advisory lock. While another replica holds that lock (in the middle of one
// of its batches), this call stops and returns what it removed so far,
// without error; the holder goes on to the end. Rows that another
// transaction has locked are skipped, left for the next run, so GC never
// waits for a revocation or blocks one for long. A failure keeps the batches
// before it, and the count returned with the error says how many rows they
// removed. A negative retention counts as zero.
func (s *PostgresStore) DeleteExpired(ctx context.Context, now time.Time, retention time.Duration) (int64, error) {
	cutoff := now.Add(-max(retention, 0))
	jobs := []struct {
		what string
		sql  string
		args []any
	}{
		{"auth requests", deleteExpiredAuthRequestsSQL, []any{cutoff, s.batchSize}},
		{"access tokens", deleteExpiredAccessTokensSQL, []any{now, s.batchSize}},
		{"refresh tokens", deleteExpiredRefreshTokensSQL, []any{now, s.batchSize}},
		{"sessions", deleteExpiredSessionsSQL, []any{now, cutoff, s.batchSize}},
		{"upstream transactions", deleteExpiredUpstreamsSQL, []any{now, s.batchSize}},
		{"dingtalk app tokens", deleteExpiredAppTokensSQL, []any{now, s.batchSize}},
	}
	var total int64
	for _, job := range jobs {
		for {
			n, locked, err := s.deleteBatch(ctx, job.sql, job.args...)
			total += n
			if err != nil {
				return total, dbError("delete expired "+job.what, err)
			}
			if !locked {
				return total, nil
			}
			if n < int64(s.batchSize) {
				break // this table is done
			}
		}
	}
	return total, nil
}

// deleteBatch runs one batch delete in a transaction holding the GC lock,
// or reports that another replica holds it.
func (s *PostgresStore) deleteBatch(ctx context.Context, sql string, args ...any) (n int64, locked bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, tryGCLockSQL, gcLockKey).Scan(&locked); err != nil || !locked {
			return err
		}
		tag, err := tx.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return n, locked, nil
}

const createUpstreamSQL = `insert into upstream_transactions
	(state_hash, auth_request_id, browser_id, mode, corp_id, created_at, expires_at)
values ($1, $2, $3, $4, $5, $6, $7)`

// CreateUpstream implements Store. A state hash already taken is ErrConflict.
func (s *PostgresStore) CreateUpstream(ctx context.Context, u *Upstream) error {
	_, err := s.pool.Exec(ctx, createUpstreamSQL, u.StateHash, u.AuthRequestID, u.BrowserID, u.Mode, u.CorpID, u.CreatedAt, u.ExpiresAt)
	if err != nil {
		return dbError("insert upstream transaction", err)
	}
	return nil
}

const consumeUpstreamSQL = `
update upstream_transactions set used_at = $2
where state_hash = $1 and used_at is null and expires_at > $2
returning state_hash, auth_request_id, browser_id, mode, corp_id, created_at, expires_at`

// ConsumeUpstream implements Store: one conditional update, so that of
// concurrent consumers exactly one sees the row.
func (s *PostgresStore) ConsumeUpstream(ctx context.Context, stateHash string, now time.Time) (*Upstream, error) {
	var u Upstream
	err := s.pool.QueryRow(ctx, consumeUpstreamSQL, stateHash, now).Scan(
		&u.StateHash, &u.AuthRequestID, &u.BrowserID, &u.Mode, &u.CorpID, &u.CreatedAt, &u.ExpiresAt)
	if err != nil {
		return nil, dbError("consume upstream transaction", err)
	}
	u.CreatedAt, u.ExpiresAt = u.CreatedAt.UTC(), u.ExpiresAt.UTC()
	return &u, nil
}

// consumeUpstreamWithRequestSQL is consumeUpstreamSQL joined with the
// auth request the transaction names. The update runs to completion
// whatever the join finds (a data-modifying WITH always does), so a
// transaction whose request is gone is used up and returns no row.
const consumeUpstreamWithRequestSQL = `
with u as (
	update upstream_transactions set used_at = $2
	where state_hash = $1 and used_at is null and expires_at > $2
	returning state_hash, auth_request_id, browser_id, mode, corp_id, created_at, expires_at
)
select u.*, ar.* from u join (select ` + authRequestColumns + ` from auth_requests) ar on ar.id = u.auth_request_id`

// ConsumeUpstreamWithRequest implements Store: one statement, whose update
// is the single-use step of ConsumeUpstream.
func (s *PostgresStore) ConsumeUpstreamWithRequest(ctx context.Context, stateHash string, now time.Time) (*Upstream, *AuthRequest, error) {
	var u Upstream
	ar, err := scanAuthRequestAmid(s.pool.QueryRow(ctx, consumeUpstreamWithRequestSQL, stateHash, now),
		[]any{&u.StateHash, &u.AuthRequestID, &u.BrowserID, &u.Mode, &u.CorpID, &u.CreatedAt, &u.ExpiresAt}, nil)
	if err != nil {
		return nil, nil, dbError("consume upstream transaction", err)
	}
	u.CreatedAt, u.ExpiresAt = u.CreatedAt.UTC(), u.ExpiresAt.UTC()
	return &u, ar, nil
}

const (
	profileRefreshedAtSQL = `select refreshed_at from dingtalk_profile_refreshes where corp_id = $1 and user_id = $2`

	markProfileRefreshedSQL = `
insert into dingtalk_profile_refreshes (corp_id, user_id, refreshed_at) values ($1, $2, $3)
on conflict (corp_id, user_id) do update set refreshed_at = excluded.refreshed_at`
)

// ProfileRefreshedAt implements Store.
func (s *PostgresStore) ProfileRefreshedAt(ctx context.Context, corpID, userID string) (time.Time, error) {
	var at time.Time
	if err := s.pool.QueryRow(ctx, profileRefreshedAtSQL, corpID, userID).Scan(&at); err != nil {
		return time.Time{}, dbError("select profile refresh", err)
	}
	return at.UTC(), nil
}

// MarkProfileRefreshed implements Store.
func (s *PostgresStore) MarkProfileRefreshed(ctx context.Context, corpID, userID string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, markProfileRefreshedSQL, corpID, userID, at); err != nil {
		return dbError("upsert profile refresh", err)
	}
	return nil
}

const (
	dingTalkAppTokenSQL = `select ciphertext, expires_at from dingtalk_app_tokens where app_key = $1`

	// The where clause makes the upsert keep a row that expires at the same
	// time or later; the row lock the conflict takes orders concurrent puts,
	// and each compares with the row as the one before it left it.
	putDingTalkAppTokenSQL = `
insert into dingtalk_app_tokens (app_key, ciphertext, expires_at, updated_at) values ($1, $2, $3, now())
on conflict (app_key) do update
	set ciphertext = excluded.ciphertext, expires_at = excluded.expires_at, updated_at = excluded.updated_at
	where dingtalk_app_tokens.expires_at < excluded.expires_at`
)

// DingTalkAppToken implements Store.
func (s *PostgresStore) DingTalkAppToken(ctx context.Context, appKey string) ([]byte, time.Time, error) {
	var (
		ciphertext []byte
		expiresAt  time.Time
	)
	if err := s.pool.QueryRow(ctx, dingTalkAppTokenSQL, appKey).Scan(&ciphertext, &expiresAt); err != nil {
		return nil, time.Time{}, dbError("select dingtalk app token", err)
	}
	return emptyNil(ciphertext), expiresAt.UTC(), nil
}

// PutDingTalkAppToken implements Store: one conditional upsert.
func (s *PostgresStore) PutDingTalkAppToken(ctx context.Context, appKey string, ciphertext []byte, expiresAt time.Time) error {
	if _, err := s.pool.Exec(ctx, putDingTalkAppTokenSQL, appKey, byteArray(ciphertext), expiresAt); err != nil {
		return dbError("upsert dingtalk app token", err)
	}
	return nil
}

// Ping implements Store.
func (s *PostgresStore) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping idp store: %w", err)
	}
	return nil
}

// textArray is s for a text[] not null column: pgx sends a nil slice as null.
func textArray(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// byteArray is b for a bytea not null column.
func byteArray(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// emptyNil returns nil for an empty slice, so that both stores return empty
// lists alike.
func emptyNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// nullTime is t for a nullable column: the zero time is stored as null.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
