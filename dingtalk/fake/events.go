package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// pushEvent is the plaintext of an HTTP event push (§7.5, older casing).
type pushEvent struct {
	EventType string   `json:"EventType"`
	CorpID    string   `json:"CorpId"`
	UserID    []string `json:"UserId,omitempty"`
	TimeStamp string   `json:"TimeStamp"`
	EventID   string   `json:"eventId"`
}

// pushReply is what a subscriber must answer (§7.2).
type pushReply struct {
	MsgSignature string `json:"msg_signature"`
	TimeStamp    string `json:"timeStamp"`
	Nonce        string `json:"nonce"`
	Encrypt      string `json:"encrypt"`
}

// PushEvent sends one HTTP event push to callbackURL as DingTalk does for an
// internal app of corpID whose subscription was set up in the developer
// console: the event (e.g. "user_leave_org"; "check_url" for validation,
// with nil userIDs) is encrypted with the app's CallbackToken and
// CallbackAESKey, owner key = app key, and POSTed as {"encrypt"} with
// signature, timestamp and nonce in the query. The reply must be 200 with
// a valid msg_signature over an encrypted "success"; otherwise PushEvent
// returns an error. There are no retries.
func (s *Server) PushEvent(ctx context.Context, callbackURL, corpID, eventType string, userIDs []string) error {
	s.mu.Lock()
	var app App
	if corp := s.fixture.corp(corpID); corp != nil {
		for _, a := range corp.Apps {
			if a.CallbackToken != "" && a.CallbackAESKey != "" {
				app = a
				break
			}
		}
	}
	now := s.now()
	s.mu.Unlock()
	if app.AppKey == "" {
		return fmt.Errorf("push event: corp %q has no app with callback settings", corpID)
	}
	c, err := newCallbackCipher(app.CallbackToken, app.CallbackAESKey, app.AppKey)
	if err != nil {
		return fmt.Errorf("push event: %w", err)
	}

	timestamp := strconv.FormatInt(now.UnixMilli(), 10)
	plain, err := json.Marshal(pushEvent{
		EventType: eventType, CorpID: corpID, UserID: userIDs, TimeStamp: timestamp, EventID: randomHex(16),
	})
	if err != nil {
		return fmt.Errorf("push event: %w", err)
	}
	encrypted, err := c.encrypt(string(plain))
	if err != nil {
		return fmt.Errorf("push event: %w", err)
	}
	nonce := randomFrom(alnum, 8)
	target, err := signedURL(callbackURL, c.signature(timestamp, nonce, encrypted), timestamp, nonce)
	if err != nil {
		return fmt.Errorf("push event: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"encrypt": encrypted})

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push event: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("push event: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("push event: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push event: reply status %d", resp.StatusCode)
	}
	return checkPushReply(c, raw)
}

// signedURL adds the push query parameters to the subscriber's URL.
func signedURL(raw, signature, timestamp, nonce string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("callback url: %w", err)
	}
	q := u.Query()
	q.Set("signature", signature)
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// checkPushReply verifies a subscriber's reply as DingTalk does.
func checkPushReply(c *callbackCipher, raw []byte) error {
	var reply pushReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("push event: reply is not JSON: %w", err)
	}
	if reply.MsgSignature == "" || reply.TimeStamp == "" || reply.Nonce == "" || reply.Encrypt == "" {
		return fmt.Errorf("push event: reply lacks msg_signature, timeStamp, nonce or encrypt")
	}
	if c.signature(reply.TimeStamp, reply.Nonce, reply.Encrypt) != reply.MsgSignature {
		return fmt.Errorf("push event: reply msg_signature does not verify")
	}
	msg, err := c.decrypt(reply.Encrypt)
	if err != nil {
		return fmt.Errorf("push event: reply: %w", err)
	}
	if msg != "success" {
		return fmt.Errorf("push event: reply decrypts to %q, want \"success\"", msg)
	}
	return nil
}
