package dingtalk

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // DingTalk's callback signature is defined as SHA-1.
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// aesKeyLen is the length of the console's EncodingAESKey.
	aesKeyLen = 43
	// callbackPadBlock is DingTalk's PKCS#7 block: its own ciphertexts pad
	// to 32 bytes, though the official Go sample pads to 16.
	callbackPadBlock = 32
	// callbackHeaderLen is the random prefix plus the length field.
	callbackHeaderLen = 16 + 4
	// maxCallbackBody bounds an event POST; events carry ids only.
	maxCallbackBody = 1 << 20
	nonceLen        = 16
	nonceAlphabet   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// Errors from CallbackCrypto.Decrypt.
var (
	// ErrBadSignature means the callback's signature does not match.
	ErrBadSignature = errors.New("dingtalk: callback signature mismatch")
	// ErrBadCiphertext means the callback could not be decrypted: wrong
	// aes key, or a malformed message.
	ErrBadCiphertext = errors.New("dingtalk: callback ciphertext invalid")
	// ErrOwnerKeyMismatch means the message decrypted but is addressed to
	// another owner: appKey for console subscriptions, corpId for
	// register_call_back ones.
	ErrOwnerKeyMismatch = errors.New("dingtalk: callback owner key mismatch")
)

// CallbackCrypto signs, verifies, encrypts and decrypts DingTalk event
// callbacks (AES-256-CBC, SHA-1 signature, §7.3). Set Rand and Now before use
// to make its output deterministic in tests.
type CallbackCrypto struct {
	// Rand supplies the random prefix and nonces (default crypto/rand.Reader).
	Rand io.Reader
	// Now supplies reply timestamps (default time.Now).
	Now func() time.Time

	token    string
	ownerKey string
	iv       []byte
	block    cipher.Block
}

// NewCallbackCrypto returns the crypto for one subscription: token and aesKey
// (43 characters) as set in the DingTalk console, and ownerKey, the appKey
// for console-configured subscriptions or the corpId for ones registered
// with register_call_back.
func NewCallbackCrypto(token, aesKey, ownerKey string) (*CallbackCrypto, error) {
	var errs []error
	if token == "" {
		errs = append(errs, errors.New("token: required"))
	}
	if ownerKey == "" {
		errs = append(errs, errors.New("owner key: required"))
	}
	var key []byte
	if len(aesKey) != aesKeyLen {
		errs = append(errs, fmt.Errorf("aes key: must be %d characters", aesKeyLen))
	} else if k, err := base64.StdEncoding.DecodeString(aesKey + "="); err != nil {
		errs = append(errs, errors.New("aes key: not base64"))
	} else {
		key = k
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dingtalk: callback crypto: %w", err)
	}
	block, err := aes.NewCipher(key) // 43 base64 chars always give 32 bytes
	if err != nil {
		return nil, fmt.Errorf("dingtalk: callback crypto: %w", err)
	}
	return &CallbackCrypto{token: token, ownerKey: ownerKey, iv: key[:aes.BlockSize], block: block}, nil
}

// signature is hex(SHA1(concat(sort(token, timestamp, nonce, encrypt)))).
func (c *CallbackCrypto) signature(timestamp, nonce, encrypt string) string {
	parts := []string{c.token, timestamp, nonce, encrypt}
	slices.Sort(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, ""))) //nolint:gosec // protocol-defined
	return hex.EncodeToString(sum[:])
}

// Decrypt verifies signature over (timestamp, nonce, encrypt) and returns the
// decrypted message. It fails with ErrBadSignature before touching the
// ciphertext, so a forged request learns nothing about decryption.
func (c *CallbackCrypto) Decrypt(signature, timestamp, nonce, encrypt string) ([]byte, error) {
	want := c.signature(timestamp, nonce, encrypt)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) != 1 {
		return nil, ErrBadSignature
	}
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: not whole AES blocks", ErrBadCiphertext)
	}
	buf := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(buf, ct)
	buf, err = unpad(buf)
	if err != nil {
		return nil, err
	}
	if len(buf) < callbackHeaderLen {
		return nil, fmt.Errorf("%w: too short", ErrBadCiphertext)
	}
	n := binary.BigEndian.Uint32(buf[16:callbackHeaderLen])
	if uint64(n) > uint64(len(buf)-callbackHeaderLen) {
		return nil, fmt.Errorf("%w: bad length field", ErrBadCiphertext)
	}
	end := callbackHeaderLen + int(n)
	if subtle.ConstantTimeCompare(buf[end:], []byte(c.ownerKey)) != 1 {
		return nil, ErrOwnerKeyMismatch
	}
	return buf[callbackHeaderLen:end], nil
}

// unpad strips PKCS#7 padding with pad values 1..32, the range DingTalk's
// and the official samples' block sizes produce.
func unpad(b []byte) ([]byte, error) {
	pad := int(b[len(b)-1])
	if pad < 1 || pad > callbackPadBlock || pad > len(b) {
		return nil, fmt.Errorf("%w: bad padding", ErrBadCiphertext)
	}
	for _, v := range b[len(b)-pad:] {
		if int(v) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrBadCiphertext)
		}
	}
	return b[:len(b)-pad], nil
}

// Encrypt encrypts msg for DingTalk (random prefix, length, msg, owner key,
// padded to 32 bytes) and signs it with timestamp and nonce.
func (c *CallbackCrypto) Encrypt(msg []byte, timestamp, nonce string) (encrypt, signature string, err error) {
	if len(msg) > math.MaxUint32-callbackHeaderLen-len(c.ownerKey)-callbackPadBlock {
		return "", "", errors.New("dingtalk: callback message too long")
	}
	buf := make([]byte, callbackHeaderLen, callbackHeaderLen+len(msg)+len(c.ownerKey)+callbackPadBlock)
	if _, err := io.ReadFull(c.rand(), buf[:16]); err != nil {
		return "", "", fmt.Errorf("dingtalk: callback random prefix: %w", err)
	}
	binary.BigEndian.PutUint32(buf[16:callbackHeaderLen], uint32(len(msg))) //nolint:gosec // bounded above
	buf = append(buf, msg...)
	buf = append(buf, c.ownerKey...)
	pad := callbackPadBlock - len(buf)%callbackPadBlock
	buf = append(buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(buf, buf)
	encrypt = base64.StdEncoding.EncodeToString(buf)
	return encrypt, c.signature(timestamp, nonce, encrypt), nil
}

// CallbackReply is the JSON body DingTalk expects in answer to a callback.
type CallbackReply struct {
	MsgSignature string `json:"msg_signature"`
	TimeStamp    string `json:"timeStamp"`
	Nonce        string `json:"nonce"`
	Encrypt      string `json:"encrypt"`
}

// Reply encrypts msg (DingTalk expects "success") into a reply with a
// millisecond timestamp and a 16-character alphanumeric nonce, as the
// official library does; some versions reject other nonce lengths.
func (c *CallbackCrypto) Reply(msg string) (CallbackReply, error) {
	nonce, err := c.nonce()
	if err != nil {
		return CallbackReply{}, err
	}
	ts := strconv.FormatInt(c.now().UnixMilli(), 10)
	enc, sig, err := c.Encrypt([]byte(msg), ts, nonce)
	if err != nil {
		return CallbackReply{}, err
	}
	return CallbackReply{MsgSignature: sig, TimeStamp: ts, Nonce: nonce, Encrypt: enc}, nil
}

// nonce draws nonceLen characters uniformly from nonceAlphabet, rejecting
// bytes ≥ 248 (4×62) to avoid modulo bias.
func (c *CallbackCrypto) nonce() (string, error) {
	out := make([]byte, 0, nonceLen)
	var b [2 * nonceLen]byte
	for len(out) < nonceLen {
		if _, err := io.ReadFull(c.rand(), b[:]); err != nil {
			return "", fmt.Errorf("dingtalk: callback nonce: %w", err)
		}
		for _, v := range b {
			if v < 248 && len(out) < nonceLen {
				out = append(out, nonceAlphabet[int(v)%len(nonceAlphabet)])
			}
		}
	}
	return string(out), nil
}

func (c *CallbackCrypto) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *CallbackCrypto) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// EventCheckURL is the event DingTalk sends to validate a callback URL.
const EventCheckURL = "check_url"

// Event is a decrypted HTTP callback event (§7.5). Events carry ids only;
// read details with User or Department.
type Event struct {
	// Type is the EventType, e.g. user_add_org, user_leave_org.
	Type   string
	CorpID string
	// EventID identifies the event for de-duplication; newer payloads only.
	EventID string
	// UserIDs are set by user_* events, DeptIDs by org_dept_* events.
	UserIDs []string
	DeptIDs []int64
	// Time is the TimeStamp (or EventTime) of the event; zero if absent.
	Time time.Time
	// Raw is the whole decrypted payload.
	Raw json.RawMessage
}

// ParseEvent decodes a decrypted callback payload. Key case varies between
// real payloads and the docs (UserId/userId, TimeStamp/timeStamp), so keys
// match case-insensitively, as encoding/json does.
func ParseEvent(plaintext []byte) (Event, error) {
	var raw struct {
		EventType string     `json:"EventType"`
		CorpID    flexString `json:"CorpId"`
		EventID   flexString `json:"eventId"`
		UserID    stringList `json:"UserId"`
		DeptID    int64List  `json:"DeptId"`
		TimeStamp flexString `json:"TimeStamp"`
		EventTime flexString `json:"EventTime"`
	}
	if err := json.Unmarshal(plaintext, &raw); err != nil {
		return Event{}, fmt.Errorf("dingtalk: decode event: %w", err)
	}
	if raw.EventType == "" {
		return Event{}, errors.New("dingtalk: event has no EventType")
	}
	return Event{
		Type:    raw.EventType,
		CorpID:  string(raw.CorpID),
		EventID: string(raw.EventID),
		UserIDs: raw.UserID,
		DeptIDs: raw.DeptID,
		Time:    parseEventTime(firstNonEmpty(string(raw.TimeStamp), string(raw.EventTime))),
		Raw:     json.RawMessage(slices.Clone(plaintext)),
	}, nil
}

// parseEventTime reads a Unix time in milliseconds, or in seconds for values
// too small to be milliseconds (DingTalk uses both).
func parseEventTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	if n < 100_000_000_000 { // before 1973 in ms: must be seconds
		return time.Unix(n, 0)
	}
	return time.UnixMilli(n)
}

// stringList decodes an array of ids (or a single id) and ignores other
// shapes, such as the user snapshots ISV apps receive, instead of failing
// the whole event.
type stringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *stringList) UnmarshalJSON(b []byte) error {
	var items []flexString
	if err := json.Unmarshal(b, &items); err != nil {
		var one flexString
		_ = json.Unmarshal(b, &one)
		if one != "" {
			*l = stringList{string(one)}
		}
		return nil
	}
	for _, it := range items {
		if it != "" {
			*l = append(*l, string(it))
		}
	}
	return nil
}

// int64List decodes an array of department ids given as numbers or numeric
// strings, skipping anything else.
type int64List []int64

// UnmarshalJSON implements json.Unmarshaler.
func (l *int64List) UnmarshalJSON(b []byte) error {
	var items stringList
	_ = items.UnmarshalJSON(b)
	for _, s := range items {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			*l = append(*l, n)
		}
	}
	return nil
}

// NewCallbackHandler returns the http.Handler for DingTalk's HTTP event push.
// It verifies and decrypts each POST, answers check_url at once, passes other
// events to handle and replies with the encrypted "success" DingTalk
// requires. A forged or undecryptable request gets 403 without details; an
// error from handle gets 500 so that DingTalk retries. handle may be nil;
// a nil crypto is a programming error and panics.
func NewCallbackHandler(crypto *CallbackCrypto, handle func(context.Context, Event) error, logger *slog.Logger) http.Handler {
	if crypto == nil {
		panic("dingtalk: NewCallbackHandler: nil crypto")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &callbackHandler{crypto: crypto, handle: handle, log: logger}
}

type callbackHandler struct {
	crypto *CallbackCrypto
	handle func(context.Context, Event) error
	log    *slog.Logger
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var body struct {
		Encrypt string `json:"encrypt"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCallbackBody)).Decode(&body); err != nil || body.Encrypt == "" {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	// Parameter names differ between DingTalk's docs and SDKs.
	q := r.URL.Query()
	plain, err := h.crypto.Decrypt(
		firstNonEmpty(q.Get("msg_signature"), q.Get("signature")),
		firstNonEmpty(q.Get("timestamp"), q.Get("timeStamp")),
		q.Get("nonce"),
		body.Encrypt,
	)
	if err != nil {
		h.log.WarnContext(ctx, "dingtalk callback rejected", slog.String("reason", err.Error()))
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	ev, err := ParseEvent(plain)
	if err != nil {
		h.log.WarnContext(ctx, "dingtalk callback unreadable", slog.String("reason", err.Error()))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if ev.Type != EventCheckURL && h.handle != nil {
		if err := h.handle(ctx, ev); err != nil {
			h.log.ErrorContext(ctx, "dingtalk callback handling failed",
				slog.String("event_type", ev.Type), slog.String("event_id", ev.EventID), slog.Any("error", err))
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		}
	}
	reply, err := h.crypto.Reply("success")
	if err != nil {
		h.log.ErrorContext(ctx, "dingtalk callback reply failed", slog.Any("error", err))
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}
