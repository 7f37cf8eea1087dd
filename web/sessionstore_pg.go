package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresSessions is the SessionStore of replicas, on the admin_sessions
// table of migration 0009. The table is the console's own (no other package
// reads it), so its SQL lives here, beside its only user, rather than in
// package mapping, whose Store is about accounts and DingTalk identities.
type PostgresSessions struct {
	pool *pgxpool.Pool
}

var _ SessionStore = (*PostgresSessions)(nil)

// NewPostgresSessions returns a store on pool, whose database must be
// migrated.
func NewPostgresSessions(pool *pgxpool.Pool) *PostgresSessions {
	return &PostgresSessions{pool: pool}
}

const createSessionSQL = `insert into admin_sessions (id_hash, account_id, created_at, last_seen_at, expires_at)
values ($1, $2, $3, $4, $5)`

// Create implements SessionStore.
func (s *PostgresSessions) Create(ctx context.Context, rec SessionRecord) error {
	if _, err := s.pool.Exec(ctx, createSessionSQL, rec.IDHash[:], rec.AccountID, rec.Created, rec.LastSeen, rec.Expires); err != nil {
		return fmt.Errorf("insert console session: %w", err)
	}
	return nil
}

const sessionSQL = `select account_id, created_at, last_seen_at, expires_at, revoked_at
from admin_sessions where id_hash = $1`

// Session implements SessionStore.
func (s *PostgresSessions) Session(ctx context.Context, idHash [32]byte) (SessionRecord, error) {
	rec := SessionRecord{IDHash: idHash}
	var revoked *time.Time
	err := s.pool.QueryRow(ctx, sessionSQL, idHash[:]).Scan(&rec.AccountID, &rec.Created, &rec.LastSeen, &rec.Expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return SessionRecord{}, ErrNoSession
	}
	if err != nil {
		return SessionRecord{}, fmt.Errorf("select console session: %w", err)
	}
	if revoked != nil {
		rec.Revoked = *revoked
	}
	return rec, nil
}

// touchSessionSQL never moves last_seen_at back: two replicas touching at
// once leave the later time.
const touchSessionSQL = `update admin_sessions set last_seen_at = $2 where id_hash = $1 and last_seen_at < $2`

// Touch implements SessionStore.
func (s *PostgresSessions) Touch(ctx context.Context, idHash [32]byte, at time.Time) error {
	if _, err := s.pool.Exec(ctx, touchSessionSQL, idHash[:], at); err != nil {
		return fmt.Errorf("touch console session: %w", err)
	}
	return nil
}

const revokeSessionSQL = `update admin_sessions set revoked_at = $2 where id_hash = $1 and revoked_at is null`

// Revoke implements SessionStore.
func (s *PostgresSessions) Revoke(ctx context.Context, idHash [32]byte, at time.Time) error {
	if _, err := s.pool.Exec(ctx, revokeSessionSQL, idHash[:], at); err != nil {
		return fmt.Errorf("revoke console session: %w", err)
	}
	return nil
}

const revokeAccountSessionsSQL = `update admin_sessions set revoked_at = $2 where account_id = $1 and revoked_at is null`

// RevokeAccount implements SessionStore.
func (s *PostgresSessions) RevokeAccount(ctx context.Context, accountID string, at time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, revokeAccountSessionsSQL, accountID, at)
	if err != nil {
		return 0, fmt.Errorf("revoke console sessions of account: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

const deleteExpiredSessionsSQL = `delete from admin_sessions
where expires_at <= $1 or revoked_at is not null or last_seen_at <= $2`

// DeleteExpired implements SessionStore.
func (s *PostgresSessions) DeleteExpired(ctx context.Context, now, idleBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, deleteExpiredSessionsSQL, now, idleBefore)
	if err != nil {
		return 0, fmt.Errorf("delete expired console sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
