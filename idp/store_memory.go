package idp

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore is a Store in process memory, for the demo and for fast tests.
// Its state dies with the process and is not shared between replicas, so
// production runs PostgresStore. It behaves like PostgresStore in every way
// the conformance suite checks, down to storing times in UTC at microsecond
// precision and returning empty lists as nil. Values are copied on the way in
// and out: a caller cannot change stored state through a pointer or slice.
type MemoryStore struct {
	mu         sync.Mutex
	requests   map[string]*memoryAuthRequest // by id
	codes      map[string]string             // request id by code hash
	access     map[string]*AccessToken       // by id
	refresh    map[string]*RefreshToken      // by hash
	refreshIDs map[string]bool               // ids of refresh tokens, which are unique too
	sessions   map[string]*Session           // by id
	upstreams  map[string]*memoryUpstream    // by state hash
	profiles   map[[2]string]time.Time       // directory profile fetch times by (corp, user)
	appTokens  map[string]memoryAppToken     // encrypted DingTalk app tokens by app key
	keys       KeySet
}

// memoryAppToken is an encrypted DingTalk app token and its expiry.
type memoryAppToken struct {
	ciphertext []byte
	expiresAt  time.Time
}

// memoryUpstream is an upstream transaction and whether it was used.
type memoryUpstream struct {
	Upstream
	used bool
}

// memoryAuthRequest is an auth request and the state of its code.
type memoryAuthRequest struct {
	AuthRequest
	codeHash       string
	codeExpiresAt  time.Time
	consumedAt     *time.Time
	grantRevokedAt *time.Time // when a replay of the code revoked the grant
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		requests:   make(map[string]*memoryAuthRequest),
		codes:      make(map[string]string),
		access:     make(map[string]*AccessToken),
		refresh:    make(map[string]*RefreshToken),
		refreshIDs: make(map[string]bool),
		sessions:   make(map[string]*Session),
		upstreams:  make(map[string]*memoryUpstream),
		profiles:   make(map[[2]string]time.Time),
		appTokens:  make(map[string]memoryAppToken),
	}
}

// CreateAuthRequest implements Store.
func (s *MemoryStore) CreateAuthRequest(_ context.Context, ar *AuthRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[ar.ID]; ok {
		return ErrConflict
	}
	s.requests[ar.ID] = &memoryAuthRequest{AuthRequest: *copyAuthRequest(ar)}
	return nil
}

// AuthRequest implements Store.
func (s *MemoryStore) AuthRequest(_ context.Context, id string) (*AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return nil, ErrNotFound
	}
	return copyAuthRequest(&r.AuthRequest), nil
}

// CompleteAuthRequest implements Store.
func (s *MemoryStore) CompleteAuthRequest(_ context.Context, id string, c Completion, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	switch {
	case !ok, !r.ExpiresAt.After(now):
		return ErrNotFound
	case r.Done:
		return ErrConflict
	}
	r.Done = true
	r.Completion = copyCompletion(c)
	return nil
}

// AuthRequestWithSession implements Store.
func (s *MemoryStore) AuthRequestWithSession(_ context.Context, id, sessionID string) (*AuthRequest, *Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return nil, nil, ErrNotFound
	}
	var sess *Session
	if stored, ok := s.sessions[sessionID]; ok {
		sess = copySession(stored)
	}
	return copyAuthRequest(&r.AuthRequest), sess, nil
}

// StartSessionWithCode implements Store: every check comes before the first
// change, so a refusal stores nothing.
func (s *MemoryStore) StartSessionWithCode(_ context.Context, sess *Session, authRequestID, codeHash string, codeExpiresAt, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[authRequestID]
	switch {
	case !ok, !r.ExpiresAt.After(now):
		return ErrNotFound
	case r.Done:
		return ErrConflict
	}
	if _, taken := s.sessions[sess.ID]; taken {
		return ErrConflict
	}
	if _, taken := s.codes[codeHash]; taken {
		return ErrConflict
	}
	s.sessions[sess.ID] = copySession(sess)
	r.Done = true
	r.Completion = copyCompletion(sessionCompletion(sess))
	r.codeHash, r.codeExpiresAt = codeHash, storedTime(codeExpiresAt)
	s.codes[codeHash] = authRequestID
	return nil
}

// SaveCode implements Store. A request that is not done yet gets no code
// (ErrConflict): a code must never stand for an unauthenticated request.
func (s *MemoryStore) SaveCode(_ context.Context, authRequestID, codeHash string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[authRequestID]
	if !ok {
		return ErrNotFound
	}
	if !r.Done || r.codeHash != "" {
		return ErrConflict
	}
	if _, taken := s.codes[codeHash]; taken {
		return ErrConflict
	}
	r.codeHash, r.codeExpiresAt = codeHash, storedTime(expiresAt)
	s.codes[codeHash] = authRequestID
	return nil
}

// ConsumeCode implements Store. A replay marks the grant revoked and
// revokes its tokens under the mutex that token creation checks the mark
// under, so every token of the grant is created before (and revoked) or
// refused.
func (s *MemoryStore) ConsumeCode(_ context.Context, codeHash string, now time.Time) (*AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[codeHash]
	if !ok {
		return nil, ErrNotFound
	}
	r := s.requests[id]
	if r.consumedAt != nil {
		if r.grantRevokedAt == nil {
			r.grantRevokedAt = storedTimePtr(&now)
		}
		s.revokeLocked(func(grantID, _, _ string) bool { return grantID == id }, now)
		return nil, ErrCodeReplayed
	}
	if !r.codeExpiresAt.After(now) {
		return nil, ErrNotFound
	}
	r.consumedAt = storedTimePtr(&now)
	return copyAuthRequest(&r.AuthRequest), nil
}

// CreateAccessToken implements Store.
func (s *MemoryStore) CreateAccessToken(_ context.Context, t *AccessToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grantRevokedLocked(t.GrantID) {
		return ErrGrantRevoked
	}
	if _, ok := s.access[t.ID]; ok {
		return ErrConflict
	}
	s.access[t.ID] = copyAccessToken(t)
	return nil
}

// AccessToken implements Store.
func (s *MemoryStore) AccessToken(_ context.Context, id string) (*AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[id]
	if !ok {
		return nil, ErrNotFound
	}
	return copyAccessToken(t), nil
}

// RevokeAccessToken implements Store. A token revoked before keeps its first
// revocation time.
func (s *MemoryStore) RevokeAccessToken(_ context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[id]
	if !ok {
		return ErrNotFound
	}
	if t.RevokedAt == nil {
		t.RevokedAt = storedTimePtr(&now)
	}
	return nil
}

// CreateRefreshToken implements Store. Hash and ID are both unique:
// ErrConflict if either is taken.
func (s *MemoryStore) CreateRefreshToken(_ context.Context, t *RefreshToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grantRevokedLocked(t.GrantID) {
		return ErrGrantRevoked
	}
	return s.createRefreshLocked(t)
}

// CreateTokens implements Store: every check comes before the first change,
// so a refusal stores nothing.
func (s *MemoryStore) CreateTokens(_ context.Context, rt *RefreshToken, at *AccessToken) error {
	if err := samePair(rt, at, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grantRevokedLocked(rt.GrantID) {
		return ErrGrantRevoked
	}
	if _, ok := s.refresh[rt.Hash]; ok || s.refreshIDs[rt.ID] {
		return ErrConflict
	}
	if _, ok := s.access[at.ID]; ok {
		return ErrConflict
	}
	s.refresh[rt.Hash] = copyRefreshToken(rt)
	s.refreshIDs[rt.ID] = true
	s.access[at.ID] = copyAccessToken(at)
	return nil
}

// grantRevokedLocked reports whether grantID names an auth request whose
// grant a code replay revoked. An empty grantID, or one naming no request,
// is not revoked.
func (s *MemoryStore) grantRevokedLocked(grantID string) bool {
	r, ok := s.requests[grantID]
	return grantID != "" && ok && r.grantRevokedAt != nil
}

func (s *MemoryStore) createRefreshLocked(t *RefreshToken) error {
	if _, ok := s.refresh[t.Hash]; ok || s.refreshIDs[t.ID] {
		return ErrConflict
	}
	s.refresh[t.Hash] = copyRefreshToken(t)
	s.refreshIDs[t.ID] = true
	return nil
}

// RefreshToken implements Store.
func (s *MemoryStore) RefreshToken(_ context.Context, hash string) (*RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return copyRefreshToken(t), nil
}

// RotateRefreshToken implements Store. next is stored in the old token's
// family, whatever next.FamilyID says. A token past its idle expiry or its
// family's absolute expiry is expired. A used token is a replay even when it
// has also been revoked or has expired since. A revoked grant is reported
// only for a token that is otherwise rotatable, as PostgresStore does.
func (s *MemoryStore) RotateRefreshToken(_ context.Context, oldHash string, next *RefreshToken, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked(oldHash, next, nil, now)
}

// RotateRefreshTokenWithAccess implements Store: at is stored with next,
// in the old token's family, or not at all.
func (s *MemoryStore) RotateRefreshTokenWithAccess(_ context.Context, oldHash string, next *RefreshToken, at *AccessToken, now time.Time) error {
	if err := samePair(next, at, false); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked(oldHash, next, at, now)
}

// rotateLocked rotates oldHash into next and, unless at is nil, stores at
// in the same family. Every check comes before the first change.
func (s *MemoryStore) rotateLocked(oldHash string, next *RefreshToken, at *AccessToken, now time.Time) error {
	old, ok := s.refresh[oldHash]
	switch {
	case !ok:
		return ErrNotFound
	case old.UsedAt != nil:
		family := old.FamilyID
		s.revokeLocked(func(_, familyID, _ string) bool { return familyID == family }, now)
		return ErrRefreshReplayed
	case old.RevokedAt != nil, !old.ExpiresAt.After(now), !old.FamilyExpiresAt.After(now):
		return ErrNotFound
	case s.grantRevokedLocked(next.GrantID):
		return ErrGrantRevoked
	}
	if at != nil {
		if _, taken := s.access[at.ID]; taken {
			return ErrConflict
		}
	}
	n := *next
	n.FamilyID = old.FamilyID
	if err := s.createRefreshLocked(&n); err != nil {
		return err
	}
	old.UsedAt = storedTimePtr(&now)
	if at != nil {
		a := copyAccessToken(at)
		a.FamilyID = old.FamilyID
		s.access[a.ID] = a
	}
	return nil
}

// RevokeRefreshFamily implements Store. An empty familyID revokes nothing
// (it is what tokens outside any family carry).
func (s *MemoryStore) RevokeRefreshFamily(_ context.Context, familyID string, now time.Time) error {
	if familyID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(func(_, family, _ string) bool { return family == familyID }, now)
	return nil
}

// RevokeGrant implements Store. An empty grantID revokes nothing.
func (s *MemoryStore) RevokeGrant(_ context.Context, grantID string, now time.Time) error {
	if grantID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(func(grant, _, _ string) bool { return grant == grantID }, now)
	return nil
}

// revokeLocked revokes, at now, every access and refresh token not revoked
// yet that match selects by its grant, family and session ids.
func (s *MemoryStore) revokeLocked(match func(grantID, familyID, sessionID string) bool, now time.Time) {
	for _, t := range s.refresh {
		if t.RevokedAt == nil && match(t.GrantID, t.FamilyID, t.SessionID) {
			t.RevokedAt = storedTimePtr(&now)
		}
	}
	for _, t := range s.access {
		if t.RevokedAt == nil && match(t.GrantID, t.FamilyID, t.SessionID) {
			t.RevokedAt = storedTimePtr(&now)
		}
	}
}

// CreateSession implements Store.
func (s *MemoryStore) CreateSession(_ context.Context, sess *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.ID]; ok {
		return ErrConflict
	}
	s.sessions[sess.ID] = copySession(sess)
	return nil
}

// Session implements Store.
func (s *MemoryStore) Session(_ context.Context, id string) (*Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	return copySession(sess), nil
}

// EndSession implements Store. A session ended before keeps its first end
// time. For an id with no session (never created, or garbage-collected) it
// still revokes the tokens that carry that SessionID, then returns
// ErrNotFound. An empty id ends and revokes nothing.
func (s *MemoryStore) EndSession(_ context.Context, id string, now time.Time) error {
	if id == "" {
		return ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(func(_, _, sessionID string) bool { return sessionID == id }, now)
	sess, ok := s.sessions[id]
	if !ok {
		return ErrNotFound
	}
	if sess.EndedAt == nil {
		sess.EndedAt = storedTimePtr(&now)
	}
	return nil
}

// SigningKeys implements Store.
func (s *MemoryStore) SigningKeys(context.Context) (KeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return KeySet{Version: s.keys.Version, Keys: copySigningKeys(s.keys.Keys)}, nil
}

// ReplaceSigningKeys implements Store. Two keys with one ID are a conflict.
func (s *MemoryStore) ReplaceSigningKeys(_ context.Context, fromVersion int64, keys []SigningKey) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fromVersion != s.keys.Version {
		return 0, ErrConflict
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k.ID] {
			return 0, ErrConflict
		}
		seen[k.ID] = true
	}
	s.keys = KeySet{Version: s.keys.Version + 1, Keys: copySigningKeys(keys)}
	return s.keys.Version, nil
}

// DeleteExpired implements Store. A negative retention counts as zero.
func (s *MemoryStore) DeleteExpired(_ context.Context, now time.Time, retention time.Duration) (int64, error) {
	cutoff := now.Add(-max(retention, 0))
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, r := range s.requests {
		end := r.ExpiresAt
		if r.codeHash != "" && r.codeExpiresAt.After(end) {
			end = r.codeExpiresAt
		}
		if !end.After(cutoff) {
			delete(s.requests, id)
			delete(s.codes, r.codeHash)
			n++
		}
	}
	for id, t := range s.access {
		if !t.ExpiresAt.After(now) {
			delete(s.access, id)
			n++
		}
	}
	for hash, t := range s.refresh {
		if !t.ExpiresAt.After(now) || !t.FamilyExpiresAt.After(now) {
			delete(s.refresh, hash)
			delete(s.refreshIDs, t.ID)
			n++
		}
	}
	for id, sess := range s.sessions {
		if !sess.ExpiresAt.After(now) || (sess.EndedAt != nil && !sess.EndedAt.After(cutoff)) {
			delete(s.sessions, id)
			n++
		}
	}
	for hash, u := range s.upstreams {
		if !u.ExpiresAt.After(now) {
			delete(s.upstreams, hash)
			n++
		}
	}
	for appKey, t := range s.appTokens {
		if !t.expiresAt.After(now) {
			delete(s.appTokens, appKey)
			n++
		}
	}
	return n, nil
}

// CreateUpstream implements Store.
func (s *MemoryStore) CreateUpstream(_ context.Context, u *Upstream) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.upstreams[u.StateHash]; ok {
		return ErrConflict
	}
	c := *u
	c.CreatedAt, c.ExpiresAt = storedTime(u.CreatedAt), storedTime(u.ExpiresAt)
	s.upstreams[u.StateHash] = &memoryUpstream{Upstream: c}
	return nil
}

// ConsumeUpstream implements Store.
func (s *MemoryStore) ConsumeUpstream(_ context.Context, stateHash string, now time.Time) (*Upstream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.upstreams[stateHash]
	if !ok || u.used || !u.ExpiresAt.After(now) {
		return nil, ErrNotFound
	}
	u.used = true
	c := u.Upstream
	return &c, nil
}

// ConsumeUpstreamWithRequest implements Store.
func (s *MemoryStore) ConsumeUpstreamWithRequest(_ context.Context, stateHash string, now time.Time) (*Upstream, *AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.upstreams[stateHash]
	if !ok || u.used || !u.ExpiresAt.After(now) {
		return nil, nil, ErrNotFound
	}
	u.used = true
	r, ok := s.requests[u.AuthRequestID]
	if !ok {
		return nil, nil, ErrNotFound
	}
	c := u.Upstream
	return &c, copyAuthRequest(&r.AuthRequest), nil
}

// ProfileRefreshedAt implements Store.
func (s *MemoryStore) ProfileRefreshedAt(_ context.Context, corpID, userID string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.profiles[[2]string{corpID, userID}]
	if !ok {
		return time.Time{}, ErrNotFound
	}
	return at, nil
}

// MarkProfileRefreshed implements Store.
func (s *MemoryStore) MarkProfileRefreshed(_ context.Context, corpID, userID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[[2]string{corpID, userID}] = storedTime(at)
	return nil
}

// DingTalkAppToken implements Store.
func (s *MemoryStore) DingTalkAppToken(_ context.Context, appKey string) ([]byte, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.appTokens[appKey]
	if !ok {
		return nil, time.Time{}, ErrNotFound
	}
	return cloneBytes(t.ciphertext), t.expiresAt, nil
}

// PutDingTalkAppToken implements Store: the stored token is replaced only by
// one with a later expiry, compared at the precision Postgres keeps.
func (s *MemoryStore) PutDingTalkAppToken(_ context.Context, appKey string, ciphertext []byte, expiresAt time.Time) error {
	expiresAt = storedTime(expiresAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.appTokens[appKey]; ok && !t.expiresAt.Before(expiresAt) {
		return nil
	}
	s.appTokens[appKey] = memoryAppToken{ciphertext: cloneBytes(ciphertext), expiresAt: expiresAt}
	return nil
}

// Ping implements Store: memory is always there.
func (s *MemoryStore) Ping(context.Context) error { return nil }

// storedTime is t as Postgres stores and returns it: in UTC, truncated to
// microseconds (pgx truncates; Postgres keeps microseconds).
func storedTime(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

func storedTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := storedTime(*t)
	return &c
}

// cloneStrings copies s, returning nil for an empty list as Postgres does.
func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func copyAuthRequest(ar *AuthRequest) *AuthRequest {
	c := *ar
	c.Scopes = cloneStrings(ar.Scopes)
	c.Prompt = cloneStrings(ar.Prompt)
	c.UILocales = cloneStrings(ar.UILocales)
	if ar.MaxAge != nil {
		d := ar.MaxAge.Truncate(time.Microsecond)
		c.MaxAge = &d
	}
	c.CreatedAt = storedTime(ar.CreatedAt)
	c.ExpiresAt = storedTime(ar.ExpiresAt)
	c.Completion = copyCompletion(ar.Completion)
	return &c
}

func copyCompletion(c Completion) Completion {
	c.AuthTime = storedTime(c.AuthTime)
	c.AMR = cloneStrings(c.AMR)
	return c
}

func copyAccessToken(t *AccessToken) *AccessToken {
	c := *t
	c.Scopes = cloneStrings(t.Scopes)
	c.Audience = cloneStrings(t.Audience)
	c.AMR = cloneStrings(t.AMR)
	c.AuthTime = storedTime(t.AuthTime)
	c.CreatedAt = storedTime(t.CreatedAt)
	c.ExpiresAt = storedTime(t.ExpiresAt)
	c.RevokedAt = storedTimePtr(t.RevokedAt)
	return &c
}

func copyRefreshToken(t *RefreshToken) *RefreshToken {
	c := *t
	c.Scopes = cloneStrings(t.Scopes)
	c.Audience = cloneStrings(t.Audience)
	c.AMR = cloneStrings(t.AMR)
	c.AuthTime = storedTime(t.AuthTime)
	c.CreatedAt = storedTime(t.CreatedAt)
	c.ExpiresAt = storedTime(t.ExpiresAt)
	c.FamilyExpiresAt = storedTime(t.FamilyExpiresAt)
	c.UsedAt = storedTimePtr(t.UsedAt)
	c.RevokedAt = storedTimePtr(t.RevokedAt)
	return &c
}

func copySession(s *Session) *Session {
	c := *s
	c.AMR = cloneStrings(s.AMR)
	c.AuthTime = storedTime(s.AuthTime)
	c.CreatedAt = storedTime(s.CreatedAt)
	c.ExpiresAt = storedTime(s.ExpiresAt)
	c.EndedAt = storedTimePtr(s.EndedAt)
	return &c
}

func copySigningKeys(keys []SigningKey) []SigningKey {
	if len(keys) == 0 {
		return nil
	}
	c := make([]SigningKey, len(keys))
	for i, k := range keys {
		k.EncryptedPrivateKey = cloneBytes(k.EncryptedPrivateKey)
		k.PublicJWK = cloneBytes(k.PublicJWK)
		k.CreatedAt = storedTime(k.CreatedAt)
		k.ActivatedAt = storedTimePtr(k.ActivatedAt)
		k.RetiredAt = storedTimePtr(k.RetiredAt)
		c[i] = k
	}
	return c
}
