package dingtalk

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func benchTestdata(b *testing.B, name string) []byte {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecodeUserGet is the client's classification and decoding of
// DingTalk's answer to /topapi/v2/user/get (testdata/user_get.json).
func BenchmarkDecodeUserGet(b *testing.B) {
	body := benchTestdata(b, "user_get.json")
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}}}
	r := request{family: oldAPI, method: http.MethodPost, path: "/topapi/v2/user/get"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var out struct {
			Result *User `json:"result"`
		}
		var res outcome
		if err := decodeResponse(r, resp, body, &out, &res); err != nil {
			b.Fatal(err)
		}
		if out.Result == nil || out.Result.UserID != testUserID {
			b.Fatalf("decoded %+v", out.Result)
		}
	}
}

// noLimit lets every call through at once.
type noLimit struct{}

func (noLimit) Wait(context.Context, string) (func(), error) { return func() {}, nil }

// BenchmarkClientUser is Client.User end to end over loopback HTTP, with
// the app token cached: request building, the round trip and decoding.
func BenchmarkClientUser(b *testing.B) {
	appToken, user := benchTestdata(b, "app_token.json"), benchTestdata(b, "user_get.json")
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.0/oauth2/accessToken", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(appToken)
	})
	mux.HandleFunc("/topapi/v2/user/get", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = w.Write(user)
	})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	c, err := New(Config{
		APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: "https://login.dingtalk.com",
		CorpID: testCorpID, AppKey: testAppKey, AppSecret: testAppSecret,
		HTTPClient: srv.Client(), Limiter: noLimit{},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		u, err := c.User(ctx, testUserID)
		if err != nil {
			b.Fatal(err)
		}
		if u.UserID != testUserID {
			b.Fatalf("user %q", u.UserID)
		}
	}
}
