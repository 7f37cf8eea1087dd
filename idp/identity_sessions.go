package idp

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ending what a DingTalk identity signed in to. A session and the tokens
// issued under it name the account (the subject); the mapping decides at
// sign-in which account an identity is. Once an administrator disables,
// unlinks or relinks the identity, or DingTalk says the person left the
// corp, the sessions that identity opened must not go on: single sign-on
// would keep signing the person in to other apps as the account, and
// their refresh tokens would keep working, until the session expired.

// EndDingTalkSessions ends every live sign-in session that the DingTalk
// identity (corpID, userID) opened, and revokes the access and refresh
// tokens issued under them, so that the person's next sign-in anywhere
// goes through DingTalk and the mapping again. It returns how many
// sessions it ended.
func (p *Provider) EndDingTalkSessions(ctx context.Context, corpID, userID string) (int, error) {
	n, err := p.store.EndIdentitySessions(ctx, corpID, userID, p.now())
	if err != nil {
		return 0, err
	}
	if n > 0 {
		p.log.InfoContext(ctx, "sign-in sessions of a dingtalk identity ended", "corp_id", corpID, "user_id", userID, "sessions", n)
	}
	return n, nil
}

// liveIdentitySessionsSQL finds the sessions to end. sso_sessions has no
// index on the DingTalk identity: this runs when an identity is disabled,
// unlinked or leaves, rarely, and an index would cost every sign-in a write.
const liveIdentitySessionsSQL = `
select id from sso_sessions
where dingtalk_corp_id = $1 and dingtalk_user_id = $2 and ended_at is null
order by id for update`

// EndIdentitySessions implements Store: one transaction that ends each
// session and revokes its tokens, with EndSession's statements.
func (s *PostgresStore) EndIdentitySessions(ctx context.Context, corpID, userID string, now time.Time) (int, error) {
	if corpID == "" || userID == "" {
		return 0, nil
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, liveIdentitySessionsSQL, corpID, userID)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.Exec(ctx, endSessionSQL, id, now); err != nil {
				return err
			}
			if err := revoke(ctx, tx, revokeRefreshBySessionSQL, revokeAccessBySessionSQL, id, now); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, dbError("end the sessions of a dingtalk identity", err)
	}
	return n, nil
}

// EndIdentitySessions implements Store.
func (s *MemoryStore) EndIdentitySessions(_ context.Context, corpID, userID string, now time.Time) (int, error) {
	if corpID == "" || userID == "" {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ended := map[string]bool{}
	for id, sess := range s.sessions {
		if sess.EndedAt == nil && sess.DingTalk.CorpID == corpID && sess.DingTalk.UserID == userID {
			sess.EndedAt = storedTimePtr(&now)
			ended[id] = true
		}
	}
	s.revokeLocked(func(_, _, sessionID string) bool { return ended[sessionID] }, now)
	return len(ended), nil
}
