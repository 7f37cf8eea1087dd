package idp

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// The conformance tests of the Store methods that do in one step what two
// others do (the sign-in path's round trips): each is checked against the
// pair it replaces, on success and on every refusal, and a refusal must
// change nothing.

func testConsumeUpstreamWithRequest(t *testing.T, s Store) {
	ctx := t.Context()
	wantAR := fullAuthRequest("ar-state-1", t0)
	mustCreateAuthRequest(t, s, wantAR)
	wantTx := newUpstream("state-1", "qr", t0, 3*time.Minute)
	if err := s.CreateUpstream(ctx, wantTx); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}

	tx, ar, err := s.ConsumeUpstreamWithRequest(ctx, "state-1", t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("ConsumeUpstreamWithRequest: %v", err)
	}
	assertEqual(t, "transaction", tx, wantTx)
	assertEqual(t, "request", ar, wantAR)

	// The request comes back whatever its state: the caller checks it.
	done := issueCode(t, s, "ar-state-done", "code-done", t0)
	if err := s.CreateUpstream(ctx, newUpstream("state-done", "web", t0, 10*time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	expired := minimalAuthRequest("ar-state-expired", t0.Add(-time.Hour))
	mustCreateAuthRequest(t, s, expired)
	if err := s.CreateUpstream(ctx, newUpstream("state-expired", "web", t0, 10*time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	for _, want := range []*AuthRequest{done, expired} {
		_, got, err := s.ConsumeUpstreamWithRequest(ctx, "state"+want.ID[len("ar-state"):], t0)
		if err != nil {
			t.Errorf("ConsumeUpstreamWithRequest for %s: %v", want.ID, err)
			continue
		}
		assertEqual(t, "request "+want.ID, got, want)
	}

	// Refusals: single use, shared with ConsumeUpstream, and expiry.
	if err := s.CreateUpstream(ctx, newUpstream("state-2", "web", t0, 3*time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	mustCreateAuthRequest(t, s, minimalAuthRequest("ar-state-2", t0))
	if err := s.CreateUpstream(ctx, newUpstream("state-3", "web", t0, 3*time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	mustCreateAuthRequest(t, s, minimalAuthRequest("ar-state-3", t0))
	if _, err := s.ConsumeUpstream(ctx, "state-3", t0); err != nil {
		t.Fatalf("ConsumeUpstream: %v", err)
	}
	tests := []struct {
		name string
		hash string
		now  time.Time
	}{
		{name: "used", hash: "state-1", now: t0.Add(time.Minute)},
		{name: "used by ConsumeUpstream", hash: "state-3", now: t0},
		{name: "unknown", hash: "state-unknown", now: t0},
		{name: "expires now", hash: "state-2", now: t0.Add(3 * time.Minute)},
		{name: "expired", hash: "state-2", now: t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, ar, err := s.ConsumeUpstreamWithRequest(ctx, tt.hash, tt.now)
			assertErr(t, "ConsumeUpstreamWithRequest", err, ErrNotFound)
			if tx != nil || ar != nil {
				t.Errorf("ConsumeUpstreamWithRequest returned %+v, %+v; want nothing", tx, ar)
			}
		})
	}
	t.Run("an expired one was not consumed by the refusal", func(t *testing.T) {
		if _, _, err := s.ConsumeUpstreamWithRequest(ctx, "state-2", t0.Add(3*time.Minute-time.Microsecond)); err != nil {
			t.Errorf("ConsumeUpstreamWithRequest before expiry: %v", err)
		}
		_, err := s.ConsumeUpstream(ctx, "state-2", t0)
		assertErr(t, "ConsumeUpstream after ConsumeUpstreamWithRequest", err, ErrNotFound)
	})

	t.Run("request gone", func(t *testing.T) {
		if err := s.CreateUpstream(ctx, newUpstream("state-orphan", "web", t0, 10*time.Minute)); err != nil {
			t.Fatalf("CreateUpstream: %v", err)
		}
		_, _, err := s.ConsumeUpstreamWithRequest(ctx, "state-orphan", t0)
		assertErr(t, "ConsumeUpstreamWithRequest of a transaction whose request is gone", err, ErrNotFound)
		// It was used up all the same: a request appearing under that id
		// later does not revive it.
		mustCreateAuthRequest(t, s, minimalAuthRequest("ar-state-orphan", t0))
		_, _, err = s.ConsumeUpstreamWithRequest(ctx, "state-orphan", t0)
		assertErr(t, "ConsumeUpstreamWithRequest again", err, ErrNotFound)
	})

	t.Run("concurrent", func(t *testing.T) {
		if err := s.CreateUpstream(ctx, newUpstream("state-race", "web", t0, 10*time.Minute)); err != nil {
			t.Fatalf("CreateUpstream: %v", err)
		}
		mustCreateAuthRequest(t, s, minimalAuthRequest("ar-state-race", t0))
		errs := race(racers, func(i int) error {
			var err error
			if i%2 == 0 {
				_, _, err = s.ConsumeUpstreamWithRequest(ctx, "state-race", t0)
			} else {
				_, err = s.ConsumeUpstream(ctx, "state-race", t0)
			}
			return err
		})
		assertOneWinner(t, "ConsumeUpstreamWithRequest and ConsumeUpstream", errs, ErrNotFound)
	})
}

func testAuthRequestWithSession(t *testing.T, s Store) {
	ctx := t.Context()
	full := issueCode(t, s, "ar-1", "code-1", t0)
	minimal := minimalAuthRequest("ar-2", t0)
	mustCreateAuthRequest(t, s, minimal)
	live := newSession("sess-live", t0)
	mustCreateSession(t, s, live)
	ended := withSessionTimes(newSession("sess-ended", t0), t0.Add(time.Hour), ptr(t0.Add(time.Minute)))
	ended.AMR = nil
	mustCreateSession(t, s, ended)

	tests := []struct {
		name      string
		id, sess  string
		wantAR    *AuthRequest
		wantSess  *Session
		wantError error
	}{
		{name: "request and session", id: "ar-1", sess: "sess-live", wantAR: full, wantSess: live},
		{name: "ended session", id: "ar-2", sess: "sess-ended", wantAR: minimal, wantSess: ended},
		{name: "no session id", id: "ar-1", sess: "", wantAR: full},
		{name: "unknown session", id: "ar-2", sess: "sess-unknown", wantAR: minimal},
		{name: "unknown request", id: "ar-unknown", sess: "sess-live", wantError: ErrNotFound},
		{name: "nothing known", id: "ar-unknown", sess: "sess-unknown", wantError: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ar, sess, err := s.AuthRequestWithSession(ctx, tt.id, tt.sess)
			assertErr(t, "AuthRequestWithSession", err, tt.wantError)
			if tt.wantError != nil {
				if ar != nil || sess != nil {
					t.Errorf("AuthRequestWithSession returned %+v, %+v; want nothing", ar, sess)
				}
				return
			}
			assertEqual(t, "request", ar, tt.wantAR)
			if tt.wantSess == nil {
				if sess != nil {
					t.Errorf("session = %+v, want nil", sess)
				}
				return
			}
			assertEqual(t, "session", sess, tt.wantSess)
		})
	}
}

// completionOf is the completion StartSessionWithCode records for sess.
func completionOf(sess *Session) Completion {
	return Completion{Subject: sess.Subject, AuthTime: sess.AuthTime, AMR: sess.AMR, SessionID: sess.ID, DingTalk: sess.DingTalk}
}

func testStartSessionWithCode(t *testing.T, s Store) {
	ctx := t.Context()
	now := t0.Add(time.Minute)
	want := fullAuthRequest("ar-1", t0)
	mustCreateAuthRequest(t, s, want)
	sess := newSession("sess-1", now)
	sess.DingTalk = DingTalkIDs{CorpID: "ding-corp-2", UserID: "user-2", UnionID: "union-2"}
	if err := s.StartSessionWithCode(ctx, sess, "ar-1", "code-1", now.Add(time.Minute), now); err != nil {
		t.Fatalf("StartSessionWithCode: %v", err)
	}
	want.Done, want.Completion = true, completionOf(sess)
	got, err := s.AuthRequest(ctx, "ar-1")
	if err != nil {
		t.Fatalf("AuthRequest: %v", err)
	}
	assertEqual(t, "completed request", got, want)
	gotSess, err := s.Session(ctx, "sess-1")
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	assertEqual(t, "session", gotSess, sess)
	// The code was saved with its expiry: it works until then, once.
	_, err = s.ConsumeCode(ctx, "code-1", now.Add(time.Minute))
	assertErr(t, "ConsumeCode at its expiry", err, ErrNotFound)
	consumed, err := s.ConsumeCode(ctx, "code-1", now.Add(time.Minute-time.Microsecond))
	if err != nil {
		t.Fatalf("ConsumeCode: %v", err)
	}
	assertEqual(t, "ConsumeCode", consumed, want)

	// Refusals store nothing: no session, no completion, no code.
	mustCreateSession(t, s, newSession("sess-taken", t0))
	issueCode(t, s, "ar-done", "code-taken", t0)
	tests := []struct {
		name     string
		create   *AuthRequest // the request to complete, if it exists
		sessID   string
		codeHash string
		want     error
	}{
		{name: "unknown request", sessID: "sess-a", codeHash: "code-a", want: ErrNotFound},
		{name: "request expires now", create: minimalAuthRequest("ar-b", now.Add(-15*time.Minute)), sessID: "sess-b", codeHash: "code-b", want: ErrNotFound},
		{name: "request expired", create: minimalAuthRequest("ar-c", now.Add(-time.Hour)), sessID: "sess-c", codeHash: "code-c", want: ErrNotFound},
		{name: "session id taken", create: minimalAuthRequest("ar-d", now), sessID: "sess-taken", codeHash: "code-d", want: ErrConflict},
		{name: "code hash taken", create: minimalAuthRequest("ar-e", now), sessID: "sess-e", codeHash: "code-taken", want: ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "ar-unknown"
			if tt.create != nil {
				id = tt.create.ID
				mustCreateAuthRequest(t, s, tt.create)
			}
			err := s.StartSessionWithCode(ctx, newSession(tt.sessID, now), id, tt.codeHash, now.Add(time.Minute), now)
			assertErr(t, "StartSessionWithCode", err, tt.want)
			if tt.sessID != "sess-taken" {
				assertErr(t, "lookup of the refused session", lookup(t, s, tt.sessID), ErrNotFound)
			} else if got, err := s.Session(ctx, "sess-taken"); err != nil || got.AuthTime.Equal(now) {
				t.Errorf("the taken session = %+v, %v; want it unchanged", got, err)
			}
			if tt.create != nil {
				got, err := s.AuthRequest(ctx, id)
				if err != nil {
					t.Fatalf("AuthRequest: %v", err)
				}
				assertEqual(t, "refused request", got, tt.create)
			}
			if tt.codeHash != "code-taken" {
				_, err := s.ConsumeCode(ctx, tt.codeHash, now)
				assertErr(t, "ConsumeCode of the refused code", err, ErrNotFound)
			}
		})
	}
	t.Run("request done", func(t *testing.T) {
		before, err := s.AuthRequest(ctx, "ar-done")
		if err != nil {
			t.Fatalf("AuthRequest: %v", err)
		}
		err = s.StartSessionWithCode(ctx, newSession("sess-f", now), "ar-done", "code-f", now.Add(time.Minute), now)
		assertErr(t, "StartSessionWithCode of a done request", err, ErrConflict)
		assertErr(t, "lookup of the refused session", lookup(t, s, "sess-f"), ErrNotFound)
		after, err := s.AuthRequest(ctx, "ar-done")
		if err != nil {
			t.Fatalf("AuthRequest: %v", err)
		}
		assertEqual(t, "done request", after, before)
		_, err = s.ConsumeCode(ctx, "code-f", now)
		assertErr(t, "ConsumeCode of the refused code", err, ErrNotFound)
		// The request's own code still works.
		if _, err := s.ConsumeCode(ctx, "code-taken", t0); err != nil {
			t.Errorf("ConsumeCode of the done request's code: %v", err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		mustCreateAuthRequest(t, s, minimalAuthRequest("ar-race", now))
		errs := race(racers, func(i int) error {
			return s.StartSessionWithCode(ctx, newSession(fmt.Sprintf("sess-race-%d", i), now), "ar-race", fmt.Sprintf("code-race-%d", i), now.Add(time.Minute), now)
		})
		winner := assertOneWinner(t, "StartSessionWithCode", errs, ErrConflict)
		for i := range racers {
			err := lookup(t, s, fmt.Sprintf("sess-race-%d", i))
			if i == winner {
				if err != nil {
					t.Errorf("the winner's session: %v", err)
				}
				continue
			}
			assertErr(t, fmt.Sprintf("a loser's session %d", i), err, ErrNotFound)
		}
		ar, err := s.AuthRequest(ctx, "ar-race")
		if err != nil || ar.SessionID != fmt.Sprintf("sess-race-%d", winner) {
			t.Errorf("request: %+v, %v; want completed by the winner", ar, err)
		}
	})
}

func testCreateTokens(t *testing.T, s Store) {
	ctx := t.Context()
	issueCode(t, s, "ar-1", "code-1", t0)
	rt := newRefreshToken("rt-1", "ar-1", "fam-1", "sess-1", t0)
	at := newAccessToken("at-1", "ar-1", "fam-1", "sess-1", t0)
	if err := s.CreateTokens(ctx, rt, at); err != nil {
		t.Fatalf("CreateTokens: %v", err)
	}
	assertRefreshToken(t, s, rt)
	gotAT, err := s.AccessToken(ctx, "at-1")
	if err != nil {
		t.Fatalf("AccessToken: %v", err)
	}
	assertEqual(t, "AccessToken", gotAT, at)

	// Grants that are not revoked: none, and one no request names.
	for i, grant := range []string{"", "ar-unknown"} {
		family := fmt.Sprintf("fam-ok-%d", i)
		rt := newRefreshToken(fmt.Sprintf("rt-ok-%d", i), grant, family, "", t0)
		at := newAccessToken(fmt.Sprintf("at-ok-%d", i), grant, family, "", t0)
		if err := s.CreateTokens(ctx, rt, at); err != nil {
			t.Errorf("CreateTokens in grant %q: %v", grant, err)
		}
	}

	// Refusals store neither token.
	mustCreateRefreshToken(t, s, newRefreshToken("rt-taken", "ar-9", "fam-9", "", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-taken", "ar-9", "fam-9", "", t0))
	issueCode(t, s, "ar-replayed", "code-replayed", t0)
	if _, err := s.ConsumeCode(ctx, "code-replayed", t0); err != nil {
		t.Fatalf("ConsumeCode: %v", err)
	}
	_, err = s.ConsumeCode(ctx, "code-replayed", t0)
	assertErr(t, "ConsumeCode replay", err, ErrCodeReplayed)
	tests := []struct {
		name   string
		change func(rt *RefreshToken, at *AccessToken)
		want   error // nil: any error
	}{
		{name: "grant revoked by a code replay", change: func(rt *RefreshToken, at *AccessToken) { rt.GrantID, at.GrantID = "ar-replayed", "ar-replayed" }, want: ErrGrantRevoked},
		{name: "refresh hash taken", change: func(rt *RefreshToken, _ *AccessToken) { rt.Hash = "rt-taken" }, want: ErrConflict},
		{name: "refresh id taken", change: func(rt *RefreshToken, _ *AccessToken) { rt.ID = "rt-taken-id" }, want: ErrConflict},
		{name: "access id taken", change: func(_ *RefreshToken, at *AccessToken) { at.ID = "at-taken" }, want: ErrConflict},
		{name: "access token of another grant", change: func(_ *RefreshToken, at *AccessToken) { at.GrantID = "ar-9" }},
		{name: "access token of another family", change: func(_ *RefreshToken, at *AccessToken) { at.FamilyID = "fam-9" }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			family := fmt.Sprintf("fam-r-%d", i)
			rt := newRefreshToken(fmt.Sprintf("rt-r-%d", i), "ar-1", family, "", t0)
			at := newAccessToken(fmt.Sprintf("at-r-%d", i), "ar-1", family, "", t0)
			tt.change(rt, at)
			err := s.CreateTokens(ctx, rt, at)
			if tt.want == nil && err == nil {
				t.Errorf("CreateTokens = nil, want an error")
			} else if tt.want != nil {
				assertErr(t, "CreateTokens", err, tt.want)
			}
			if rt.Hash != "rt-taken" {
				assertErr(t, "lookup of the refused refresh token", lookup(t, s, rt.Hash), ErrNotFound)
			}
			if at.ID != "at-taken" {
				assertErr(t, "lookup of the refused access token", lookup(t, s, at.ID), ErrNotFound)
			}
		})
	}
	assertRefreshToken(t, s, newRefreshToken("rt-taken", "ar-9", "fam-9", "", t0))
	gotAT, err = s.AccessToken(ctx, "at-taken")
	if err != nil {
		t.Fatalf("AccessToken: %v", err)
	}
	assertEqual(t, "the taken access token", gotAT, newAccessToken("at-taken", "ar-9", "fam-9", "", t0))
}

func testRotateRefreshTokenWithAccess(t *testing.T, s Store) {
	ctx := t.Context()
	now := t0.Add(time.Minute)
	mustCreateRefreshToken(t, s, newRefreshToken("rt-0", "ar-1", "fam-1", "sess-1", t0))
	// next and the access token are stored in the old token's family,
	// whatever they say.
	next := newRefreshToken("rt-1", "ar-1", "", "sess-1", now)
	at := newAccessToken("at-1", "ar-1", "fam-other", "sess-1", now)
	if err := s.RotateRefreshTokenWithAccess(ctx, "rt-0", next, at, now); err != nil {
		t.Fatalf("RotateRefreshTokenWithAccess: %v", err)
	}
	wantOld := newRefreshToken("rt-0", "ar-1", "fam-1", "sess-1", t0)
	wantOld.UsedAt = ptr(now)
	assertRefreshToken(t, s, wantOld)
	assertRefreshToken(t, s, newRefreshToken("rt-1", "ar-1", "fam-1", "sess-1", now))
	gotAT, err := s.AccessToken(ctx, "at-1")
	if err != nil {
		t.Fatalf("AccessToken: %v", err)
	}
	assertEqual(t, "AccessToken", gotAT, newAccessToken("at-1", "ar-1", "fam-1", "sess-1", now))

	// A replay revokes the family, the access token just stored included,
	// and stores nothing.
	replayAt := now.Add(time.Minute)
	err = s.RotateRefreshTokenWithAccess(ctx, "rt-0", newRefreshToken("rt-2", "ar-1", "fam-1", "sess-1", now), newAccessToken("at-2", "ar-1", "fam-1", "sess-1", now), replayAt)
	assertErr(t, "RotateRefreshTokenWithAccess replay", err, ErrRefreshReplayed)
	assertRevoked(t, s, map[string]*time.Time{"rt-0": &replayAt, "rt-1": &replayAt, "at-1": &replayAt})
	for _, id := range []string{"rt-2", "at-2"} {
		assertErr(t, "lookup of the replay's "+id, lookup(t, s, id), ErrNotFound)
	}

	// Refusals change nothing: the old token is not used, next and the
	// access token not stored.
	issueCode(t, s, "ar-replayed", "code-replayed", t0)
	if _, err := s.ConsumeCode(ctx, "code-replayed", t0); err != nil {
		t.Fatalf("ConsumeCode: %v", err)
	}
	_, err = s.ConsumeCode(ctx, "code-replayed", t0)
	assertErr(t, "ConsumeCode replay", err, ErrCodeReplayed)
	mustCreateRefreshToken(t, s, newRefreshToken("rt-taken", "ar-9", "fam-9", "", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-taken", "ar-9", "fam-9", "", t0))
	tests := []struct {
		name   string
		change func(old, next *RefreshToken, at *AccessToken)
		want   error // nil: any error
	}{
		{name: "unknown", want: ErrNotFound},
		{name: "idle expiry reached", change: func(old, _ *RefreshToken, _ *AccessToken) { old.ExpiresAt = t0 }, want: ErrNotFound},
		{name: "family expiry reached", change: func(old, _ *RefreshToken, _ *AccessToken) { old.FamilyExpiresAt = t0 }, want: ErrNotFound},
		{name: "revoked", change: func(old, _ *RefreshToken, _ *AccessToken) { old.RevokedAt = ptr(t0.Add(-time.Second)) }, want: ErrNotFound},
		{name: "grant revoked by a code replay", change: func(_, next *RefreshToken, at *AccessToken) {
			next.GrantID, at.GrantID = "ar-replayed", "ar-replayed" // the old token is of a live grant
		}, want: ErrGrantRevoked},
		{name: "next hash taken", change: func(_, next *RefreshToken, _ *AccessToken) { next.Hash = "rt-taken" }, want: ErrConflict},
		{name: "access id taken", change: func(_, _ *RefreshToken, at *AccessToken) { at.ID = "at-taken" }, want: ErrConflict},
		{name: "access token of another grant", change: func(_, _ *RefreshToken, at *AccessToken) { at.GrantID = "ar-9" }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			family := fmt.Sprintf("fam-r-%d", i)
			old := newRefreshToken(fmt.Sprintf("rt-old-%d", i), "ar-1", family, "", t0.Add(-time.Hour))
			next := newRefreshToken(fmt.Sprintf("rt-next-%d", i), "ar-1", family, "", t0)
			at := newAccessToken(fmt.Sprintf("at-next-%d", i), "ar-1", family, "", t0)
			if tt.change != nil {
				tt.change(old, next, at)
			}
			if tt.name != "unknown" {
				mustCreateRefreshToken(t, s, old)
			}
			err := s.RotateRefreshTokenWithAccess(ctx, old.Hash, next, at, t0)
			if tt.want == nil && err == nil {
				t.Errorf("RotateRefreshTokenWithAccess = nil, want an error")
			} else if tt.want != nil {
				assertErr(t, "RotateRefreshTokenWithAccess", err, tt.want)
			}
			if tt.name != "unknown" {
				assertRefreshToken(t, s, old)
			}
			if next.Hash != "rt-taken" {
				assertErr(t, "lookup of next", lookup(t, s, next.Hash), ErrNotFound)
			}
			if at.ID != "at-taken" {
				assertErr(t, "lookup of the access token", lookup(t, s, at.ID), ErrNotFound)
			}
		})
	}
	assertRefreshToken(t, s, newRefreshToken("rt-taken", "ar-9", "fam-9", "", t0))

	t.Run("concurrent", func(t *testing.T) {
		mustCreateRefreshToken(t, s, newRefreshToken("rt-race", "ar-1", "fam-race", "", t0))
		errs := race(racers, func(i int) error {
			next := newRefreshToken(fmt.Sprintf("rt-race-%d", i), "ar-1", "fam-race", "", t0)
			return s.RotateRefreshTokenWithAccess(ctx, "rt-race", next, newAccessToken(fmt.Sprintf("at-race-%d", i), "ar-1", "fam-race", "", t0), t0)
		})
		winner := assertOneWinner(t, "RotateRefreshTokenWithAccess", errs, ErrRefreshReplayed)
		for i := range racers {
			id := fmt.Sprintf("at-race-%d", i)
			at, err := s.AccessToken(ctx, id)
			switch {
			case i != winner:
				assertErr(t, "a loser's access token", err, ErrNotFound)
			case err != nil:
				t.Errorf("the winner's access token: %v", err)
			case at.RevokedAt == nil:
				t.Errorf("the winner's access token is not revoked: the losers' replays revoke the family")
			}
		}
	})
}

// testCodeReplayRacesTokenPairs is testCodeReplayRacesTokenCreation for the
// combined writes: the winner of a code stores its refresh and access token
// together, then rotates with an access token, while the losers' replays
// revoke the grant. No token of the grant may end stored and not revoked,
// and the two tokens of one write are stored together or not at all.
func testCodeReplayRacesTokenPairs(t *testing.T, s Store) {
	ctx := t.Context()
	const rounds = 50
	for round := range rounds {
		grant, code := fmt.Sprintf("ar-%d", round), fmt.Sprintf("code-%d", round)
		issueCode(t, s, grant, code, t0)
		family := fmt.Sprintf("fam-%d", round)
		rtFirst, atFirst := fmt.Sprintf("rt-%d-first", round), fmt.Sprintf("at-%d-first", round)
		rtNext, atNext := fmt.Sprintf("rt-%d-next", round), fmt.Sprintf("at-%d-next", round)
		var created []error
		errs := race(racers, func(int) error {
			ar, err := s.ConsumeCode(ctx, code, t0)
			if err != nil {
				return err
			}
			created = []error{
				s.CreateTokens(ctx, newRefreshToken(rtFirst, ar.ID, family, ar.SessionID, t0), newAccessToken(atFirst, ar.ID, family, ar.SessionID, t0)),
				s.RotateRefreshTokenWithAccess(ctx, rtFirst, newRefreshToken(rtNext, ar.ID, family, ar.SessionID, t0), newAccessToken(atNext, ar.ID, family, ar.SessionID, t0), t0),
			}
			return nil
		})
		assertOneWinner(t, fmt.Sprintf("round %d: ConsumeCode", round), errs, ErrCodeReplayed)

		for i, pair := range [][2]string{{rtFirst, atFirst}, {rtNext, atNext}} {
			err := created[i]
			switch {
			case err == nil:
			case errors.Is(err, ErrGrantRevoked):
			case i == 1 && errors.Is(err, ErrNotFound): // the first pair was revoked or refused
			default:
				t.Errorf("round %d: creating %v: %v", round, pair, err)
			}
			for _, id := range pair {
				stored := lookup(t, s, id) == nil
				if stored != (err == nil) {
					t.Errorf("round %d: %s stored = %v, but its creation returned %v", round, id, stored, err)
				}
			}
			if err == nil {
				assertRevoked(t, s, map[string]*time.Time{pair[0]: &t0, pair[1]: &t0})
			}
		}
	}
}

// testCombinedReturnCopies: the combined writes keep no reference to what
// they were given, and the combined reads return copies.
func testCombinedReturnCopies(t *testing.T, s Store) {
	ctx := t.Context()
	mustCreateAuthRequest(t, s, fullAuthRequest("ar-1", t0))
	sess := newSession("sess-1", t0)
	if err := s.StartSessionWithCode(ctx, sess, "ar-1", "code-1", t0.Add(time.Minute), t0); err != nil {
		t.Fatalf("StartSessionWithCode: %v", err)
	}
	scribble(reflect.ValueOf(sess))
	wantAR := fullAuthRequest("ar-1", t0)
	wantAR.Done, wantAR.Completion = true, completionOf(newSession("sess-1", t0))
	for range 2 {
		ar, got, err := s.AuthRequestWithSession(ctx, "ar-1", "sess-1")
		if err != nil {
			t.Fatalf("AuthRequestWithSession: %v", err)
		}
		assertEqual(t, "request", ar, wantAR)
		assertEqual(t, "session", got, newSession("sess-1", t0))
		scribble(reflect.ValueOf(ar))
		scribble(reflect.ValueOf(got))
	}

	if err := s.CreateUpstream(ctx, newUpstream("state-1", "web", t0, time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	mustCreateAuthRequest(t, s, fullAuthRequest("ar-state-1", t0))
	_, ar, err := s.ConsumeUpstreamWithRequest(ctx, "state-1", t0)
	if err != nil {
		t.Fatalf("ConsumeUpstreamWithRequest: %v", err)
	}
	scribble(reflect.ValueOf(ar))
	got, err := s.AuthRequest(ctx, "ar-state-1")
	if err != nil {
		t.Fatalf("AuthRequest: %v", err)
	}
	assertEqual(t, "request after writing to the one returned", got, fullAuthRequest("ar-state-1", t0))

	rt, at := newRefreshToken("rt-1", "ar-1", "fam-1", "", t0), newAccessToken("at-1", "ar-1", "fam-1", "", t0)
	if err := s.CreateTokens(ctx, rt, at); err != nil {
		t.Fatalf("CreateTokens: %v", err)
	}
	scribble(reflect.ValueOf(rt))
	scribble(reflect.ValueOf(at))
	next, at2 := newRefreshToken("rt-2", "ar-1", "fam-1", "", t0), newAccessToken("at-2", "ar-1", "fam-1", "", t0)
	if err := s.RotateRefreshTokenWithAccess(ctx, "rt-1", next, at2, t0); err != nil {
		t.Fatalf("RotateRefreshTokenWithAccess: %v", err)
	}
	scribble(reflect.ValueOf(next))
	scribble(reflect.ValueOf(at2))
	wantRT := newRefreshToken("rt-1", "ar-1", "fam-1", "", t0)
	wantRT.UsedAt = ptr(t0)
	assertRefreshToken(t, s, wantRT)
	assertRefreshToken(t, s, newRefreshToken("rt-2", "ar-1", "fam-1", "", t0))
	for _, want := range []*AccessToken{newAccessToken("at-1", "ar-1", "fam-1", "", t0), newAccessToken("at-2", "ar-1", "fam-1", "", t0)} {
		got, err := s.AccessToken(ctx, want.ID)
		if err != nil {
			t.Fatalf("AccessToken: %v", err)
		}
		assertEqual(t, want.ID, got, want)
	}
}

// TestPostgresTokenPairsWaitForReplay shows the row lock of migration 0004
// at work in the combined token writes, deterministically: while a code
// replay holds the grant's row (its mark not yet committed), CreateTokens
// and RotateRefreshTokenWithAccess of the grant wait, and once the replay
// commits they store nothing. Without the lock they would read the row
// before the mark and store tokens that the replay's revocation, already
// past, never sees.
func TestPostgresTokenPairsWaitForReplay(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewDatabase(t)
	s := NewPostgresStore(pool)
	ctx := t.Context()
	mustCreateRefreshToken(t, s, newRefreshToken("rt-other", "ar-other", "fam-other", "", t0))
	tests := []struct {
		name string
		ids  []string // what it would store
		op   func(grant string) error
	}{
		{name: "CreateTokens", ids: []string{"rt-pair", "at-pair"}, op: func(grant string) error {
			return s.CreateTokens(ctx, newRefreshToken("rt-pair", grant, "fam-1", "", t0), newAccessToken("at-pair", grant, "fam-1", "", t0))
		}},
		{name: "RotateRefreshTokenWithAccess", ids: []string{"rt-next", "at-next"}, op: func(grant string) error {
			return s.RotateRefreshTokenWithAccess(ctx, "rt-other", newRefreshToken("rt-next", grant, "", "", t0), newAccessToken("at-next", grant, "", "", t0), t0)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grant, code := fmt.Sprintf("ar-%d", i), fmt.Sprintf("code-%d", i)
			issueCode(t, s, grant, code, t0)
			if _, err := s.ConsumeCode(ctx, code, t0); err != nil {
				t.Fatalf("ConsumeCode: %v", err)
			}
			// The replay, up to its mark: ConsumeCode's transaction.
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
			var id string
			if err := tx.QueryRow(ctx, replayCodeSQL, code, t0).Scan(&id); err != nil {
				t.Fatalf("replay's mark: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- tt.op(grant) }()
			for waiting := false; !waiting; {
				select {
				case err := <-done:
					t.Fatalf("%s returned %v while a replay held the grant's row; want it to wait", tt.name, err)
				default:
				}
				if err := pool.QueryRow(ctx, `select exists (select from pg_locks where not granted)`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			assertErr(t, tt.name+" after the replay", <-done, ErrGrantRevoked)
			for _, id := range tt.ids {
				assertErr(t, "lookup of "+id, lookup(t, s, id), ErrNotFound)
			}
		})
	}
	assertRefreshToken(t, s, newRefreshToken("rt-other", "ar-other", "fam-other", "", t0))
}
