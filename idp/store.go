package idp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store holds every piece of provider state, so that any replica can serve
// any step of any flow. It has two implementations run through one
// conformance suite: MemoryStore (demo, fast tests) and PostgresStore
// (production).
//
// The store never sees a secret value: codes and refresh tokens arrive as
// hashes (see hashToken), signing keys and DingTalk app tokens arrive
// encrypted. Policy (lifetimes,
// which prompt needs what) lives in the provider; the store guarantees
// atomicity: everything single-use is consumed exactly once, even when
// replicas race.
type Store interface {
	// CreateAuthRequest stores a new pending authorization request.
	CreateAuthRequest(ctx context.Context, ar *AuthRequest) error
	// AuthRequest returns the request with this id, whatever its state;
	// ErrNotFound if there is none (or it was garbage-collected).
	AuthRequest(ctx context.Context, id string) (*AuthRequest, error)
	// CompleteAuthRequest records who authenticated for a pending request.
	// It succeeds once: ErrNotFound for an unknown request or one whose
	// ExpiresAt is not after now, ErrConflict if it is already done.
	CompleteAuthRequest(ctx context.Context, id string, c Completion, now time.Time) error
	// AuthRequestWithSession is AuthRequest and Session in one read: the
	// request with this id (ErrNotFound if there is none) and the session
	// with sessionID, or nil if there is none (or sessionID is "").
	AuthRequestWithSession(ctx context.Context, id, sessionID string) (*AuthRequest, *Session, error)
	// StartSessionWithCode stores the new SSO session sess and, in the same
	// atomic step, completes the pending request authRequestID with it (as
	// CompleteAuthRequest with the session's subject, auth time, AMR, id and
	// DingTalk ids) and saves its code (as SaveCode). Both happen or
	// neither: ErrNotFound or ErrConflict as CompleteAuthRequest, and
	// ErrConflict too for a session id or code hash already taken, store
	// nothing.
	StartSessionWithCode(ctx context.Context, sess *Session, authRequestID, codeHash string, codeExpiresAt, now time.Time) error
	// SaveCode attaches the hash of the authorization code issued for a
	// completed request. A request gets at most one code: ErrConflict
	// otherwise; ErrNotFound if the request is unknown.
	SaveCode(ctx context.Context, authRequestID, codeHash string, expiresAt time.Time) error
	// ConsumeCode atomically marks the code as used and returns its request.
	// Of any number of concurrent calls with one hash, exactly one succeeds.
	// A code already consumed returns ErrCodeReplayed, and before returning
	// the store revokes every token of the grant (tokens whose GrantID is
	// the request's id): RFC 6749 §4.1.2. An unknown or expired code returns
	// ErrNotFound. The consumed request stays as a tombstone until
	// DeleteExpired removes it, so a late replay is still detected.
	//
	// A replay also marks the grant revoked, on the tombstone, for good: from
	// then on no token of the grant can be created (see CreateAccessToken).
	// So the grant ends revoked even when the replay wins the race against
	// the winning exchange's token creation, which comes after its
	// ConsumeCode returned. Every token creation of the grant is ordered
	// either before the replay (and the replay revokes the token) or after
	// it (and the creation fails); none slips between.
	ConsumeCode(ctx context.Context, codeHash string, now time.Time) (*AuthRequest, error)

	// CreateAccessToken stores the record of an issued access token (JWT or
	// opaque: the record is what revocation and introspection consult).
	// If t.GrantID names an auth request whose grant a code replay revoked,
	// it stores nothing and returns ErrGrantRevoked. A GrantID that is empty
	// or names no stored request is not checked.
	CreateAccessToken(ctx context.Context, t *AccessToken) error
	// AccessToken returns the record with this id, revoked or not;
	// ErrNotFound if there is none.
	AccessToken(ctx context.Context, id string) (*AccessToken, error)
	// RevokeAccessToken marks one access token revoked (idempotent;
	// ErrNotFound if unknown).
	RevokeAccessToken(ctx context.Context, id string, now time.Time) error

	// CreateRefreshToken stores a new refresh token (the first of a family,
	// or a standalone one). A revoked grant is ErrGrantRevoked, as for
	// CreateAccessToken.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// CreateTokens is CreateRefreshToken(rt) and CreateAccessToken(at) as
	// one atomic step: both are stored or neither. at must be of rt's grant
	// and family. A revoked grant is ErrGrantRevoked; a taken hash or id
	// is ErrConflict.
	CreateTokens(ctx context.Context, rt *RefreshToken, at *AccessToken) error
	// RefreshToken returns the refresh token with this hash, used, revoked
	// or not; ErrNotFound if there is none.
	RefreshToken(ctx context.Context, hash string) (*RefreshToken, error)
	// RotateRefreshToken atomically marks the token with oldHash used and
	// stores next in the same family. Of concurrent calls with one oldHash,
	// exactly one succeeds. If the old token was already used, the whole
	// family (its refresh tokens and the access tokens issued from them) is
	// revoked and ErrRefreshReplayed returned (RFC 9700 §4.14.2). A revoked
	// or expired (now) token returns ErrNotFound. A rotation that would
	// succeed but for next.GrantID naming a revoked grant (as for
	// CreateAccessToken) changes nothing and returns ErrGrantRevoked.
	RotateRefreshToken(ctx context.Context, oldHash string, next *RefreshToken, now time.Time) error
	// RotateRefreshTokenWithAccess is RotateRefreshToken that also stores
	// at, issued from next, in the same atomic step: at is stored exactly
	// when the rotation succeeds, in the old token's family whatever
	// at.FamilyID says. at must be of next's grant. Its errors are
	// RotateRefreshToken's, and a taken access token id is ErrConflict
	// (nothing changes).
	RotateRefreshTokenWithAccess(ctx context.Context, oldHash string, next *RefreshToken, at *AccessToken, now time.Time) error
	// RevokeRefreshFamily revokes every refresh token of a family and every
	// access token issued from it (idempotent).
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	// RevokeGrant revokes every access and refresh token whose GrantID is
	// grantID (idempotent).
	RevokeGrant(ctx context.Context, grantID string, now time.Time) error

	// CreateSession stores a new SSO session.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with this id, ended or not; ErrNotFound
	// if there is none.
	Session(ctx context.Context, id string) (*Session, error)
	// EndSession marks a session ended and revokes the tokens issued under
	// it (tokens whose SessionID is id); idempotent.
	EndSession(ctx context.Context, id string, now time.Time) error
	// EndIdentitySessions ends every live session signed in through the
	// DingTalk identity (corpID, userID) as EndSession does, tokens
	// included, and returns how many it ended.
	EndIdentitySessions(ctx context.Context, corpID, userID string, now time.Time) (int, error)

	// SigningKeys returns the stored key set and its version (0 and no keys
	// when none was ever stored).
	SigningKeys(ctx context.Context) (KeySet, error)
	// ReplaceSigningKeys stores keys as the whole key set if the stored
	// version is still fromVersion, and returns the new version; otherwise
	// ErrConflict (another replica rotated first: reload and re-decide).
	ReplaceSigningKeys(ctx context.Context, fromVersion int64, keys []SigningKey) (int64, error)

	// DeleteExpired removes what can no longer be used at now: requests and
	// code tombstones past their expiry plus retention, access and refresh
	// tokens, upstream transactions and DingTalk app tokens past their
	// expiry, sessions past their expiry or ended more than retention ago. It
	// is safe to run from several replicas at once, and returns how many rows
	// it removed.
	DeleteExpired(ctx context.Context, now time.Time, retention time.Duration) (int64, error)

	// CreateUpstream stores a new upstream (DingTalk) transaction; a state
	// hash already taken is ErrConflict.
	CreateUpstream(ctx context.Context, u *Upstream) error
	// ConsumeUpstream atomically marks the transaction with this state hash
	// used and returns it. Of any number of concurrent calls with one hash,
	// exactly one succeeds; an unknown, already used or expired (ExpiresAt
	// not after now) transaction is ErrNotFound.
	ConsumeUpstream(ctx context.Context, stateHash string, now time.Time) (*Upstream, error)
	// ConsumeUpstreamWithRequest is ConsumeUpstream that also returns, read
	// in the same step, the auth request the transaction names, whatever its
	// state (the caller checks it). A transaction whose request is gone is
	// ErrNotFound too, and is used up all the same.
	ConsumeUpstreamWithRequest(ctx context.Context, stateHash string, now time.Time) (*Upstream, *AuthRequest, error)

	// ProfileRefreshedAt returns when the DingTalk directory profile of
	// (corpID, userID) was last fetched; ErrNotFound if never.
	ProfileRefreshedAt(ctx context.Context, corpID, userID string) (time.Time, error)
	// MarkProfileRefreshed records that the directory profile of (corpID,
	// userID) was fetched at.
	MarkProfileRefreshed(ctx context.Context, corpID, userID string, at time.Time) error

	// DingTalkAppToken returns the encrypted DingTalk app access token
	// stored for appKey and the time after which it must not be used, even
	// if that time has passed (the caller decides; DeleteExpired removes
	// it); ErrNotFound if there is none.
	DingTalkAppToken(ctx context.Context, appKey string) (ciphertext []byte, expiresAt time.Time, err error)
	// PutDingTalkAppToken stores the encrypted app access token for appKey,
	// unless the stored one expires at the same time or later: then it keeps
	// the stored one and returns nil. A token with a later expiry was
	// fetched later, so the rule keeps the newest token whatever order
	// replicas write in; last-writer-wins would let a slow replica put back
	// a token that DingTalk has already replaced. Of concurrent puts, the one
	// with the latest expiry ends stored.
	PutDingTalkAppToken(ctx context.Context, appKey string, ciphertext []byte, expiresAt time.Time) error

	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
}

// Errors a Store returns for callers to branch on.
var (
	ErrNotFound        = errors.New("idp store: not found")
	ErrConflict        = errors.New("idp store: conflict")
	ErrCodeReplayed    = errors.New("idp store: authorization code already used")
	ErrRefreshReplayed = errors.New("idp store: refresh token already used")
	ErrGrantRevoked    = errors.New("idp store: grant revoked by a code replay")
)

// AuthRequest is one authorization request, from /authorize until its code
// is exchanged.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *time.Duration // nil when the client sent none
	UILocales           []string
	LoginHint           string
	HintSubject         string // sub of a verified id_token_hint
	BrowserID           string // hash binding the request to the browser that started it
	CreatedAt           time.Time
	ExpiresAt           time.Time

	// Set by CompleteAuthRequest.
	Done bool
	Completion
}

// Completion is who authenticated for an authorization request, and how.
type Completion struct {
	Subject   string
	AuthTime  time.Time
	AMR       []string
	SessionID string
	DingTalk  DingTalkIDs
}

// DingTalkIDs names the DingTalk identity a sign-in used; scope dingtalk
// exposes it as claims.
type DingTalkIDs struct {
	CorpID  string
	UserID  string
	UnionID string
}

// AccessToken is the record of an issued access token.
type AccessToken struct {
	ID        string
	GrantID   string // the authorization request the grant started from
	FamilyID  string // refresh family it was issued from; "" if none
	SessionID string
	ClientID  string
	Subject   string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	AMR       []string
	DingTalk  DingTalkIDs
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// RefreshToken is one refresh token of a rotation family. The token value
// itself is never stored: Hash is its SHA-256.
type RefreshToken struct {
	Hash            string
	ID              string // public id (token id in introspection and revocation)
	FamilyID        string
	GrantID         string
	SessionID       string
	ClientID        string
	Subject         string
	Scopes          []string
	Audience        []string
	AuthTime        time.Time
	AMR             []string
	DingTalk        DingTalkIDs
	CreatedAt       time.Time
	ExpiresAt       time.Time // this token's idle expiry
	FamilyExpiresAt time.Time // absolute expiry of the whole family
	UsedAt          *time.Time
	RevokedAt       *time.Time
}

// Session is one browser's SSO session: who signed in, when and how.
type Session struct {
	ID        string
	Subject   string
	AuthTime  time.Time
	AMR       []string
	DingTalk  DingTalkIDs
	CreatedAt time.Time
	ExpiresAt time.Time
	EndedAt   *time.Time
}

// Upstream is one round trip to DingTalk for an authorization request: the
// random state sent along (stored only as its hash), the browser that must
// bring it back, and the mode whose callback path it must come back on.
type Upstream struct {
	StateHash     string
	AuthRequestID string
	BrowserID     string // hash binding the transaction to the browser (as AuthRequest.BrowserID)
	Mode          string // "web", "qr" or "sns"
	CorpID        string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// KeyState is where a signing key is in its rotation.
type KeyState string

// Signing key states: published before use, used, published after use.
const (
	KeyNext     KeyState = "next"
	KeyCurrent  KeyState = "current"
	KeyPrevious KeyState = "previous"
)

// SigningKey is a signing key as stored: its private half encrypted with
// the key-encryption key.
type SigningKey struct {
	ID                  string // kid: RFC 7638 thumbprint
	Algorithm           string // "RS256" or "ES256"
	State               KeyState
	EncryptedPrivateKey []byte
	PublicJWK           []byte // the public key as a JSON Web Key
	CreatedAt           time.Time
	ActivatedAt         *time.Time // when it became current
	RetiredAt           *time.Time // when it became previous
}

// KeySet is the stored signing keys and the version ReplaceSigningKeys
// compares.
type KeySet struct {
	Version int64
	Keys    []SigningKey
}

// sessionCompletion is the completion of an authorization request by the
// sign-in that started sess.
func sessionCompletion(sess *Session) Completion {
	return Completion{Subject: sess.Subject, AuthTime: sess.AuthTime, AMR: sess.AMR, SessionID: sess.ID, DingTalk: sess.DingTalk}
}

// samePair checks that an access token stored together with a refresh
// token belongs to its grant (and, when family is set, to its family): the
// stores check the grant of the pair once, for both.
func samePair(rt *RefreshToken, at *AccessToken, family bool) error {
	if at.GrantID != rt.GrantID || (family && at.FamilyID != rt.FamilyID) {
		return fmt.Errorf("access token %s is not of refresh token %s's grant and family", at.ID, rt.ID)
	}
	return nil
}
