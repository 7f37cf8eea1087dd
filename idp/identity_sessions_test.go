package idp

import (
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestEndIdentitySessions, on both stores: the live sessions of one DingTalk
// identity end and the tokens issued under them are revoked; the sessions
// of another identity (another user, or the same userId in another corp),
// a session ended before, and tokens of no session are left alone.
func TestEndIdentitySessions(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) Store{
		"memory":   func(*testing.T) Store { return NewMemoryStore() },
		"postgres": func(t *testing.T) Store { return NewPostgresStore(pgtest.NewDatabase(t)) },
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ctx := t.Context()
			session := func(id, corp, user string, ended bool) {
				sess := newSession(id, t0)
				sess.DingTalk = DingTalkIDs{CorpID: corp, UserID: user}
				if ended {
					sess.EndedAt = ptr(t0.Add(-time.Minute))
				}
				mustCreateSession(t, s, sess)
			}
			session("mine-1", "corp-a", "u1", false)
			session("mine-2", "corp-a", "u1", false) // a second device
			session("mine-old", "corp-a", "u1", true)
			session("other-user", "corp-a", "u2", false)
			session("other-corp", "corp-b", "u1", false)
			for _, tok := range [][2]string{{"m1", "mine-1"}, {"m2", "mine-2"}, {"o1", "other-user"}, {"o2", "other-corp"}, {"none", ""}} {
				mustCreateAccessToken(t, s, newAccessToken("a-"+tok[0], "g-"+tok[0], "f-"+tok[0], tok[1], t0))
				mustCreateRefreshToken(t, s, newRefreshToken("r-"+tok[0], "g-"+tok[0], "f-"+tok[0], tok[1], t0))
			}

			n, err := s.EndIdentitySessions(ctx, "corp-a", "u1", t0)
			if err != nil || n != 2 {
				t.Fatalf("EndIdentitySessions = %d, %v; want 2 (the two live sessions)", n, err)
			}
			// Again, later: nothing left to end.
			if n, err := s.EndIdentitySessions(ctx, "corp-a", "u1", t0.Add(time.Hour)); err != nil || n != 0 {
				t.Fatalf("EndIdentitySessions again = %d, %v; want 0", n, err)
			}
			if n, err := s.EndIdentitySessions(ctx, "", "", t0); err != nil || n != 0 {
				t.Fatalf("EndIdentitySessions of no identity = %d, %v; want 0", n, err)
			}
			for id, want := range map[string]*time.Time{
				"mine-1": &t0, "mine-2": &t0, "mine-old": ptr(t0.Add(-time.Minute)), "other-user": nil, "other-corp": nil,
			} {
				sess, err := s.Session(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				assertEqual(t, "Session("+id+").EndedAt", sess.EndedAt, want)
			}
			assertRevoked(t, s, map[string]*time.Time{
				"a-m1": &t0, "a-m2": &t0, "r-m1": &t0, "r-m2": &t0,
				"a-o1": nil, "a-o2": nil, "a-none": nil, "r-o1": nil, "r-o2": nil, "r-none": nil,
			})
		})
	}
}
