package fake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// receiver is a subscriber's HTTP callback, written with the package's
// own crypto: it verifies and decrypts pushes and answers as §7.2 says,
// unless reply overrides the answer.
type receiver struct {
	t      *testing.T
	cipher *callbackCipher

	mu     sync.Mutex
	events []map[string]any
	reply  func(w http.ResponseWriter)
}

// setReply overrides the answer; nil restores the correct one.
func (rc *receiver) setReply(reply func(w http.ResponseWriter)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reply = reply
}

// received returns the events so far.
func (rc *receiver) received() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.events)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body struct {
		Encrypt string `json:"encrypt"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		rc.t.Errorf("push body: %v", err)
	}
	if got := rc.cipher.signature(q.Get("timestamp"), q.Get("nonce"), body.Encrypt); got != q.Get("signature") {
		rc.t.Errorf("push signature = %s, want %s", q.Get("signature"), got)
	}
	plain, err := rc.cipher.decrypt(body.Encrypt)
	if err != nil {
		rc.t.Errorf("decrypt push: %v", err)
	}
	var event map[string]any
	if err := json.Unmarshal([]byte(plain), &event); err != nil {
		rc.t.Errorf("push plaintext %q: %v", plain, err)
	}
	rc.mu.Lock()
	rc.events = append(rc.events, event)
	reply := rc.reply
	rc.mu.Unlock()
	if reply != nil {
		reply(w)
		return
	}
	writeJSON(w, http.StatusOK, rc.success("success"))
}

// success builds a reply carrying msg, encrypted and signed.
func (rc *receiver) success(msg string) pushReply {
	enc, err := rc.cipher.encrypt(msg)
	if err != nil {
		rc.t.Fatal(err)
	}
	ts, nonce := "1783610513000", randomFrom(alnum, 16)
	return pushReply{MsgSignature: rc.cipher.signature(ts, nonce, enc), TimeStamp: ts, Nonce: nonce, Encrypt: enc}
}

func newReceiver(t *testing.T, ownerKey string) (*receiver, string) {
	t.Helper()
	c, err := newCallbackCipher("demotoken1", "dingbridgeDemoCallbackAesKeyForCorpNumber01", ownerKey)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, cipher: c}
	ts := httptest.NewServer(rc)
	t.Cleanup(ts.Close)
	return rc, ts.URL + "/dingtalk/events?tenant=1"
}

func TestPushEvent(t *testing.T) {
	e := newEnv(t, Options{})
	rc, url := newReceiver(t, DemoAppKey)
	if err := e.fake.PushEvent(t.Context(), url, DemoCorpID, "user_leave_org", []string{"184919295227658120"}); err != nil {
		t.Fatalf("PushEvent: %v", err)
	}
	events := rc.received()
	if len(events) != 1 {
		t.Fatalf("received %d events, want 1", len(events))
	}
	got := events[0]
	if got["EventType"] != "user_leave_org" || got["CorpId"] != DemoCorpID ||
		!slices.Equal(toStrings(got["UserId"]), []string{"184919295227658120"}) ||
		got["TimeStamp"] != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) || got["eventId"] == "" {
		t.Errorf("event = %v", got)
	}

	t.Run("check_url", func(t *testing.T) {
		if err := e.fake.PushEvent(t.Context(), url, DemoCorpID, "check_url", nil); err != nil {
			t.Fatalf("PushEvent: %v", err)
		}
		events := rc.received()
		if _, ok := events[len(events)-1]["UserId"]; ok {
			t.Error("check_url carries UserId")
		}
	})

	bad := []struct {
		name  string
		reply func(w http.ResponseWriter)
	}{
		{"plain success", func(w http.ResponseWriter) { w.Write([]byte("success")) }},
		{"status 500", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }},
		{"bad signature", func(w http.ResponseWriter) {
			r := rc.success("success")
			r.MsgSignature = "0000"
			writeJSON(w, http.StatusOK, r)
		}},
		{"not success", func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, rc.success("ok")) }},
		{"missing nonce", func(w http.ResponseWriter) {
			r := rc.success("success")
			r.Nonce = ""
			writeJSON(w, http.StatusOK, r)
		}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			rc.setReply(tt.reply)
			defer rc.setReply(nil)
			if err := e.fake.PushEvent(t.Context(), url, DemoCorpID, "user_add_org", []string{"zhangsan"}); err == nil {
				t.Error("PushEvent: err = nil, want an error")
			}
		})
	}

	t.Run("reply with another owner key", func(t *testing.T) {
		other, _ := newCallbackCipher("demotoken1", "dingbridgeDemoCallbackAesKeyForCorpNumber01", DemoCorpID)
		rc.setReply(func(w http.ResponseWriter) {
			enc, _ := other.encrypt("success")
			writeJSON(w, http.StatusOK, pushReply{MsgSignature: other.signature("1", "n", enc), TimeStamp: "1", Nonce: "n", Encrypt: enc})
		})
		defer rc.setReply(nil)
		if err := e.fake.PushEvent(t.Context(), url, DemoCorpID, "user_add_org", []string{"zhangsan"}); err == nil {
			t.Error("PushEvent: err = nil, want an error")
		}
	})
	t.Run("unknown corp", func(t *testing.T) {
		if err := e.fake.PushEvent(t.Context(), url, "dingnope", "user_add_org", nil); err == nil {
			t.Error("PushEvent: err = nil, want an error")
		}
	})
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
