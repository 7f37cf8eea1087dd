package web

import (
	"context"

	"github.com/dingbridge/dingbridge/mapping"
)

// What an edit in the console ends at once, instead of on the person's next
// request. requireAdmin checks the administrator role on every request, but
// a role taken away and given back between two requests would otherwise
// leave the old session alive; and the provider's sign-in session of a
// DingTalk identity would go on as the account it was linked to.

// endConsoleSessionsUnlessAdmin ends every console session of the account
// when, as saved, it is not an administrator (disabled, or out of the admin
// groups). Getting the role back then takes a new sign-in (ADM-04).
func (s *Server) endConsoleSessionsUnlessAdmin(ctx context.Context, a mapping.Account) {
	if s.isAdmin(a) || self(ctx, a.ID) {
		return
	}
	s.endConsoleSessions(ctx, a.ID)
}

// self reports whether accountID is the administrator making the request.
// Their own sessions are left to requireAdmin: the page after the save is
// their next request, which, if they took their own role away, shows them
// why they have no access and ends every session of theirs.
func self(ctx context.Context, accountID string) bool {
	a := adminFrom(ctx)
	return a != nil && a.Account.ID == accountID
}

// endIdentitySessions is called once an identity of accountID was disabled,
// unlinked or moved to another account: the provider's sign-in sessions of
// the identity end (their tokens revoked), and so do the console sessions
// of the account, which may have been signed in through it. Failures are
// logged: the change itself is saved, and requireAdmin and the provider's
// checks still refuse what the change forbids. An administrator changing
// an identity of their own account stays signed in to the console.
func (s *Server) endIdentitySessions(ctx context.Context, k mapping.Key, accountID string) {
	if s.cfg.EndIdentitySessions != nil {
		if err := s.cfg.EndIdentitySessions(ctx, k); err != nil {
			s.log.ErrorContext(ctx, "admin: end the sign-in sessions of an identity", "corp_id", k.CorpID, "user_id", k.UserID, "err", err)
		}
	}
	if accountID != "" && !self(ctx, accountID) {
		s.endConsoleSessions(ctx, accountID)
	}
}

func (s *Server) endConsoleSessions(ctx context.Context, accountID string) {
	n, err := s.sessions.RevokeAccount(ctx, accountID, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "admin: end the console sessions of an account", "account_id", accountID, "err", err)
		return
	}
	if n > 0 {
		s.log.InfoContext(ctx, "admin: console sessions ended", "account_id", accountID, "sessions", n)
	}
}

// EndAccountSessions ends every console session of the account, for the
// parts of dingbridge that learn of a change the console did not make (a
// person who left the corp, told by DingTalk's event).
func (s *Server) EndAccountSessions(ctx context.Context, accountID string) {
	s.endConsoleSessions(ctx, accountID)
}
