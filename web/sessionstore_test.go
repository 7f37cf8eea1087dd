package web

import (
	"errors"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestMemorySessions(t *testing.T) {
	testSessionStore(t, func(t *testing.T) SessionStore { return NewMemorySessions() })
}

func TestPostgresSessions(t *testing.T) {
	testSessionStore(t, func(t *testing.T) SessionStore { return NewPostgresSessions(pgtest.NewDatabase(t)) })
}

// testSessionStore is the conformance suite every SessionStore passes.
func testSessionStore(t *testing.T, newStore func(t *testing.T) SessionStore) {
	// Postgres keeps microseconds; whole seconds compare equal everywhere.
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	newRec := func(account string) SessionRecord {
		return SessionRecord{
			IDHash: hashSessionID(randomToken()), AccountID: account,
			Created: t0, LastSeen: t0, Expires: t0.Add(8 * time.Hour),
		}
	}
	same := func(a, b SessionRecord) bool {
		return a.IDHash == b.IDHash && a.AccountID == b.AccountID && a.Created.Equal(b.Created) &&
			a.LastSeen.Equal(b.LastSeen) && a.Expires.Equal(b.Expires) && a.Revoked.Equal(b.Revoked)
	}

	t.Run("create and read", func(t *testing.T) {
		s := newStore(t)
		rec := newRec("acct1")
		if err := s.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.Session(t.Context(), rec.IDHash)
		if err != nil || !same(got, rec) {
			t.Errorf("Session = %+v, %v; want %+v", got, err, rec)
		}
		if err := s.Create(t.Context(), rec); err == nil {
			t.Errorf("Create of an id in use succeeded")
		}
		if _, err := s.Session(t.Context(), hashSessionID("other")); !errors.Is(err, ErrNoSession) {
			t.Errorf("Session of an unknown id: err = %v, want ErrNoSession", err)
		}
	})

	t.Run("touch moves forward only", func(t *testing.T) {
		s := newStore(t)
		rec := newRec("acct1")
		if err := s.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			at, want time.Time
		}{
			{t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
			{t0.Add(time.Minute), t0.Add(2 * time.Minute)}, // a slower replica's older touch
			{t0.Add(5 * time.Minute), t0.Add(5 * time.Minute)},
		} {
			if err := s.Touch(t.Context(), rec.IDHash, tt.at); err != nil {
				t.Fatal(err)
			}
			got, err := s.Session(t.Context(), rec.IDHash)
			if err != nil || !got.LastSeen.Equal(tt.want) {
				t.Errorf("after Touch(%v): LastSeen = %v, %v; want %v", tt.at, got.LastSeen, err, tt.want)
			}
		}
		if err := s.Touch(t.Context(), hashSessionID("other"), t0); err != nil {
			t.Errorf("Touch of an unknown id: %v, want no error", err)
		}
	})

	t.Run("revoke one", func(t *testing.T) {
		s := newStore(t)
		a, b := newRec("acct1"), newRec("acct1")
		for _, r := range []SessionRecord{a, b} {
			if err := s.Create(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
		at := t0.Add(time.Minute)
		if err := s.Revoke(t.Context(), a.IDHash, at); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(t.Context(), a.IDHash, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Session(t.Context(), a.IDHash); !got.Revoked.Equal(at) {
			t.Errorf("revoked session: Revoked = %v, want the first revocation %v", got.Revoked, at)
		}
		if got, _ := s.Session(t.Context(), b.IDHash); !got.Revoked.IsZero() {
			t.Errorf("the account's other session: Revoked = %v, want zero", got.Revoked)
		}
	})

	t.Run("revoke account", func(t *testing.T) {
		s := newStore(t)
		a1, a2, b := newRec("acct1"), newRec("acct1"), newRec("acct2")
		for _, r := range []SessionRecord{a1, a2, b} {
			if err := s.Create(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Revoke(t.Context(), a2.IDHash, t0); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Minute)
		n, err := s.RevokeAccount(t.Context(), "acct1", at)
		if err != nil || n != 1 {
			t.Errorf("RevokeAccount = %d, %v; want 1 (the live one)", n, err)
		}
		for _, tt := range []struct {
			rec  SessionRecord
			want time.Time
		}{{a1, at}, {a2, t0}, {b, time.Time{}}} {
			if got, _ := s.Session(t.Context(), tt.rec.IDHash); !got.Revoked.Equal(tt.want) {
				t.Errorf("session of %s: Revoked = %v, want %v", tt.rec.AccountID, got.Revoked, tt.want)
			}
		}
	})

	t.Run("delete expired", func(t *testing.T) {
		s := newStore(t)
		now := t0.Add(2 * time.Hour)
		idleBefore := now.Add(-30 * time.Minute)
		live := newRec("live")
		live.LastSeen = now.Add(-10 * time.Minute)
		expired := newRec("expired")
		expired.LastSeen, expired.Expires = now, now
		idle := newRec("idle")
		idle.LastSeen = idleBefore
		revoked := newRec("revoked")
		revoked.LastSeen = now
		for _, r := range []SessionRecord{live, expired, idle, revoked} {
			if err := s.Create(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Revoke(t.Context(), revoked.IDHash, now); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteExpired(t.Context(), now, idleBefore)
		if err != nil || n != 3 {
			t.Errorf("DeleteExpired = %d, %v; want 3", n, err)
		}
		for _, r := range []SessionRecord{expired, idle, revoked} {
			if _, err := s.Session(t.Context(), r.IDHash); !errors.Is(err, ErrNoSession) {
				t.Errorf("%s session: err = %v, want ErrNoSession", r.AccountID, err)
			}
		}
		if got, err := s.Session(t.Context(), live.IDHash); err != nil || !same(got, live) {
			t.Errorf("live session = %+v, %v; want it kept", got, err)
		}
	})
}
