package dingtalk

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// callbackVector is one of the official vectors in testdata/callback_vectors.json.
type callbackVector struct {
	Token     string `json:"token"`
	AESKey    string `json:"aes_key"`
	OwnerKey  string `json:"owner_key"`
	Timestamp string `json:"timestamp"`
	Nonce     string `json:"nonce"`
	Signature string `json:"signature"`
	Encrypt   string `json:"encrypt"`
	Plaintext string `json:"plaintext"`
}

func loadVectors(t *testing.T) []callbackVector {
	t.Helper()
	var vs []callbackVector
	if err := json.Unmarshal(readTestdata(t, "callback_vectors.json"), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("got %d vectors, want 3", len(vs))
	}
	return vs
}

func TestCallbackVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			c, err := NewCallbackCrypto(v.Token, v.AESKey, v.OwnerKey)
			if err != nil {
				t.Fatalf("NewCallbackCrypto: %v", err)
			}
			if got := c.signature(v.Timestamp, v.Nonce, v.Encrypt); got != v.Signature {
				t.Errorf("signature = %s, want %s", got, v.Signature)
			}
			got, err := c.Decrypt(v.Signature, v.Timestamp, v.Nonce, v.Encrypt)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if string(got) != v.Plaintext {
				t.Errorf("plaintext = %q, want %q", got, v.Plaintext)
			}
		})
	}
}

func TestCallbackVectorsCheckOwnerKey(t *testing.T) {
	for i, v := range loadVectors(t) {
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			c, err := NewCallbackCrypto(v.Token, v.AESKey, v.OwnerKey+"x")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Decrypt(v.Signature, v.Timestamp, v.Nonce, v.Encrypt)
			checkIs(t, err, ErrOwnerKeyMismatch)
		})
	}
}

func TestCallbackDecryptRejects(t *testing.T) {
	v := loadVectors(t)[1]
	c, err := NewCallbackCrypto(v.Token, v.AESKey, v.OwnerKey)
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(v.Encrypt)
	flipped[10] ^= 'A' ^ 'B'
	raw, _ := base64.StdEncoding.DecodeString(v.Encrypt)
	truncated := base64.StdEncoding.EncodeToString(raw[:len(raw)-aes.BlockSize])
	resigned := func(enc string) string { return c.signature(v.Timestamp, v.Nonce, enc) }
	tests := []struct {
		name                          string
		signature, timestamp, encrypt string
		target                        error
	}{
		{"wrong signature", strings.Repeat("0", 40), v.Timestamp, v.Encrypt, ErrBadSignature},
		{"empty signature", "", v.Timestamp, v.Encrypt, ErrBadSignature},
		{"other timestamp", v.Signature, "1605695694142", v.Encrypt, ErrBadSignature},
		{"tampered ciphertext", v.Signature, v.Timestamp, string(flipped), ErrBadSignature},
		{"truncated and re-signed", resigned(truncated), v.Timestamp, truncated, ErrBadCiphertext},
		{"not base64", resigned("!!!"), v.Timestamp, "!!!", ErrBadCiphertext},
		{"partial block", resigned("AAAA"), v.Timestamp, "AAAA", ErrBadCiphertext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Decrypt(tt.signature, tt.timestamp, v.Nonce, tt.encrypt)
			if err == nil {
				t.Fatal("Decrypt succeeded, want an error")
			}
			checkIs(t, err, tt.target)
		})
	}
}

func TestCallbackSignatureCaseInsensitive(t *testing.T) {
	v := loadVectors(t)[0]
	c, err := NewCallbackCrypto(v.Token, v.AESKey, v.OwnerKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(strings.ToUpper(v.Signature), v.Timestamp, v.Nonce, v.Encrypt); err != nil {
		t.Errorf("Decrypt with upper-case signature: %v", err)
	}
}

func newTestCrypto(t *testing.T) *CallbackCrypto {
	t.Helper()
	c, err := NewCallbackCrypto("tokenxxxx", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", testAppKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCallbackRoundTrip(t *testing.T) {
	c := newTestCrypto(t)
	for _, n := range []int{0, 1, 7, 11, 12, 31, 32, 33, 100, 4096} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			msg := bytes.Repeat([]byte("事"), n)[:n]
			enc, sig, err := c.Encrypt(msg, "1614767836", "A7Co0cJLMzIDtMMI")
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			raw, _ := base64.StdEncoding.DecodeString(enc)
			if len(raw)%callbackPadBlock != 0 {
				t.Errorf("ciphertext length %d, want a multiple of %d", len(raw), callbackPadBlock)
			}
			got, err := c.Decrypt(sig, "1614767836", "A7Co0cJLMzIDtMMI", enc)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Errorf("round trip = %q, want %q", got, msg)
			}
		})
	}
}

func TestCallbackAcceptsPaddingTo16(t *testing.T) {
	// The official Go sample pads to 16 bytes; such messages must decrypt.
	const aesKey = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus"
	c := newTestCrypto(t)
	key, _ := base64.StdEncoding.DecodeString(aesKey + "=")
	buf := make([]byte, 20, 64)
	binary.BigEndian.PutUint32(buf[16:], uint32(len("success")))
	buf = append(buf, "success"...)
	buf = append(buf, testAppKey...)
	pad := 16 - len(buf)%16
	buf = append(buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(buf, buf)
	enc := base64.StdEncoding.EncodeToString(buf)

	got, err := c.Decrypt(c.signature("1", "n", enc), "1", "n", enc)
	if err != nil || string(got) != "success" {
		t.Errorf("Decrypt = %q, %v, want success, nil", got, err)
	}
}

func TestNewCallbackCryptoErrors(t *testing.T) {
	tests := []struct {
		name                    string
		token, aesKey, ownerKey string
		want                    []string
	}{
		{"short aes key", "t", "abc", "o", []string{"aes key: must be 43 characters"}},
		{"aes key not base64", "t", strings.Repeat("!", 43), "o", []string{"aes key: not base64"}},
		{"everything missing", "", "", "", []string{"token: required", "owner key: required", "aes key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCallbackCrypto(tt.token, tt.aesKey, tt.ownerKey)
			if err == nil {
				t.Fatal("NewCallbackCrypto succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// countingReader yields 0, 1, 2, … so that test output is deterministic.
type countingReader struct {
	mu sync.Mutex
	n  byte
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9]{16}$`)

func TestCallbackReply(t *testing.T) {
	c := newTestCrypto(t)
	c.Rand = &countingReader{n: 240} // crosses 248 to exercise rejection
	c.Now = func() time.Time { return time.UnixMilli(1783610513123) }
	r, err := c.Reply("success")
	if err != nil {
		t.Fatalf("Reply: %v", err)
	}
	if r.TimeStamp != "1783610513123" {
		t.Errorf("TimeStamp = %q, want 1783610513123", r.TimeStamp)
	}
	if !nonceRE.MatchString(r.Nonce) {
		t.Errorf("Nonce = %q, want 16 alphanumerics", r.Nonce)
	}
	got, err := c.Decrypt(r.MsgSignature, r.TimeStamp, r.Nonce, r.Encrypt)
	if err != nil || string(got) != "success" {
		t.Errorf("decrypted reply = %q, %v, want success, nil", got, err)
	}
	b, _ := json.Marshal(r)
	for _, key := range []string{`"msg_signature"`, `"timeStamp"`, `"nonce"`, `"encrypt"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("reply JSON %s has no %s", b, key)
		}
	}
}

func TestCallbackRandFailure(t *testing.T) {
	c := newTestCrypto(t)
	c.Rand = iotest{}
	if _, err := c.Reply("success"); err == nil {
		t.Error("Reply succeeded with a failing random source, want an error")
	}
}

type iotest struct{}

func (iotest) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Event
	}{
		{
			name:    "capitalised keys",
			payload: `{"EventType":"user_add_org","CorpId":"dingc7c5","UserId":["184919295227658120"],"OptStaffId":"manager164","TimeStamp":"1640921671286"}`,
			want:    Event{Type: "user_add_org", CorpID: "dingc7c5", UserIDs: []string{"184919295227658120"}, Time: time.UnixMilli(1640921671286)},
		},
		{
			name:    "current doc form",
			payload: `{"EventType":"user_leave_org","EventTime":1663143335567,"CorpId":"ding1","BizId":"b","eventId":"c7c7","timeStamp":"1685501863357","userId":["015xxxx227"]}`,
			want:    Event{Type: "user_leave_org", CorpID: "ding1", EventID: "c7c7", UserIDs: []string{"015xxxx227"}, Time: time.UnixMilli(1685501863357)},
		},
		{
			name:    "lower-case corpId and EventTime only",
			payload: `{"EventType":"user_modify_org","corpId":"ding2","EventTime":1663143335567,"userId":["a","b"]}`,
			want:    Event{Type: "user_modify_org", CorpID: "ding2", UserIDs: []string{"a", "b"}, Time: time.UnixMilli(1663143335567)},
		},
		{
			name:    "department ids as numbers and strings",
			payload: `{"EventType":"org_dept_create","CorpId":"ding3","DeptId":[581208264,"432825033"],"TimeStamp":"1614767836"}`,
			want:    Event{Type: "org_dept_create", CorpID: "ding3", DeptIDs: []int64{581208264, 432825033}, Time: time.Unix(1614767836, 0)},
		},
		{
			name:    "lower-case deptId",
			payload: `{"EventType":"org_dept_remove","deptId":[700000001]}`,
			want:    Event{Type: "org_dept_remove", DeptIDs: []int64{700000001}},
		},
		{
			name:    "user snapshots are left in Raw",
			payload: `{"EventType":"user_modify_org","UserId":[{"userid":"x"}]}`,
			want:    Event{Type: "user_modify_org"},
		},
		{
			name:    "single user id as a string",
			payload: `{"EventType":"user_active_org","UserId":"184919295227658120"}`,
			want:    Event{Type: "user_active_org", UserIDs: []string{"184919295227658120"}},
		},
		{
			name:    "check_url",
			payload: `{"EventType":"check_url"}`,
			want:    Event{Type: EventCheckURL},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.payload))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if string(got.Raw) != tt.payload {
				t.Errorf("Raw = %s, want the payload", got.Raw)
			}
			got.Raw = nil
			if !eventsEqual(got, tt.want) {
				t.Errorf("Event = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func eventsEqual(a, b Event) bool {
	return a.Type == b.Type && a.CorpID == b.CorpID && a.EventID == b.EventID && a.Time.Equal(b.Time) &&
		strings.Join(a.UserIDs, ",") == strings.Join(b.UserIDs, ",") &&
		len(a.DeptIDs) == len(b.DeptIDs) && (len(a.DeptIDs) == 0 || a.DeptIDs[0] == b.DeptIDs[0] && a.DeptIDs[len(a.DeptIDs)-1] == b.DeptIDs[len(b.DeptIDs)-1])
}

func TestParseEventErrors(t *testing.T) {
	for _, payload := range []string{`not json`, `{"CorpId":"ding"}`, `[]`} {
		t.Run(payload, func(t *testing.T) {
			if _, err := ParseEvent([]byte(payload)); err == nil {
				t.Errorf("ParseEvent(%s) succeeded, want an error", payload)
			}
		})
	}
}

// pushEvent builds a request as DingTalk sends it, encrypted with c.
func pushEvent(t *testing.T, c *CallbackCrypto, payload string, params func(sig, ts, nonce string) url.Values) *http.Request {
	t.Helper()
	const ts, nonce = "1445827045067", "nEXhMP4r"
	enc, sig, err := c.Encrypt([]byte(payload), ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"encrypt": enc})
	if params == nil {
		params = func(sig, ts, nonce string) url.Values {
			return url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
		}
	}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/dingtalk/events?"+params(sig, ts, nonce).Encode(), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestCallbackHandler(t *testing.T) {
	c := newTestCrypto(t)
	handleErr := errors.New("database down")
	tests := []struct {
		name       string
		req        func(t *testing.T) *http.Request
		handleErr  error
		wantStatus int
		wantEvent  string // EventType passed to handle; "" means handle is not called
		wantReply  bool
	}{
		{
			name:       "check_url is answered without the handler",
			req:        func(t *testing.T) *http.Request { return pushEvent(t, c, `{"EventType":"check_url"}`, nil) },
			wantStatus: http.StatusOK, wantReply: true,
		},
		{
			name: "event reaches the handler",
			req: func(t *testing.T) *http.Request {
				return pushEvent(t, c, `{"EventType":"user_leave_org","CorpId":"ding1","UserId":["184919295227658120"]}`, nil)
			},
			wantStatus: http.StatusOK, wantEvent: "user_leave_org", wantReply: true,
		},
		{
			name: "msg_signature and timeStamp spellings",
			req: func(t *testing.T) *http.Request {
				return pushEvent(t, c, `{"EventType":"user_add_org","userId":["a"]}`, func(sig, ts, nonce string) url.Values {
					return url.Values{"msg_signature": {sig}, "timeStamp": {ts}, "nonce": {nonce}}
				})
			},
			wantStatus: http.StatusOK, wantEvent: "user_add_org", wantReply: true,
		},
		{
			name: "handler error makes DingTalk retry",
			req: func(t *testing.T) *http.Request {
				return pushEvent(t, c, `{"EventType":"user_add_org","UserId":["a"]}`, nil)
			},
			handleErr:  handleErr,
			wantStatus: http.StatusInternalServerError, wantEvent: "user_add_org",
		},
		{
			name: "bad signature",
			req: func(t *testing.T) *http.Request {
				return pushEvent(t, c, `{"EventType":"user_add_org"}`, func(_, ts, nonce string) url.Values {
					return url.Values{"signature": {strings.Repeat("a", 40)}, "timestamp": {ts}, "nonce": {nonce}}
				})
			},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "other owner key",
			req: func(t *testing.T) *http.Request {
				other, err := NewCallbackCrypto("tokenxxxx", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingothercorp")
				if err != nil {
					t.Fatal(err)
				}
				return pushEvent(t, other, `{"EventType":"user_add_org"}`, nil)
			},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "GET",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/dingtalk/events", nil)
			},
			wantStatus: http.StatusMethodNotAllowed,
		},
		{
			name: "not json",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/dingtalk/events", strings.NewReader("encrypt=x"))
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "body too large",
			req: func(t *testing.T) *http.Request {
				body := `{"encrypt":"` + strings.Repeat("A", maxCallbackBody) + `"}`
				return httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/dingtalk/events", strings.NewReader(body))
			},
			wantStatus: http.StatusRequestEntityTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Event
			handle := func(_ context.Context, ev Event) error {
				got = append(got, ev)
				return tt.handleErr
			}
			var logs bytes.Buffer
			h := NewCallbackHandler(c, handle, slog.New(slog.NewTextHandler(&logs, nil)))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req(t))

			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", w.Code, tt.wantStatus, w.Body)
			}
			switch {
			case tt.wantEvent == "" && len(got) != 0:
				t.Errorf("handler got %+v, want no call", got)
			case tt.wantEvent != "" && (len(got) != 1 || got[0].Type != tt.wantEvent):
				t.Errorf("handler got %+v, want one %s event", got, tt.wantEvent)
			}
			if tt.wantReply {
				var reply CallbackReply
				if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil {
					t.Fatalf("reply %q: %v", w.Body, err)
				}
				plain, err := c.Decrypt(reply.MsgSignature, reply.TimeStamp, reply.Nonce, reply.Encrypt)
				if err != nil || string(plain) != "success" {
					t.Errorf("reply decrypts to %q, %v, want success", plain, err)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
			}
			if tt.wantStatus == http.StatusForbidden && strings.TrimSpace(w.Body.String()) != "forbidden" {
				t.Errorf("403 body = %q, want only \"forbidden\"", w.Body)
			}
			if strings.Contains(logs.String(), "tokenxxxx") {
				t.Errorf("log %q contains the callback token", &logs)
			}
		})
	}
}

func TestCallbackHandlerUserEvent(t *testing.T) {
	c := newTestCrypto(t)
	var got Event
	h := NewCallbackHandler(c, func(_ context.Context, ev Event) error { got = ev; return nil }, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, pushEvent(t, c, `{"EventType":"user_leave_org","CorpId":"ding1","UserId":["184919295227658120"],"TimeStamp":"1640921671286"}`, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", w.Code)
	}
	want := Event{Type: "user_leave_org", CorpID: "ding1", UserIDs: []string{"184919295227658120"}, Time: time.UnixMilli(1640921671286)}
	if !eventsEqual(got, want) {
		t.Errorf("Event = %+v, want %+v", got, want)
	}
}
