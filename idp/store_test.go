package idp

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	runStoreTests(t, func(*testing.T) Store { return NewMemoryStore() })
}

func TestPostgresStore(t *testing.T) {
	t.Parallel()
	runStoreTests(t, func(t *testing.T) Store {
		s := NewPostgresStore(pgtest.NewDatabase(t))
		s.batchSize = 3 // so that DeleteExpired needs several batches per table
		return s
	})
}

// runStoreTests is the Store conformance suite: every implementation must
// pass it. newStore returns an empty store for one test.
func runStoreTests(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"AuthRequestRoundTrip", testAuthRequestRoundTrip},
		{"CompleteAuthRequest", testCompleteAuthRequest},
		{"CompleteAuthRequestConcurrent", testCompleteAuthRequestConcurrent},
		{"SaveCode", testSaveCode},
		{"ConsumeCode", testConsumeCode},
		{"ConsumeCodeConcurrent", testConsumeCodeConcurrent},
		{"CodeReplayRevokesGrant", testCodeReplayRevokesGrant},
		{"CodeReplayMarksGrantRevoked", testCodeReplayMarksGrantRevoked},
		{"CodeReplayRacesTokenCreation", testCodeReplayRacesTokenCreation},
		{"AccessToken", testAccessToken},
		{"RefreshToken", testRefreshToken},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RotateRefreshTokenRefused", testRotateRefreshTokenRefused},
		{"RotateRefreshTokenReplay", testRotateRefreshTokenReplay},
		{"RotateRefreshTokenConcurrent", testRotateRefreshTokenConcurrent},
		{"Revoke", testRevoke},
		{"RevokeConcurrent", testRevokeConcurrent},
		{"Session", testSession},
		{"SigningKeys", testSigningKeys},
		{"ReplaceSigningKeysConcurrent", testReplaceSigningKeysConcurrent},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredConcurrent", testDeleteExpiredConcurrent},
		{"ReturnsCopies", testReturnsCopies},
		{"Upstream", testUpstream},
		{"UpstreamConcurrent", testUpstreamConcurrent},
		{"UpstreamDeleteExpired", testUpstreamDeleteExpired},
		{"ProfileRefreshed", testProfileRefreshed},
		{"DingTalkAppToken", testDingTalkAppToken},
		{"DingTalkAppTokenConcurrent", testDingTalkAppTokenConcurrent},
		{"DingTalkAppTokenDeleteExpired", testDingTalkAppTokenDeleteExpired},
		{"Ping", testPing},
		// store_combined_test.go
		{"ConsumeUpstreamWithRequest", testConsumeUpstreamWithRequest},
		{"AuthRequestWithSession", testAuthRequestWithSession},
		{"StartSessionWithCode", testStartSessionWithCode},
		{"CreateTokens", testCreateTokens},
		{"RotateRefreshTokenWithAccess", testRotateRefreshTokenWithAccess},
		{"CodeReplayRacesTokenPairs", testCodeReplayRacesTokenPairs},
		{"CombinedReturnCopies", testCombinedReturnCopies},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newStore(t))
		})
	}
}

// t0 is the tests' "now": UTC, with microseconds, which is what Postgres keeps.
var t0 = time.Date(2030, time.May, 6, 7, 8, 9, 123456000, time.UTC)

// racers is how many goroutines the concurrency tests start at once.
const racers = 20

func testAuthRequestRoundTrip(t *testing.T, s Store) {
	ctx := t.Context()
	completed := fullAuthRequest("ar-completed", t0)
	completed.Done, completed.Completion = true, fullCompletion(t0)
	zero := time.Duration(0)
	maxAgeZero := minimalAuthRequest("ar-max-age-0", t0)
	maxAgeZero.MaxAge = &zero // max_age=0 (always re-authenticate) is not "no max_age"

	tests := []struct {
		name string
		ar   *AuthRequest
	}{
		{name: "every field", ar: fullAuthRequest("ar-full", t0)},
		{name: "completed", ar: completed},
		{name: "optional fields empty", ar: minimalAuthRequest("ar-minimal", t0)},
		{name: "max_age 0", ar: maxAgeZero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateAuthRequest(ctx, tt.ar); err != nil {
				t.Fatalf("CreateAuthRequest: %v", err)
			}
			got, err := s.AuthRequest(ctx, tt.ar.ID)
			if err != nil {
				t.Fatalf("AuthRequest: %v", err)
			}
			assertEqual(t, "AuthRequest", got, tt.ar)
		})
	}

	t.Run("unknown", func(t *testing.T) {
		_, err := s.AuthRequest(ctx, "ar-unknown")
		assertErr(t, "AuthRequest", err, ErrNotFound)
	})
	t.Run("duplicate id", func(t *testing.T) {
		dup := minimalAuthRequest("ar-full", t0)
		assertErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, dup), ErrConflict)
		got, err := s.AuthRequest(ctx, "ar-full")
		if err != nil {
			t.Fatalf("AuthRequest: %v", err)
		}
		assertEqual(t, "AuthRequest after refused duplicate", got, fullAuthRequest("ar-full", t0))
	})
}

func testCompleteAuthRequest(t *testing.T, s Store) {
	ctx := t.Context()
	first := fullCompletion(t0.Add(-10 * time.Minute))
	second := Completion{Subject: "acct-2", AuthTime: t0, AMR: []string{"dingtalk"}, SessionID: "sess-2"}
	tests := []struct {
		name          string
		unknown       bool          // the request is never created
		expiresIn     time.Duration // ExpiresAt - t0
		completeFirst bool          // completed once before, 10 minutes ago
		want          error
	}{
		{name: "pending", expiresIn: time.Minute},
		{name: "already done", expiresIn: time.Minute, completeFirst: true, want: ErrConflict},
		{name: "expires now", expiresIn: 0, want: ErrNotFound},
		{name: "expired", expiresIn: -time.Microsecond, want: ErrNotFound},
		{name: "expired and done", expiresIn: -time.Second, completeFirst: true, want: ErrNotFound},
		{name: "unknown", unknown: true, want: ErrNotFound},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ar := minimalAuthRequest(fmt.Sprintf("ar-%d", i), t0.Add(-15*time.Minute))
			ar.ExpiresAt = t0.Add(tt.expiresIn)
			if !tt.unknown {
				mustCreateAuthRequest(t, s, ar)
			}
			if tt.completeFirst {
				if err := s.CompleteAuthRequest(ctx, ar.ID, first, t0.Add(-10*time.Minute)); err != nil {
					t.Fatalf("first CompleteAuthRequest: %v", err)
				}
			}

			err := s.CompleteAuthRequest(ctx, ar.ID, second, t0)
			assertErr(t, "CompleteAuthRequest", err, tt.want)

			if tt.unknown {
				return
			}
			want := *ar
			switch {
			case tt.completeFirst:
				want.Done, want.Completion = true, first
			case tt.want == nil:
				want.Done, want.Completion = true, second
			}
			got, err := s.AuthRequest(ctx, ar.ID)
			if err != nil {
				t.Fatalf("AuthRequest: %v", err)
			}
			assertEqual(t, "AuthRequest", got, &want)
		})
	}
}

func testCompleteAuthRequestConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	ar := minimalAuthRequest("ar-1", t0)
	mustCreateAuthRequest(t, s, ar)

	errs := race(racers, func(i int) error {
		return s.CompleteAuthRequest(ctx, ar.ID, Completion{Subject: fmt.Sprintf("acct-%d", i), AuthTime: t0}, t0)
	})
	winner := assertOneWinner(t, "CompleteAuthRequest", errs, ErrConflict)

	got, err := s.AuthRequest(ctx, ar.ID)
	if err != nil {
		t.Fatalf("AuthRequest: %v", err)
	}
	if want := fmt.Sprintf("acct-%d", winner); !got.Done || got.Subject != want {
		t.Errorf("AuthRequest: Done = %v, Subject = %q; want true, %q (the winner's)", got.Done, got.Subject, want)
	}
}

func testSaveCode(t *testing.T, s Store) {
	ctx := t.Context()
	issueCode(t, s, "ar-other", "code-other", t0)
	ar := fullAuthRequest("ar-1", t0)
	mustCreateAuthRequest(t, s, ar)
	pending := fullAuthRequest("ar-pending", t0)
	mustCreateAuthRequest(t, s, pending)

	assertErr(t, "SaveCode on a pending request", s.SaveCode(ctx, pending.ID, "code-pending", t0.Add(time.Minute)), ErrConflict)
	if err := s.CompleteAuthRequest(ctx, ar.ID, fullCompletion(t0), t0); err != nil {
		t.Fatalf("CompleteAuthRequest: %v", err)
	}

	tests := []struct {
		name          string
		authRequestID string
		codeHash      string
		want          error
	}{
		{name: "completed request", authRequestID: ar.ID, codeHash: "code-1"},
		{name: "second code for the request", authRequestID: ar.ID, codeHash: "code-2", want: ErrConflict},
		{name: "same code again", authRequestID: ar.ID, codeHash: "code-1", want: ErrConflict},
		{name: "another request's code", authRequestID: pending.ID, codeHash: "code-other", want: ErrConflict},
		{name: "unknown request", authRequestID: "ar-unknown", codeHash: "code-3", want: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SaveCode(ctx, tt.authRequestID, tt.codeHash, t0.Add(time.Minute))
			assertErr(t, "SaveCode", err, tt.want)
		})
	}

	// The refused calls changed nothing: each code still redeems its own request.
	for hash, id := range map[string]string{"code-1": ar.ID, "code-other": "ar-other"} {
		got, err := s.ConsumeCode(ctx, hash, t0)
		if err != nil {
			t.Fatalf("ConsumeCode(%s): %v", hash, err)
		}
		if got.ID != id {
			t.Errorf("ConsumeCode(%s) returned request %q, want %q", hash, got.ID, id)
		}
	}
	for _, hash := range []string{"code-2", "code-3", "code-pending"} {
		_, err := s.ConsumeCode(ctx, hash, t0)
		assertErr(t, "ConsumeCode("+hash+")", err, ErrNotFound)
	}
}

func testConsumeCode(t *testing.T, s Store) {
	ctx := t.Context()
	want := issueCode(t, s, "ar-1", "code-1", t0) // the code expires at t0 + 1 minute

	got, err := s.ConsumeCode(ctx, "code-1", t0)
	if err != nil {
		t.Fatalf("ConsumeCode: %v", err)
	}
	assertEqual(t, "ConsumeCode", got, want)

	tests := []struct {
		name string
		hash string
		now  time.Time
		want error
	}{
		{name: "again", hash: "code-1", now: t0, want: ErrCodeReplayed},
		{name: "again after the code expired", hash: "code-1", now: t0.Add(time.Hour), want: ErrCodeReplayed},
		{name: "unknown", hash: "code-unknown", now: t0, want: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ConsumeCode(ctx, tt.hash, tt.now)
			assertErr(t, "ConsumeCode", err, tt.want)
			if got != nil {
				t.Errorf("ConsumeCode returned request %q, want none", got.ID)
			}
		})
	}

	t.Run("consumed request stays as a tombstone", func(t *testing.T) {
		got, err := s.AuthRequest(ctx, "ar-1")
		if err != nil {
			t.Fatalf("AuthRequest: %v", err)
		}
		assertEqual(t, "AuthRequest", got, want)
	})

	t.Run("expired", func(t *testing.T) {
		issueCode(t, s, "ar-2", "code-2", t0)
		for _, now := range []time.Time{t0.Add(time.Minute), t0.Add(time.Hour)} {
			_, err := s.ConsumeCode(ctx, "code-2", now)
			assertErr(t, fmt.Sprintf("ConsumeCode at expiry + %v", now.Sub(t0.Add(time.Minute))), err, ErrNotFound)
		}
	})
}

func testConsumeCodeConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	issueCode(t, s, "ar-1", "code-1", t0)

	errs := race(racers, func(int) error {
		_, err := s.ConsumeCode(ctx, "code-1", t0)
		return err
	})
	assertOneWinner(t, "ConsumeCode", errs, ErrCodeReplayed)
}

func testCodeReplayRevokesGrant(t *testing.T, s Store) {
	ctx := t.Context()
	issueCode(t, s, "ar-1", "code-1", t0)
	if _, err := s.ConsumeCode(ctx, "code-1", t0); err != nil {
		t.Fatalf("ConsumeCode: %v", err)
	}
	// The tokens the exchange issued, and another grant's.
	mustCreateAccessToken(t, s, newAccessToken("at-1", "ar-1", "", "sess-1", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-2", "ar-1", "fam-1", "sess-1", t0))
	mustCreateRefreshToken(t, s, newRefreshToken("rt-1", "ar-1", "fam-1", "sess-1", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-other", "ar-2", "fam-2", "sess-1", t0))
	mustCreateRefreshToken(t, s, newRefreshToken("rt-other", "ar-2", "fam-2", "sess-1", t0))

	replayAt := t0.Add(30 * time.Second)
	_, err := s.ConsumeCode(ctx, "code-1", replayAt)
	assertErr(t, "ConsumeCode replay", err, ErrCodeReplayed)

	assertRevoked(t, s, map[string]*time.Time{
		"at-1": &replayAt, "at-2": &replayAt, "rt-1": &replayAt,
		"at-other": nil, "rt-other": nil,
	})
}

// testCodeReplayMarksGrantRevoked: after a replay, no token of the grant can
// be created, however late; other grants are not affected.
func testCodeReplayMarksGrantRevoked(t *testing.T, s Store) {
	ctx := t.Context()
	issueCode(t, s, "ar-1", "code-1", t0)
	issueCode(t, s, "ar-2", "code-2", t0) // consumed, never replayed
	issueCode(t, s, "ar-3", "code-3", t0) // never consumed; presented after expiry
	for _, hash := range []string{"code-1", "code-2"} {
		if _, err := s.ConsumeCode(ctx, hash, t0); err != nil {
			t.Fatalf("ConsumeCode(%s): %v", hash, err)
		}
	}
	_, err := s.ConsumeCode(ctx, "code-3", t0.Add(time.Hour))
	assertErr(t, "ConsumeCode of an expired code", err, ErrNotFound)
	// A token of the grant from before the replay, and a live refresh token of
	// another grant to rotate into ar-1 below.
	mustCreateAccessToken(t, s, newAccessToken("at-before", "ar-1", "", "sess-1", t0))
	mustCreateRefreshToken(t, s, newRefreshToken("rt-other", "ar-2", "fam-2", "sess-1", t0))

	replayAt := t0.Add(time.Hour) // a late replay, after the code expired
	_, err = s.ConsumeCode(ctx, "code-1", replayAt)
	assertErr(t, "ConsumeCode replay", err, ErrCodeReplayed)
	assertRevoked(t, s, map[string]*time.Time{"at-before": &replayAt, "rt-other": nil})

	// Whenever they come, tokens of the replayed grant are refused and not
	// stored.
	for _, now := range []time.Time{replayAt, replayAt.Add(time.Hour)} {
		at := newAccessToken("at-after", "ar-1", "", "sess-1", now)
		assertErr(t, "CreateAccessToken of the revoked grant", s.CreateAccessToken(ctx, at), ErrGrantRevoked)
		rt := newRefreshToken("rt-after", "ar-1", "fam-1", "sess-1", now)
		assertErr(t, "CreateRefreshToken of the revoked grant", s.CreateRefreshToken(ctx, rt), ErrGrantRevoked)
		next := newRefreshToken("rt-next", "ar-1", "fam-2", "sess-1", now)
		assertErr(t, "RotateRefreshToken into the revoked grant", s.RotateRefreshToken(ctx, "rt-other", next, t0), ErrGrantRevoked)
		for _, id := range []string{"at-after", "rt-after", "rt-next"} {
			assertErr(t, "lookup of refused "+id, lookup(t, s, id), ErrNotFound)
		}
		// The refused rotation changed nothing.
		assertRefreshToken(t, s, newRefreshToken("rt-other", "ar-2", "fam-2", "sess-1", t0))
	}
	// Another replay changes nothing: the first revocation time stays.
	_, err = s.ConsumeCode(ctx, "code-1", replayAt.Add(time.Minute))
	assertErr(t, "ConsumeCode second replay", err, ErrCodeReplayed)
	assertRevoked(t, s, map[string]*time.Time{"at-before": &replayAt})

	// Tokens of other grants: one consumed but not replayed, one whose code
	// expired unconsumed, one no stored request names, and none.
	for i, grant := range []string{"ar-2", "ar-3", "ar-unknown", ""} {
		at := newAccessToken(fmt.Sprintf("at-ok-%d", i), grant, "", "sess-1", t0)
		mustCreateAccessToken(t, s, at)
		mustCreateRefreshToken(t, s, newRefreshToken(fmt.Sprintf("rt-ok-%d", i), grant, "fam-ok", "sess-1", t0))
	}
	next := newRefreshToken("rt-other-next", "ar-2", "fam-2", "sess-1", t0)
	if err := s.RotateRefreshToken(ctx, "rt-other", next, t0); err != nil {
		t.Errorf("RotateRefreshToken in another grant: %v", err)
	}
}

// testCodeReplayRacesTokenCreation races the exchanges of one code, round
// after round: the winner creates its tokens as soon as its ConsumeCode
// returns, while the losers' replays revoke the grant. Whichever way each
// round goes, no token of the grant may end stored and not revoked.
func testCodeReplayRacesTokenCreation(t *testing.T, s Store) {
	ctx := t.Context()
	const rounds = 50
	var refused, revoked int // how the winner's first token fared, over all rounds
	for round := range rounds {
		grant, code := fmt.Sprintf("ar-%d", round), fmt.Sprintf("code-%d", round)
		issueCode(t, s, grant, code, t0)
		family := fmt.Sprintf("fam-%d", round)
		atFirst, rtFirst := fmt.Sprintf("at-%d-first", round), fmt.Sprintf("rt-%d-first", round)
		rtNext, atNext := fmt.Sprintf("rt-%d-next", round), fmt.Sprintf("at-%d-next", round)
		// The winner's token calls, in order, and their errors.
		var created []error
		errs := race(racers, func(int) error {
			ar, err := s.ConsumeCode(ctx, code, t0)
			if err != nil {
				return err
			}
			created = []error{
				s.CreateAccessToken(ctx, newAccessToken(atFirst, ar.ID, "", ar.SessionID, t0)),
				s.CreateRefreshToken(ctx, newRefreshToken(rtFirst, ar.ID, family, ar.SessionID, t0)),
				s.RotateRefreshToken(ctx, rtFirst, newRefreshToken(rtNext, ar.ID, "", ar.SessionID, t0), t0),
				s.CreateAccessToken(ctx, newAccessToken(atNext, ar.ID, family, ar.SessionID, t0)),
			}
			return nil
		})
		assertOneWinner(t, fmt.Sprintf("round %d: ConsumeCode", round), errs, ErrCodeReplayed)

		for i, id := range []string{atFirst, rtFirst, rtNext, atNext} {
			err := created[i]
			switch {
			case err == nil:
			case errors.Is(err, ErrGrantRevoked):
			case i == 2 && errors.Is(err, ErrNotFound): // rt-first was revoked or refused
			default:
				t.Errorf("round %d: creating %s: %v", round, id, err)
			}
			var revokedAt *time.Time
			if id[:3] == "at-" {
				if at, err := s.AccessToken(ctx, id); err == nil {
					revokedAt = at.RevokedAt
				}
			} else if rt, err := s.RefreshToken(ctx, id); err == nil {
				revokedAt = rt.RevokedAt
			}
			stored := lookup(t, s, id) == nil
			switch {
			case stored != (err == nil):
				t.Errorf("round %d: %s stored = %v, but its creation returned %v", round, id, stored, err)
			case stored && revokedAt == nil:
				t.Errorf("round %d: %s of a replayed code is stored and not revoked", round, id)
			}
			switch {
			case i > 0:
			case stored:
				revoked++
			default:
				refused++
			}
		}
	}
	t.Logf("%d rounds: the winner's first token refused in %d, created and revoked in %d", rounds, refused, revoked)
}

func testAccessToken(t *testing.T, s Store) {
	ctx := t.Context()
	revoked := t0.Add(-time.Minute)
	minimal := &AccessToken{ID: "at-minimal", GrantID: "ar-1", ClientID: "client-a", Subject: "acct-1",
		AuthTime: t0, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), RevokedAt: &revoked}
	tests := []struct {
		name string
		at   *AccessToken
	}{
		{name: "every field", at: newAccessToken("at-full", "ar-1", "fam-1", "sess-1", t0)},
		{name: "optional fields empty, revoked", at: minimal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCreateAccessToken(t, s, tt.at)
			got, err := s.AccessToken(ctx, tt.at.ID)
			if err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			assertEqual(t, "AccessToken", got, tt.at)
		})
	}

	t.Run("unknown", func(t *testing.T) {
		_, err := s.AccessToken(ctx, "at-unknown")
		assertErr(t, "AccessToken", err, ErrNotFound)
		assertErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, "at-unknown", t0), ErrNotFound)
	})
	t.Run("duplicate id", func(t *testing.T) {
		err := s.CreateAccessToken(ctx, newAccessToken("at-full", "ar-9", "", "", t0))
		assertErr(t, "CreateAccessToken", err, ErrConflict)
		got, err := s.AccessToken(ctx, "at-full")
		if err != nil {
			t.Fatalf("AccessToken: %v", err)
		}
		assertEqual(t, "AccessToken after refused duplicate", got, newAccessToken("at-full", "ar-1", "fam-1", "sess-1", t0))
	})
	t.Run("revoke", func(t *testing.T) {
		mustCreateAccessToken(t, s, newAccessToken("at-1", "ar-1", "fam-1", "sess-1", t0))
		mustCreateAccessToken(t, s, newAccessToken("at-2", "ar-1", "fam-1", "sess-1", t0))
		if err := s.RevokeAccessToken(ctx, "at-1", t0); err != nil {
			t.Fatalf("RevokeAccessToken: %v", err)
		}
		// Idempotent: the first revocation time stays.
		if err := s.RevokeAccessToken(ctx, "at-1", t0.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeAccessToken again: %v", err)
		}
		assertRevoked(t, s, map[string]*time.Time{"at-1": &t0, "at-2": nil, "at-minimal": &revoked})
	})
}

func testRefreshToken(t *testing.T, s Store) {
	ctx := t.Context()
	used, revoked := t0.Add(-2*time.Minute), t0.Add(-time.Minute)
	minimal := &RefreshToken{Hash: "rt-minimal", ID: "rt-minimal-id", FamilyID: "fam-1", GrantID: "ar-1",
		ClientID: "client-a", Subject: "acct-1", AuthTime: t0, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
		FamilyExpiresAt: t0.Add(24 * time.Hour), UsedAt: &used, RevokedAt: &revoked}
	tests := []struct {
		name string
		rt   *RefreshToken
	}{
		{name: "every field", rt: newRefreshToken("rt-full", "ar-1", "fam-1", "sess-1", t0)},
		{name: "optional fields empty, used and revoked", rt: minimal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCreateRefreshToken(t, s, tt.rt)
			got, err := s.RefreshToken(ctx, tt.rt.Hash)
			if err != nil {
				t.Fatalf("RefreshToken: %v", err)
			}
			assertEqual(t, "RefreshToken", got, tt.rt)
		})
	}

	t.Run("unknown", func(t *testing.T) {
		_, err := s.RefreshToken(ctx, "rt-unknown")
		assertErr(t, "RefreshToken", err, ErrNotFound)
	})
	t.Run("duplicate", func(t *testing.T) {
		sameHash := newRefreshToken("rt-full", "ar-2", "fam-2", "", t0)
		sameHash.ID = "rt-other-id"
		assertErr(t, "CreateRefreshToken with a hash taken", s.CreateRefreshToken(ctx, sameHash), ErrConflict)
		sameID := newRefreshToken("rt-other", "ar-2", "fam-2", "", t0)
		sameID.ID = "rt-full-id"
		assertErr(t, "CreateRefreshToken with an id taken", s.CreateRefreshToken(ctx, sameID), ErrConflict)
		_, err := s.RefreshToken(ctx, "rt-other")
		assertErr(t, "RefreshToken of the refused token", err, ErrNotFound)
	})
}

func testRotateRefreshToken(t *testing.T, s Store) {
	ctx := t.Context()
	mustCreateRefreshToken(t, s, newRefreshToken("rt-0", "ar-1", "fam-1", "sess-1", t0))

	// next is stored in the old token's family, whatever it says.
	next := newRefreshToken("rt-1", "ar-1", "", "sess-1", t0.Add(time.Minute))
	if err := s.RotateRefreshToken(ctx, "rt-0", next, t0.Add(time.Minute)); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	wantOld := newRefreshToken("rt-0", "ar-1", "fam-1", "sess-1", t0)
	wantOld.UsedAt = ptr(t0.Add(time.Minute))
	assertRefreshToken(t, s, wantOld)
	wantNext := newRefreshToken("rt-1", "ar-1", "fam-1", "sess-1", t0.Add(time.Minute))
	assertRefreshToken(t, s, wantNext)

	// And the new token rotates in turn.
	if err := s.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-2", "ar-1", "fam-1", "sess-1", t0), t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("RotateRefreshToken of the rotated token: %v", err)
	}
	wantNext.UsedAt = ptr(t0.Add(2 * time.Minute))
	assertRefreshToken(t, s, wantNext)
}

func testRotateRefreshTokenRefused(t *testing.T, s Store) {
	ctx := t.Context()
	mustCreateRefreshToken(t, s, newRefreshToken("rt-taken", "ar-9", "fam-9", "", t0))
	tests := []struct {
		name   string
		create bool
		change func(old, next *RefreshToken)
		want   error
	}{
		{name: "unknown", want: ErrNotFound},
		{name: "idle expiry reached", create: true, change: func(old, _ *RefreshToken) { old.ExpiresAt = t0 }, want: ErrNotFound},
		{name: "family expiry reached", create: true, change: func(old, _ *RefreshToken) { old.FamilyExpiresAt = t0 }, want: ErrNotFound},
		{name: "revoked", create: true, change: func(old, _ *RefreshToken) { old.RevokedAt = ptr(t0.Add(-time.Second)) }, want: ErrNotFound},
		{name: "next hash taken", create: true, change: func(_, next *RefreshToken) { next.Hash = "rt-taken" }, want: ErrConflict},
		{name: "next id taken", create: true, change: func(_, next *RefreshToken) { next.ID = "rt-taken-id" }, want: ErrConflict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			family := fmt.Sprintf("fam-%d", i)
			old := newRefreshToken(fmt.Sprintf("rt-old-%d", i), "ar-1", family, "", t0.Add(-time.Hour))
			next := newRefreshToken(fmt.Sprintf("rt-next-%d", i), "ar-1", family, "", t0)
			sibling := newRefreshToken(fmt.Sprintf("rt-sibling-%d", i), "ar-1", family, "", t0.Add(-time.Hour))
			mustCreateRefreshToken(t, s, sibling)
			if tt.change != nil {
				tt.change(old, next)
			}
			if tt.create {
				mustCreateRefreshToken(t, s, old)
			}

			assertErr(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, old.Hash, next, t0), tt.want)

			// Nothing changed: the old token is not used, the family not revoked,
			// next not stored.
			if tt.create {
				assertRefreshToken(t, s, old)
			}
			assertRefreshToken(t, s, sibling)
			if next.Hash != "rt-taken" {
				_, err := s.RefreshToken(ctx, next.Hash)
				assertErr(t, "RefreshToken(next)", err, ErrNotFound)
			}
		})
	}
	assertRefreshToken(t, s, newRefreshToken("rt-taken", "ar-9", "fam-9", "", t0))
}

func testRotateRefreshTokenReplay(t *testing.T, s Store) {
	ctx := t.Context()
	mustCreateRefreshToken(t, s, newRefreshToken("rt-0", "ar-1", "fam-1", "sess-1", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-0", "ar-1", "fam-1", "sess-1", t0))
	if err := s.RotateRefreshToken(ctx, "rt-0", newRefreshToken("rt-1", "ar-1", "fam-1", "sess-1", t0), t0); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	mustCreateAccessToken(t, s, newAccessToken("at-1", "ar-1", "fam-1", "sess-1", t0))
	// Another family of the same grant and session, and a token of the grant
	// issued outside any family.
	mustCreateRefreshToken(t, s, newRefreshToken("rt-other", "ar-1", "fam-2", "sess-1", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-other", "ar-1", "fam-2", "sess-1", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-no-family", "ar-1", "", "sess-1", t0))

	replayAt := t0.Add(time.Minute)
	err := s.RotateRefreshToken(ctx, "rt-0", newRefreshToken("rt-2", "ar-1", "fam-1", "sess-1", t0), replayAt)
	assertErr(t, "RotateRefreshToken replay", err, ErrRefreshReplayed)
	want := map[string]*time.Time{
		"rt-0": &replayAt, "rt-1": &replayAt, "at-0": &replayAt, "at-1": &replayAt,
		"rt-other": nil, "at-other": nil, "at-no-family": nil,
	}
	assertRevoked(t, s, want)
	_, err = s.RefreshToken(ctx, "rt-2")
	assertErr(t, "RefreshToken of the replay's next", err, ErrNotFound)

	// The newest token of the family is revoked now, not replayed.
	err = s.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-3", "ar-1", "fam-1", "sess-1", t0), replayAt)
	assertErr(t, "RotateRefreshToken of the revoked family's newest token", err, ErrNotFound)
	// A late replay, after expiry, is still a replay; the revocation time stays.
	err = s.RotateRefreshToken(ctx, "rt-0", newRefreshToken("rt-4", "ar-1", "fam-1", "sess-1", t0), t0.Add(48*time.Hour))
	assertErr(t, "RotateRefreshToken late replay", err, ErrRefreshReplayed)
	assertRevoked(t, s, want)
}

func testRotateRefreshTokenConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	mustCreateRefreshToken(t, s, newRefreshToken("rt-0", "ar-1", "fam-1", "sess-1", t0))
	mustCreateAccessToken(t, s, newAccessToken("at-0", "ar-1", "fam-1", "sess-1", t0))
	mustCreateRefreshToken(t, s, newRefreshToken("rt-other", "ar-2", "fam-2", "sess-1", t0))

	errs := race(racers, func(i int) error {
		next := newRefreshToken(fmt.Sprintf("rt-next-%d", i), "ar-1", "fam-1", "sess-1", t0)
		return s.RotateRefreshToken(ctx, "rt-0", next, t0)
	})
	winner := assertOneWinner(t, "RotateRefreshToken", errs, ErrRefreshReplayed)

	// The losers detected a reuse: the whole family is revoked, the winner's
	// new token included (RFC 9700 §4.14.2 cannot tell a race from a theft).
	for i := range racers {
		hash := fmt.Sprintf("rt-next-%d", i)
		rt, err := s.RefreshToken(ctx, hash)
		switch {
		case i != winner:
			assertErr(t, "RefreshToken("+hash+") of a loser", err, ErrNotFound)
		case err != nil:
			t.Errorf("RefreshToken(%s) of the winner: %v", hash, err)
		case rt.RevokedAt == nil || rt.FamilyID != "fam-1":
			t.Errorf("winner's token: FamilyID = %q, RevokedAt = %v; want fam-1, revoked", rt.FamilyID, rt.RevokedAt)
		}
	}
	assertRevoked(t, s, map[string]*time.Time{"rt-0": &t0, "at-0": &t0, "rt-other": nil})
}

func testRevoke(t *testing.T, s Store) {
	ctx := t.Context()
	// seed stores, with every id prefixed, these tokens and the sessions s1
	// and s2 (none for s-gone):
	//
	//	access a1 g1 f1 s1   a2 g1 -- s1   a3 g2 f2 s1   a4 g2 -- s2   a5 g3 -- s-gone
	//	refresh r1 g1 f1 s1  r2 g1 f1 s1   r3 g2 f2 s1   r4 g3 f3 --
	seed := func(t *testing.T, p string) {
		t.Helper()
		for _, a := range [][4]string{{"a1", "g1", "f1", "s1"}, {"a2", "g1", "", "s1"}, {"a3", "g2", "f2", "s1"}, {"a4", "g2", "", "s2"}, {"a5", "g3", "", "s-gone"}} {
			mustCreateAccessToken(t, s, newAccessToken(p+a[0], p+a[1], prefixed(p, a[2]), prefixed(p, a[3]), t0))
		}
		for _, r := range [][4]string{{"r1", "g1", "f1", "s1"}, {"r2", "g1", "f1", "s1"}, {"r3", "g2", "f2", "s1"}, {"r4", "g3", "f3", ""}} {
			mustCreateRefreshToken(t, s, newRefreshToken(p+r[0], p+r[1], prefixed(p, r[2]), prefixed(p, r[3]), t0))
		}
		for _, id := range []string{"s1", "s2"} {
			mustCreateSession(t, s, newSession(p+id, t0))
		}
	}
	tests := []struct {
		name        string
		revoke      func(p string, now time.Time) error
		want        error
		wantRevoked []string
		wantEnded   []string
	}{
		{
			name:        "RevokeGrant",
			revoke:      func(p string, now time.Time) error { return s.RevokeGrant(ctx, p+"g1", now) },
			wantRevoked: []string{"a1", "a2", "r1", "r2"},
		},
		{
			name:        "RevokeGrant empty",
			revoke:      func(_ string, now time.Time) error { return s.RevokeGrant(ctx, "", now) },
			wantRevoked: nil,
		},
		{
			name:        "RevokeRefreshFamily",
			revoke:      func(p string, now time.Time) error { return s.RevokeRefreshFamily(ctx, p+"f2", now) },
			wantRevoked: []string{"a3", "r3"},
		},
		{
			name:        "RevokeRefreshFamily empty",
			revoke:      func(_ string, now time.Time) error { return s.RevokeRefreshFamily(ctx, "", now) },
			wantRevoked: nil,
		},
		{
			name:        "EndSession",
			revoke:      func(p string, now time.Time) error { return s.EndSession(ctx, p+"s1", now) },
			wantRevoked: []string{"a1", "a2", "a3", "r1", "r2", "r3"},
			wantEnded:   []string{"s1"},
		},
		{
			name:        "EndSession other",
			revoke:      func(p string, now time.Time) error { return s.EndSession(ctx, p+"s2", now) },
			wantRevoked: []string{"a4"},
			wantEnded:   []string{"s2"},
		},
		{
			name:        "EndSession gone",
			revoke:      func(p string, now time.Time) error { return s.EndSession(ctx, p+"s-gone", now) },
			want:        ErrNotFound,
			wantRevoked: []string{"a5"},
		},
		{
			name:        "EndSession empty",
			revoke:      func(_ string, now time.Time) error { return s.EndSession(ctx, "", now) },
			want:        ErrNotFound,
			wantRevoked: nil,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fmt.Sprintf("c%d-", i)
			seed(t, p)

			assertErr(t, "revoke", tt.revoke(p, t0), tt.want)
			// Idempotent: again, later, changes nothing.
			assertErr(t, "revoke again", tt.revoke(p, t0.Add(time.Hour)), tt.want)

			want := make(map[string]*time.Time)
			for _, id := range []string{"a1", "a2", "a3", "a4", "a5", "r1", "r2", "r3", "r4"} {
				want[p+id] = nil
			}
			for _, id := range tt.wantRevoked {
				want[p+id] = &t0
			}
			assertRevoked(t, s, want)
			for _, id := range []string{"s1", "s2"} {
				sess, err := s.Session(ctx, p+id)
				if err != nil {
					t.Fatalf("Session(%s): %v", id, err)
				}
				var wantEnded *time.Time
				for _, ended := range tt.wantEnded {
					if ended == id {
						wantEnded = &t0
					}
				}
				assertEqual(t, "Session("+id+").EndedAt", sess.EndedAt, wantEnded)
			}
		})
	}
}

// testRevokeConcurrent runs every kind of revocation at once on one set of
// tokens: none may fail (on Postgres: no deadlock), and all end revoked.
func testRevokeConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	mustCreateSession(t, s, newSession("sess-1", t0))
	want := make(map[string]*time.Time)
	for i := range 8 {
		at, rt := fmt.Sprintf("at-%d", i), fmt.Sprintf("rt-%d", i)
		mustCreateAccessToken(t, s, newAccessToken(at, "ar-1", "fam-1", "sess-1", t0))
		mustCreateRefreshToken(t, s, newRefreshToken(rt, "ar-1", "fam-1", "sess-1", t0))
		want[at], want[rt] = &t0, &t0
	}
	// rt-used was rotated (to rt-0): presenting it again is a replay.
	used := newRefreshToken("rt-used", "ar-1", "fam-1", "sess-1", t0)
	used.UsedAt = ptr(t0.Add(-time.Minute))
	mustCreateRefreshToken(t, s, used)
	want["rt-used"] = &t0

	revocations := []func(i int) error{
		func(int) error { return s.RevokeGrant(ctx, "ar-1", t0) },
		func(int) error { return s.RevokeRefreshFamily(ctx, "fam-1", t0) },
		func(int) error { return s.EndSession(ctx, "sess-1", t0) },
		func(i int) error {
			next := newRefreshToken(fmt.Sprintf("rt-next-%d", i), "ar-1", "fam-1", "sess-1", t0)
			if err := s.RotateRefreshToken(ctx, "rt-used", next, t0); !errors.Is(err, ErrRefreshReplayed) {
				return err
			}
			return nil
		},
		func(i int) error { return s.RevokeAccessToken(ctx, fmt.Sprintf("at-%d", i%8), t0) },
	}
	errs := race(racers, func(i int) error { return revocations[i%len(revocations)](i) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("revocation %d: %v", i, err)
		}
	}
	assertRevoked(t, s, want)
}

func testSession(t *testing.T, s Store) {
	ctx := t.Context()
	minimal := &Session{ID: "sess-minimal", Subject: "acct-1", AuthTime: t0, CreatedAt: t0,
		ExpiresAt: t0.Add(time.Hour), EndedAt: ptr(t0.Add(time.Minute))}
	tests := []struct {
		name string
		sess *Session
	}{
		{name: "every field", sess: newSession("sess-full", t0)},
		{name: "optional fields empty, ended", sess: minimal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCreateSession(t, s, tt.sess)
			got, err := s.Session(ctx, tt.sess.ID)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			assertEqual(t, "Session", got, tt.sess)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := s.Session(ctx, "sess-unknown")
		assertErr(t, "Session", err, ErrNotFound)
	})
	t.Run("duplicate id", func(t *testing.T) {
		assertErr(t, "CreateSession", s.CreateSession(ctx, minimal), ErrConflict)
		got, err := s.Session(ctx, "sess-full")
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		assertEqual(t, "Session", got, newSession("sess-full", t0))
	})
	t.Run("end", func(t *testing.T) {
		if err := s.EndSession(ctx, "sess-full", t0.Add(time.Minute)); err != nil {
			t.Fatalf("EndSession: %v", err)
		}
		want := newSession("sess-full", t0)
		want.EndedAt = ptr(t0.Add(time.Minute))
		got, err := s.Session(ctx, "sess-full")
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		assertEqual(t, "Session", got, want)
	})
}

func testSigningKeys(t *testing.T, s Store) {
	ctx := t.Context()
	assertKeySet := func(t *testing.T, want KeySet) {
		t.Helper()
		got, err := s.SigningKeys(ctx)
		if err != nil {
			t.Fatalf("SigningKeys: %v", err)
		}
		assertEqual(t, "SigningKeys", got, want)
	}
	assertKeySet(t, KeySet{})

	three := []SigningKey{ // not sorted by ID: the order is kept
		newSigningKey("kid-b", KeyCurrent, t0),
		newSigningKey("kid-a", KeyNext, t0),
		newSigningKey("kid-c", KeyPrevious, t0),
	}
	one := []SigningKey{newSigningKey("kid-d", KeyCurrent, t0)}
	duplicate := []SigningKey{newSigningKey("kid-e", KeyCurrent, t0), newSigningKey("kid-e", KeyNext, t0)}

	steps := []struct {
		name        string
		fromVersion int64
		keys        []SigningKey
		want        error
		wantSet     KeySet // stored afterwards
	}{
		{name: "first set", fromVersion: 0, keys: three, wantSet: KeySet{Version: 1, Keys: three}},
		{name: "stale version", fromVersion: 0, keys: one, want: ErrConflict, wantSet: KeySet{Version: 1, Keys: three}},
		{name: "future version", fromVersion: 2, keys: one, want: ErrConflict, wantSet: KeySet{Version: 1, Keys: three}},
		{name: "duplicate kid", fromVersion: 1, keys: duplicate, want: ErrConflict, wantSet: KeySet{Version: 1, Keys: three}},
		{name: "replace", fromVersion: 1, keys: one, wantSet: KeySet{Version: 2, Keys: one}},
		{name: "empty", fromVersion: 2, keys: nil, wantSet: KeySet{Version: 3}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			version, err := s.ReplaceSigningKeys(ctx, st.fromVersion, st.keys)
			assertErr(t, "ReplaceSigningKeys", err, st.want)
			if err == nil && version != st.wantSet.Version {
				t.Errorf("ReplaceSigningKeys = version %d, want %d", version, st.wantSet.Version)
			}
			assertKeySet(t, st.wantSet)
		})
	}
}

func testReplaceSigningKeysConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	keysOf := func(i int) []SigningKey {
		return []SigningKey{newSigningKey(fmt.Sprintf("kid-%d", i), KeyCurrent, t0)}
	}
	versions := make([]int64, racers)
	errs := race(racers, func(i int) error {
		var err error
		versions[i], err = s.ReplaceSigningKeys(ctx, 0, keysOf(i))
		return err
	})
	winner := assertOneWinner(t, "ReplaceSigningKeys", errs, ErrConflict)
	if versions[winner] != 1 {
		t.Errorf("winner's ReplaceSigningKeys = version %d, want 1", versions[winner])
	}
	got, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	assertEqual(t, "SigningKeys", got, KeySet{Version: 1, Keys: keysOf(winner)})
}

func testDeleteExpired(t *testing.T, s Store) {
	ctx := t.Context()
	const retention = time.Hour
	now := t0

	// Auth requests and code tombstones go at expiry + retention.
	request := func(id string, expiresIn time.Duration) *AuthRequest {
		ar := minimalAuthRequest(id, now.Add(expiresIn-15*time.Minute))
		ar.ExpiresAt = now.Add(expiresIn)
		mustCreateAuthRequest(t, s, ar)
		return ar
	}
	// withCode completes ar, gives it a code expiring at now + expiresIn and,
	// if consumed, exchanges it.
	withCode := func(ar *AuthRequest, hash string, expiresIn time.Duration, consumed bool) {
		at := ar.CreatedAt
		if err := s.CompleteAuthRequest(ctx, ar.ID, fullCompletion(at), at); err != nil {
			t.Fatalf("CompleteAuthRequest: %v", err)
		}
		if err := s.SaveCode(ctx, ar.ID, hash, now.Add(expiresIn)); err != nil {
			t.Fatalf("SaveCode: %v", err)
		}
		if consumed {
			if _, err := s.ConsumeCode(ctx, hash, at); err != nil {
				t.Fatalf("ConsumeCode: %v", err)
			}
		}
	}
	request("ar-old", -2*time.Hour)
	request("ar-recent", -30*time.Minute)
	request("ar-edge", -retention)
	request("ar-live", 10*time.Minute)
	withCode(request("ar-tombstone", -2*time.Hour), "code-tombstone", -30*time.Minute, true)
	withCode(request("ar-gone", -3*time.Hour), "code-gone", -2*time.Hour, true)

	// Tokens go at expiry, revoked or not; a token outlives its grant's request.
	mustCreateAccessToken(t, s, withExpiry(newAccessToken("at-expired", "ar-live", "", "", now.Add(-time.Hour)), now))
	mustCreateAccessToken(t, s, withExpiry(newAccessToken("at-live", "ar-old", "", "", now.Add(-time.Hour)), now.Add(time.Microsecond)))
	revoked := withExpiry(newAccessToken("at-revoked", "ar-old", "", "", now.Add(-time.Hour)), now.Add(time.Hour))
	revoked.RevokedAt = ptr(now.Add(-time.Minute))
	mustCreateAccessToken(t, s, revoked)
	const bulk = 7 // more than one batch on Postgres
	for i := range bulk {
		mustCreateAccessToken(t, s, withExpiry(newAccessToken(fmt.Sprintf("at-bulk-%d", i), "ar-old", "", "", now.Add(-time.Hour)), now.Add(-time.Minute)))
	}

	rtExpired := newRefreshToken("rt-expired", "ar-old", "fam-1", "", now.Add(-time.Hour))
	rtExpired.ExpiresAt = now.Add(-time.Microsecond)
	mustCreateRefreshToken(t, s, rtExpired)
	rtFamilyExpired := newRefreshToken("rt-family-expired", "ar-old", "fam-2", "", now.Add(-time.Hour))
	rtFamilyExpired.FamilyExpiresAt = now
	mustCreateRefreshToken(t, s, rtFamilyExpired)
	mustCreateRefreshToken(t, s, newRefreshToken("rt-live", "ar-old", "fam-3", "", now))
	rtUsed := newRefreshToken("rt-used", "ar-old", "fam-3", "", now.Add(-time.Hour))
	rtUsed.UsedAt = ptr(now.Add(-time.Minute))
	mustCreateRefreshToken(t, s, rtUsed)

	// Sessions go at expiry, or at end + retention.
	mustCreateSession(t, s, withSessionTimes(newSession("sess-expired", now.Add(-time.Hour)), now, nil))
	mustCreateSession(t, s, withSessionTimes(newSession("sess-ended-long-ago", now.Add(-3*time.Hour)), now.Add(time.Hour), ptr(now.Add(-2*time.Hour))))
	mustCreateSession(t, s, withSessionTimes(newSession("sess-ended-recently", now.Add(-time.Hour)), now.Add(time.Hour), ptr(now.Add(-30*time.Minute))))
	mustCreateSession(t, s, withSessionTimes(newSession("sess-live", now), now.Add(time.Hour), nil))

	keys := []SigningKey{newSigningKey("kid-1", KeyCurrent, now.Add(-365*24*time.Hour))}
	if _, err := s.ReplaceSigningKeys(ctx, 0, keys); err != nil {
		t.Fatalf("ReplaceSigningKeys: %v", err)
	}

	n, err := s.DeleteExpired(ctx, now, retention)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	gone := []string{
		"ar-old", "ar-edge", "ar-gone", "at-expired", "rt-expired", "rt-family-expired",
		"sess-expired", "sess-ended-long-ago",
	}
	for i := range bulk {
		gone = append(gone, fmt.Sprintf("at-bulk-%d", i))
	}
	if n != int64(len(gone)) {
		t.Errorf("DeleteExpired = %d, want %d", n, len(gone))
	}
	kept := []string{
		"ar-recent", "ar-live", "ar-tombstone", "at-live", "at-revoked", "rt-live", "rt-used",
		"sess-ended-recently", "sess-live",
	}
	for _, id := range gone {
		assertErr(t, "lookup of deleted "+id, lookup(t, s, id), ErrNotFound)
	}
	for _, id := range kept {
		assertErr(t, "lookup of kept "+id, lookup(t, s, id), nil)
	}
	if got, err := s.SigningKeys(ctx); err != nil || len(got.Keys) != 1 {
		t.Errorf("SigningKeys = %d keys, %v; want 1 key kept", len(got.Keys), err)
	}

	n, err = s.DeleteExpired(ctx, now, retention)
	if n != 0 || err != nil {
		t.Errorf("DeleteExpired again = %d, %v; want 0, nil", n, err)
	}
	// The tombstone still catches a replay; the deleted one is just unknown.
	_, err = s.ConsumeCode(ctx, "code-tombstone", now)
	assertErr(t, "ConsumeCode of the kept tombstone", err, ErrCodeReplayed)
	_, err = s.ConsumeCode(ctx, "code-gone", now)
	assertErr(t, "ConsumeCode of the deleted tombstone", err, ErrNotFound)
}

func testDeleteExpiredConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	const expired = 25
	for i := range expired {
		mustCreateAccessToken(t, s, withExpiry(newAccessToken(fmt.Sprintf("at-%d", i), "ar-1", "", "", t0.Add(-time.Hour)), t0))
	}
	mustCreateAccessToken(t, s, newAccessToken("at-live", "ar-1", "", "", t0))

	counts := make([]int64, 2)
	errs := race(len(counts), func(i int) error {
		var err error
		counts[i], err = s.DeleteExpired(ctx, t0, time.Hour)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("DeleteExpired %d: %v", i, err)
		}
	}
	if sum := counts[0] + counts[1]; sum != expired {
		t.Errorf("DeleteExpired removed %d + %d rows, want %d in all", counts[0], counts[1], expired)
	}
	n, err := s.DeleteExpired(ctx, t0, time.Hour)
	if n != 0 || err != nil {
		t.Errorf("DeleteExpired afterwards = %d, %v; want 0, nil", n, err)
	}
	assertErr(t, "lookup of at-live", lookup(t, s, "at-live"), nil)
}

// testReturnsCopies checks that a caller cannot change what the store holds
// by writing through what it passed in or got back.
func testReturnsCopies(t *testing.T, s Store) {
	ctx := t.Context()
	tests := []struct {
		name  string
		value func() any // a fresh value, the same each call
		put   func(v any) error
		get   func() (any, error)
	}{
		{
			name: "AuthRequest",
			value: func() any {
				ar := fullAuthRequest("ar-1", t0)
				ar.Done, ar.Completion = true, fullCompletion(t0)
				return ar
			},
			put: func(v any) error { return s.CreateAuthRequest(ctx, v.(*AuthRequest)) },
			get: func() (any, error) { return s.AuthRequest(ctx, "ar-1") },
		},
		{
			name: "AccessToken",
			value: func() any {
				at := newAccessToken("at-1", "ar-1", "fam-1", "sess-1", t0)
				at.RevokedAt = ptr(t0)
				return at
			},
			put: func(v any) error { return s.CreateAccessToken(ctx, v.(*AccessToken)) },
			get: func() (any, error) { return s.AccessToken(ctx, "at-1") },
		},
		{
			name: "RefreshToken",
			value: func() any {
				rt := newRefreshToken("rt-1", "ar-1", "fam-1", "sess-1", t0)
				rt.UsedAt, rt.RevokedAt = ptr(t0), ptr(t0)
				return rt
			},
			put: func(v any) error { return s.CreateRefreshToken(ctx, v.(*RefreshToken)) },
			get: func() (any, error) { return s.RefreshToken(ctx, "rt-1") },
		},
		{
			name:  "Session",
			value: func() any { sess := newSession("sess-1", t0); sess.EndedAt = ptr(t0); return sess },
			put:   func(v any) error { return s.CreateSession(ctx, v.(*Session)) },
			get:   func() (any, error) { return s.Session(ctx, "sess-1") },
		},
		{
			name: "KeySet",
			value: func() any {
				return &KeySet{Version: 1, Keys: []SigningKey{newSigningKey("kid-1", KeyCurrent, t0), newSigningKey("kid-2", KeyNext, t0)}}
			},
			put: func(v any) error {
				_, err := s.ReplaceSigningKeys(ctx, 0, v.(*KeySet).Keys)
				return err
			},
			get: func() (any, error) {
				set, err := s.SigningKeys(ctx)
				return &set, err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.value()
			if err := tt.put(in); err != nil {
				t.Fatalf("put: %v", err)
			}
			scribble(reflect.ValueOf(in))
			got, err := tt.get()
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			assertEqual(t, "after writing to the value stored", got, tt.value())

			scribble(reflect.ValueOf(got))
			again, err := tt.get()
			if err != nil {
				t.Fatalf("get again: %v", err)
			}
			assertEqual(t, "after writing to the value returned", again, tt.value())
		})
	}

	t.Run("Completion, ConsumeCode and RotateRefreshToken", func(t *testing.T) {
		ar := fullAuthRequest("ar-2", t0)
		mustCreateAuthRequest(t, s, ar)
		c := fullCompletion(t0)
		if err := s.CompleteAuthRequest(ctx, ar.ID, c, t0); err != nil {
			t.Fatalf("CompleteAuthRequest: %v", err)
		}
		scribble(reflect.ValueOf(&c))
		if err := s.SaveCode(ctx, ar.ID, "code-2", t0.Add(time.Minute)); err != nil {
			t.Fatalf("SaveCode: %v", err)
		}
		consumed, err := s.ConsumeCode(ctx, "code-2", t0)
		if err != nil {
			t.Fatalf("ConsumeCode: %v", err)
		}
		scribble(reflect.ValueOf(consumed))
		want := fullAuthRequest("ar-2", t0)
		want.Done, want.Completion = true, fullCompletion(t0)
		got, err := s.AuthRequest(ctx, ar.ID)
		if err != nil {
			t.Fatalf("AuthRequest: %v", err)
		}
		assertEqual(t, "AuthRequest", got, want)

		mustCreateRefreshToken(t, s, newRefreshToken("rt-2", "ar-2", "fam-2", "", t0))
		next := newRefreshToken("rt-3", "ar-2", "fam-2", "", t0)
		if err := s.RotateRefreshToken(ctx, "rt-2", next, t0); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
		scribble(reflect.ValueOf(next))
		assertRefreshToken(t, s, newRefreshToken("rt-3", "ar-2", "fam-2", "", t0))
	})
}

func testPing(t *testing.T, s Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// Fixtures. Each call returns new values, the same every time for the same
// arguments.

func fullAuthRequest(id string, now time.Time) *AuthRequest {
	maxAge := 300 * time.Second
	return &AuthRequest{
		ID:                  id,
		ClientID:            "client-a",
		RedirectURI:         "https://app.example/callback?from=%2Fhome",
		Scopes:              []string{"openid", "profile", "offline_access", "dingtalk"},
		State:               "state-" + id,
		Nonce:               "nonce-" + id,
		ResponseType:        "code",
		ResponseMode:        "form_post",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login", "consent"},
		MaxAge:              &maxAge,
		UILocales:           []string{"zh-CN", "en"},
		LoginHint:           "张三",
		HintSubject:         "acct-hint",
		BrowserID:           "browser-" + id,
		CreatedAt:           now,
		ExpiresAt:           now.Add(15 * time.Minute),
	}
}

func minimalAuthRequest(id string, now time.Time) *AuthRequest {
	return &AuthRequest{ID: id, ClientID: "client-a", RedirectURI: "https://app.example/callback",
		ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
}

func fullCompletion(now time.Time) Completion {
	return Completion{
		Subject:   "acct-1",
		AuthTime:  now.Add(-time.Minute),
		AMR:       []string{"dingtalk", "qr"},
		SessionID: "sess-1",
		DingTalk:  DingTalkIDs{CorpID: "ding-corp", UserID: "user-1", UnionID: "union-1"},
	}
}

func newAccessToken(id, grantID, familyID, sessionID string, now time.Time) *AccessToken {
	return &AccessToken{
		ID:        id,
		GrantID:   grantID,
		FamilyID:  familyID,
		SessionID: sessionID,
		ClientID:  "client-a",
		Subject:   "acct-1",
		Scopes:    []string{"openid", "profile"},
		Audience:  []string{"client-a", "api"},
		AuthTime:  now.Add(-time.Minute),
		AMR:       []string{"dingtalk", "h5"},
		DingTalk:  DingTalkIDs{CorpID: "ding-corp", UserID: "user-1", UnionID: "union-1"},
		CreatedAt: now,
		ExpiresAt: now.Add(time.Hour),
	}
}

// newRefreshToken returns a token whose ID is hash + "-id".
func newRefreshToken(hash, grantID, familyID, sessionID string, now time.Time) *RefreshToken {
	return &RefreshToken{
		Hash:            hash,
		ID:              hash + "-id",
		FamilyID:        familyID,
		GrantID:         grantID,
		SessionID:       sessionID,
		ClientID:        "client-a",
		Subject:         "acct-1",
		Scopes:          []string{"openid", "offline_access"},
		Audience:        []string{"client-a"},
		AuthTime:        now.Add(-time.Minute),
		AMR:             []string{"dingtalk"},
		DingTalk:        DingTalkIDs{CorpID: "ding-corp", UserID: "user-1", UnionID: "union-1"},
		CreatedAt:       now,
		ExpiresAt:       now.Add(24 * time.Hour),
		FamilyExpiresAt: now.Add(30 * 24 * time.Hour),
	}
}

func newSession(id string, now time.Time) *Session {
	return &Session{
		ID:        id,
		Subject:   "acct-1",
		AuthTime:  now,
		AMR:       []string{"dingtalk", "qr"},
		DingTalk:  DingTalkIDs{CorpID: "ding-corp", UserID: "user-1", UnionID: "union-1"},
		CreatedAt: now,
		ExpiresAt: now.Add(8 * time.Hour),
	}
}

func newSigningKey(id string, state KeyState, now time.Time) SigningKey {
	k := SigningKey{
		ID:                  id,
		Algorithm:           "RS256",
		State:               state,
		EncryptedPrivateKey: []byte{0x00, 0x01, 0xfe, 0xff, byte(len(id))},
		PublicJWK:           []byte(`{"kty":"RSA","kid":"` + id + `","n":"0vx7","e":"AQAB"}`),
		CreatedAt:           now.Add(-48 * time.Hour),
	}
	if state != KeyNext {
		k.ActivatedAt = ptr(now.Add(-24 * time.Hour))
	}
	if state == KeyPrevious {
		k.RetiredAt = ptr(now.Add(-time.Hour))
	}
	return k
}

func withExpiry(at *AccessToken, expiresAt time.Time) *AccessToken {
	at.ExpiresAt = expiresAt
	return at
}

func withSessionTimes(sess *Session, expiresAt time.Time, endedAt *time.Time) *Session {
	sess.ExpiresAt, sess.EndedAt = expiresAt, endedAt
	return sess
}

// prefixed is p+id, or "" for "".
func prefixed(p, id string) string {
	if id == "" {
		return ""
	}
	return p + id
}

func ptr[T any](v T) *T { return &v }

// Helpers.

func mustCreateAuthRequest(t *testing.T, s Store, ar *AuthRequest) {
	t.Helper()
	if err := s.CreateAuthRequest(t.Context(), ar); err != nil {
		t.Fatalf("CreateAuthRequest(%s): %v", ar.ID, err)
	}
}

func mustCreateAccessToken(t *testing.T, s Store, at *AccessToken) {
	t.Helper()
	if err := s.CreateAccessToken(t.Context(), at); err != nil {
		t.Fatalf("CreateAccessToken(%s): %v", at.ID, err)
	}
}

func mustCreateRefreshToken(t *testing.T, s Store, rt *RefreshToken) {
	t.Helper()
	if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatalf("CreateRefreshToken(%s): %v", rt.Hash, err)
	}
}

func mustCreateSession(t *testing.T, s Store, sess *Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

// issueCode creates a full request, completes it and gives it codeHash,
// expiring a minute after now. It returns the request as the store should
// now hold it.
func issueCode(t *testing.T, s Store, id, codeHash string, now time.Time) *AuthRequest {
	t.Helper()
	ar := fullAuthRequest(id, now)
	mustCreateAuthRequest(t, s, ar)
	if err := s.CompleteAuthRequest(t.Context(), id, fullCompletion(now), now); err != nil {
		t.Fatalf("CompleteAuthRequest(%s): %v", id, err)
	}
	if err := s.SaveCode(t.Context(), id, codeHash, now.Add(time.Minute)); err != nil {
		t.Fatalf("SaveCode(%s): %v", id, err)
	}
	ar.Done, ar.Completion = true, fullCompletion(now)
	return ar
}

// lookup reads the row named id: an auth request (ar-), access token (at-),
// refresh token (rt-, by hash) or session (sess-).
func lookup(t *testing.T, s Store, id string) error {
	t.Helper()
	var err error
	switch id[:3] {
	case "ar-":
		_, err = s.AuthRequest(t.Context(), id)
	case "at-":
		_, err = s.AccessToken(t.Context(), id)
	case "rt-":
		_, err = s.RefreshToken(t.Context(), id)
	default:
		_, err = s.Session(t.Context(), id)
	}
	return err
}

// assertRevoked checks the RevokedAt of tokens, named by access token id or
// refresh token hash.
func assertRevoked(t *testing.T, s Store, want map[string]*time.Time) {
	t.Helper()
	for id, wantAt := range want {
		var got *time.Time
		at, err := s.AccessToken(t.Context(), id)
		if err == nil {
			got = at.RevokedAt
		} else if errors.Is(err, ErrNotFound) {
			var rt *RefreshToken
			if rt, err = s.RefreshToken(t.Context(), id); err == nil {
				got = rt.RevokedAt
			}
		}
		if err != nil {
			t.Errorf("token %s: %v", id, err)
			continue
		}
		assertEqual(t, id+".RevokedAt", got, wantAt)
	}
}

func assertRefreshToken(t *testing.T, s Store, want *RefreshToken) {
	t.Helper()
	got, err := s.RefreshToken(t.Context(), want.Hash)
	if err != nil {
		t.Errorf("RefreshToken(%s): %v", want.Hash, err)
		return
	}
	assertEqual(t, "RefreshToken("+want.Hash+")", got, want)
}

// assertErr checks that err is want (errors.Is), or nil when want is.
func assertErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// race runs f(0) … f(n-1) at once and returns their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// assertOneWinner checks that exactly one of errs is nil and all the others
// are loser, and returns the winner's index (or ends the test).
func assertOneWinner(t *testing.T, what string, errs []error, loser error) int {
	t.Helper()
	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
			winners++
		case !errors.Is(err, loser):
			t.Errorf("%s %d: err = %v, want nil or %v", what, i, err, loser)
		}
	}
	if winners != 1 {
		t.Fatalf("%s: %d of %d calls succeeded, want exactly 1", what, winners, len(errs))
	}
	return winner
}

// assertEqual reports every field in which got differs from want.
func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Errorf("%s%s", what, d) // d starts with the field path: .Subject = …
	}
}

var timeType = reflect.TypeFor[time.Time]()

// diff lists the fields in which got differs from want, comparing times
// with Equal and requiring got's times to be in UTC. Slices are equal when
// both are nil or both hold equal elements: the stores return empty lists
// as nil.
func diff(got, want any) []string {
	var out []string
	diffValue(&out, "", reflect.ValueOf(got), reflect.ValueOf(want))
	return out
}

func diffValue(out *[]string, path string, got, want reflect.Value) {
	if !got.IsValid() || !want.IsValid() {
		if got.IsValid() != want.IsValid() {
			*out = append(*out, fmt.Sprintf("%s = %v, want %v", path, got, want))
		}
		return
	}
	// The field path, as in ".Keys[0].ID", then " = got, want want".
	if got.Type() == timeType {
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		switch {
		case !g.Equal(w):
			*out = append(*out, fmt.Sprintf("%s = %v, want %v", path, g, w))
		case g.Location() != time.UTC:
			*out = append(*out, fmt.Sprintf("%s = %v, want it in UTC", path, g))
		}
		return
	}
	switch got.Kind() {
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				*out = append(*out, fmt.Sprintf("%s = %s, want %s", path, show(got), show(want)))
			}
			return
		}
		diffValue(out, path, got.Elem(), want.Elem())
	case reflect.Struct:
		for i := range got.NumField() {
			diffValue(out, path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))
		}
	case reflect.Slice:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			*out = append(*out, fmt.Sprintf("%s = %#v, want %#v", path, got.Interface(), want.Interface()))
			return
		}
		for i := range got.Len() {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			*out = append(*out, fmt.Sprintf("%s = %#v, want %#v", path, got.Interface(), want.Interface()))
		}
	}
}

// show prints a pointer's target rather than its address.
func show(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	return fmt.Sprintf("&%v", v.Elem().Interface())
}

// scribble overwrites everything reachable from v in place: strings, numbers,
// booleans and times, through pointers, slices and struct fields.
func scribble(v reflect.Value) {
	switch {
	case v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Unix(1, 0)))
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			scribble(v.Field(i))
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			scribble(v.Index(i))
		}
	case v.Kind() == reflect.String:
		v.SetString("scribbled")
	case v.CanInt():
		v.SetInt(-1)
	case v.CanUint():
		v.SetUint(0xff)
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	}
}

func newUpstream(hash, mode string, now time.Time, life time.Duration) *Upstream {
	return &Upstream{StateHash: hash, AuthRequestID: "ar-" + hash, BrowserID: "browser-" + hash, Mode: mode,
		CorpID: "dingcorp1", CreatedAt: now, ExpiresAt: now.Add(life)}
}

func testUpstream(t *testing.T, s Store) {
	ctx := t.Context()
	want := newUpstream("state-1", "web", t0, 10*time.Minute)
	if err := s.CreateUpstream(ctx, want); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	assertErr(t, "CreateUpstream of a taken hash", s.CreateUpstream(ctx, newUpstream("state-1", "qr", t0, time.Minute)), ErrConflict)

	got, err := s.ConsumeUpstream(ctx, "state-1", t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("ConsumeUpstream: %v", err)
	}
	assertEqual(t, "ConsumeUpstream", got, want)

	if err := s.CreateUpstream(ctx, newUpstream("state-2", "qr", t0, 3*time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	tests := []struct {
		name string
		hash string
		now  time.Time
	}{
		{name: "used", hash: "state-1", now: t0.Add(time.Minute)},
		{name: "unknown", hash: "state-unknown", now: t0},
		{name: "expires now", hash: "state-2", now: t0.Add(3 * time.Minute)},
		{name: "expired", hash: "state-2", now: t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ConsumeUpstream(ctx, tt.hash, tt.now)
			assertErr(t, "ConsumeUpstream", err, ErrNotFound)
			if got != nil {
				t.Errorf("ConsumeUpstream returned %+v, want nothing", got)
			}
		})
	}
	t.Run("an expired one was not consumed by the refusal", func(t *testing.T) {
		if _, err := s.ConsumeUpstream(ctx, "state-2", t0.Add(3*time.Minute-time.Microsecond)); err != nil {
			t.Errorf("ConsumeUpstream before expiry: %v", err)
		}
	})
}

func testUpstreamConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.CreateUpstream(ctx, newUpstream("state-race", "web", t0, 10*time.Minute)); err != nil {
		t.Fatalf("CreateUpstream: %v", err)
	}
	errs := race(racers, func(int) error {
		_, err := s.ConsumeUpstream(ctx, "state-race", t0)
		return err
	})
	assertOneWinner(t, "ConsumeUpstream", errs, ErrNotFound)
}

func testUpstreamDeleteExpired(t *testing.T, s Store) {
	ctx := t.Context()
	const expired = 5 // more than one batch on Postgres
	for i := range expired {
		if err := s.CreateUpstream(ctx, newUpstream(fmt.Sprintf("state-old-%d", i), "web", t0.Add(-time.Hour), 10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUpstream(ctx, newUpstream("state-edge", "qr", t0.Add(-3*time.Minute), 3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpstream(ctx, newUpstream("state-live", "sns", t0, 10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(ctx, t0, time.Hour)
	if n != expired+1 || err != nil {
		t.Errorf("DeleteExpired = %d, %v; want %d, nil", n, err, expired+1)
	}
	if _, err := s.ConsumeUpstream(ctx, "state-live", t0); err != nil {
		t.Errorf("ConsumeUpstream of the live one after DeleteExpired: %v", err)
	}
}

func testProfileRefreshed(t *testing.T, s Store) {
	ctx := t.Context()
	_, err := s.ProfileRefreshedAt(ctx, "dingcorp1", "zhangsan")
	assertErr(t, "ProfileRefreshedAt of a never refreshed profile", err, ErrNotFound)
	for _, at := range []time.Time{t0, t0.Add(time.Hour)} {
		if err := s.MarkProfileRefreshed(ctx, "dingcorp1", "zhangsan", at); err != nil {
			t.Fatalf("MarkProfileRefreshed: %v", err)
		}
		got, err := s.ProfileRefreshedAt(ctx, "dingcorp1", "zhangsan")
		if err != nil || !got.Equal(at) || got.Location() != time.UTC {
			t.Errorf("ProfileRefreshedAt = %v, %v; want %v in UTC", got, err, at)
		}
	}
	_, err = s.ProfileRefreshedAt(ctx, "dingcorp2", "zhangsan")
	assertErr(t, "ProfileRefreshedAt of another corp", err, ErrNotFound)
}

// assertAppToken checks what the store holds for appKey.
func assertAppToken(t *testing.T, s Store, appKey, wantCiphertext string, wantExpiresAt time.Time) {
	t.Helper()
	ct, exp, err := s.DingTalkAppToken(t.Context(), appKey)
	if err != nil || string(ct) != wantCiphertext || !exp.Equal(wantExpiresAt) || exp.Location() != time.UTC {
		t.Errorf("DingTalkAppToken(%q) = %q, %v, %v; want %q, %v in UTC, nil", appKey, ct, exp, err, wantCiphertext, wantExpiresAt)
	}
}

func testDingTalkAppToken(t *testing.T, s Store) {
	ctx := t.Context()
	put := func(appKey, ciphertext string, expiresAt time.Time) {
		t.Helper()
		if err := s.PutDingTalkAppToken(ctx, appKey, []byte(ciphertext), expiresAt); err != nil {
			t.Fatalf("PutDingTalkAppToken(%q, %q, %v): %v", appKey, ciphertext, expiresAt, err)
		}
	}
	_, _, err := s.DingTalkAppToken(ctx, "app-1")
	assertErr(t, "DingTalkAppToken of an app never stored", err, ErrNotFound)

	put("app-1", "sealed-1", t0.Add(time.Hour))
	assertAppToken(t, s, "app-1", "sealed-1", t0.Add(time.Hour))

	tests := []struct {
		name       string
		ciphertext string
		expiresAt  time.Time
		want       string // what is stored afterwards
		wantExp    time.Time
	}{
		{name: "older expiry does not overwrite", ciphertext: "sealed-old", expiresAt: t0.Add(30 * time.Minute),
			want: "sealed-1", wantExp: t0.Add(time.Hour)},
		{name: "equal expiry keeps the stored one", ciphertext: "sealed-same", expiresAt: t0.Add(time.Hour),
			want: "sealed-1", wantExp: t0.Add(time.Hour)},
		{name: "equal expiry at stored precision keeps the stored one", ciphertext: "sealed-nanos",
			expiresAt: t0.Add(time.Hour + 999*time.Nanosecond), want: "sealed-1", wantExp: t0.Add(time.Hour)},
		{name: "later expiry overwrites", ciphertext: "sealed-2", expiresAt: t0.Add(2 * time.Hour),
			want: "sealed-2", wantExp: t0.Add(2 * time.Hour)},
		{name: "a microsecond later overwrites", ciphertext: "sealed-3", expiresAt: t0.Add(2*time.Hour + time.Microsecond),
			want: "sealed-3", wantExp: t0.Add(2*time.Hour + time.Microsecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put("app-1", tt.ciphertext, tt.expiresAt)
			assertAppToken(t, s, "app-1", tt.want, tt.wantExp)
		})
	}

	t.Run("apps are independent", func(t *testing.T) {
		put("app-2", "sealed-other", t0.Add(time.Minute))
		assertAppToken(t, s, "app-2", "sealed-other", t0.Add(time.Minute))
		assertAppToken(t, s, "app-1", "sealed-3", t0.Add(2*time.Hour+time.Microsecond))
	})
	t.Run("an expired token is still returned until DeleteExpired", func(t *testing.T) {
		put("app-expired", "sealed-expired", t0.Add(-time.Hour))
		assertAppToken(t, s, "app-expired", "sealed-expired", t0.Add(-time.Hour))
	})
	t.Run("copies", func(t *testing.T) {
		in := []byte("sealed-copy")
		if err := s.PutDingTalkAppToken(ctx, "app-copy", in, t0); err != nil {
			t.Fatal(err)
		}
		in[0] = 'X'
		out, _, err := s.DingTalkAppToken(ctx, "app-copy")
		if err != nil {
			t.Fatal(err)
		}
		out[0] = 'Y'
		assertAppToken(t, s, "app-copy", "sealed-copy", t0)
	})
}

// testDingTalkAppTokenConcurrent races puts of tokens with different
// expiries, in no particular order: the latest expiry must end stored,
// whichever put came last.
func testDingTalkAppTokenConcurrent(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.PutDingTalkAppToken(ctx, "app-race", []byte("sealed-start"), t0); err != nil {
		t.Fatal(err)
	}
	latest := racers / 2 // not the last goroutine started
	expiry := func(i int) time.Time {
		if i == latest {
			return t0.Add(time.Duration(racers) * time.Minute)
		}
		return t0.Add(time.Duration(i%latest+1) * time.Minute)
	}
	errs := race(racers, func(i int) error {
		if err := s.PutDingTalkAppToken(ctx, "app-race", fmt.Appendf(nil, "sealed-%d", i), expiry(i)); err != nil {
			return err
		}
		_, exp, err := s.DingTalkAppToken(ctx, "app-race")
		if err == nil && exp.Before(expiry(i)) {
			err = fmt.Errorf("after a put expiring at %v the stored token expires at %v", expiry(i), exp)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	assertAppToken(t, s, "app-race", fmt.Sprintf("sealed-%d", latest), expiry(latest))
}

func testDingTalkAppTokenDeleteExpired(t *testing.T, s Store) {
	ctx := t.Context()
	const expired = 5 // more than one batch on Postgres
	for i := range expired {
		if err := s.PutDingTalkAppToken(ctx, fmt.Sprintf("app-old-%d", i), []byte("sealed"), t0.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutDingTalkAppToken(ctx, "app-edge", []byte("sealed"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDingTalkAppToken(ctx, "app-live", []byte("sealed-live"), t0.Add(time.Microsecond)); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(ctx, t0, time.Hour)
	if n != expired+1 || err != nil {
		t.Errorf("DeleteExpired = %d, %v; want %d, nil", n, err, expired+1)
	}
	for _, appKey := range []string{"app-old-0", "app-old-4", "app-edge"} {
		_, _, err := s.DingTalkAppToken(ctx, appKey)
		assertErr(t, "DingTalkAppToken of "+appKey+" after DeleteExpired", err, ErrNotFound)
	}
	assertAppToken(t, s, "app-live", "sealed-live", t0.Add(time.Microsecond))

	// A token put after its row was collected is stored, whatever the
	// deleted row's expiry was.
	if err := s.PutDingTalkAppToken(ctx, "app-edge", []byte("sealed-new"), t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	assertAppToken(t, s, "app-edge", "sealed-new", t0.Add(-time.Hour))
}
