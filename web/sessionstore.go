package web

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// ErrNoSession is what a SessionStore returns for a session it does not
// hold: never created, or removed after it expired.
var ErrNoSession = errors.New("no such console session")

// SessionRecord is a console session as the server keeps it (SECURITY.md
// ADM-04). The browser's cookie holds the session id; the store holds only
// its SHA-256, so whoever reads the store cannot forge a cookie from it.
type SessionRecord struct {
	IDHash    [32]byte
	AccountID string
	Created   time.Time
	LastSeen  time.Time // moved at most once per touchEvery
	Expires   time.Time // Created + the absolute timeout
	Revoked   time.Time // zero while the session may be used
}

// SessionStore keeps the console's sessions where every replica sees them,
// so that a sign-out, or an administrator losing the role, ends the session
// on all replicas at once. MemorySessions serves one process (the demo);
// PostgresSessions serves replicas.
type SessionStore interface {
	// Create stores a new session.
	Create(ctx context.Context, rec SessionRecord) error
	// Session returns the session with this id hash, or ErrNoSession.
	Session(ctx context.Context, idHash [32]byte) (SessionRecord, error)
	// Touch moves the session's LastSeen forward to at (never back).
	Touch(ctx context.Context, idHash [32]byte, at time.Time) error
	// Revoke ends one session at at; revoking twice keeps the first time.
	Revoke(ctx context.Context, idHash [32]byte, at time.Time) error
	// RevokeAccount ends every live session of the account and says how
	// many it ended.
	RevokeAccount(ctx context.Context, accountID string, at time.Time) (int, error)
	// DeleteExpired removes sessions no longer usable at now: past Expires,
	// revoked, or last seen at or before idleBefore. It says how many.
	DeleteExpired(ctx context.Context, now, idleBefore time.Time) (int, error)
}

// hashSessionID is how a session id is looked up in a SessionStore.
func hashSessionID(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// MemorySessions is a SessionStore in this process's memory: for the
// in-memory demo and tests. With several replicas, use PostgresSessions.
type MemorySessions struct {
	mu sync.Mutex
	m  map[[32]byte]SessionRecord
}

var _ SessionStore = (*MemorySessions)(nil)

// NewMemorySessions returns an empty MemorySessions.
func NewMemorySessions() *MemorySessions {
	return &MemorySessions{m: map[[32]byte]SessionRecord{}}
}

// Create implements SessionStore.
func (s *MemorySessions) Create(_ context.Context, rec SessionRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.m[rec.IDHash]; dup {
		return errors.New("create console session: id already in use")
	}
	s.m[rec.IDHash] = rec
	return nil
}

// Session implements SessionStore.
func (s *MemorySessions) Session(_ context.Context, idHash [32]byte) (SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.m[idHash]
	if !ok {
		return SessionRecord{}, ErrNoSession
	}
	return rec, nil
}

// Touch implements SessionStore.
func (s *MemorySessions) Touch(_ context.Context, idHash [32]byte, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.m[idHash]; ok && at.After(rec.LastSeen) {
		rec.LastSeen = at
		s.m[idHash] = rec
	}
	return nil
}

// Revoke implements SessionStore.
func (s *MemorySessions) Revoke(_ context.Context, idHash [32]byte, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.m[idHash]; ok && rec.Revoked.IsZero() {
		rec.Revoked = at
		s.m[idHash] = rec
	}
	return nil
}

// RevokeAccount implements SessionStore.
func (s *MemorySessions) RevokeAccount(_ context.Context, accountID string, at time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, rec := range s.m {
		if rec.AccountID == accountID && rec.Revoked.IsZero() {
			rec.Revoked = at
			s.m[h] = rec
			n++
		}
	}
	return n, nil
}

// DeleteExpired implements SessionStore.
func (s *MemorySessions) DeleteExpired(_ context.Context, now, idleBefore time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, rec := range s.m {
		if !now.Before(rec.Expires) || !rec.Revoked.IsZero() || !rec.LastSeen.After(idleBefore) {
			delete(s.m, h)
			n++
		}
	}
	return n, nil
}
