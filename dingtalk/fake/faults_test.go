package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	oldCall := func(e *env) response { return e.get("/gettoken?appkey=" + DemoAppKey + "&appsecret=" + DemoAppSecret) }
	newCall := func(e *env) response {
		return e.postJSON("/v1.0/oauth2/accessToken", map[string]string{"appKey": DemoAppKey, "appSecret": DemoAppSecret})
	}
	tests := []struct {
		name     string
		endpoint string
		fault    Fault
		call     func(*env) response
		check    func(*testing.T, response)
	}{
		{"HTTP 502 on old API", EndpointGetToken, Fault{HTTPStatus: 502}, oldCall, func(t *testing.T, r response) {
			if r.status != http.StatusBadGateway || !strings.Contains(string(r.body), "Tengine") {
				t.Errorf("status %d, body %s; want the gateway's 502 page", r.status, r.body)
			}
		}},
		{"HTTP 500 on new API", EndpointAppToken, Fault{HTTPStatus: 500}, newCall, func(t *testing.T, r response) {
			if r.status != http.StatusInternalServerError || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
			}
		}},
		{"errcode 90018 on old API", EndpointGetToken, Fault{Errcode: 90018}, oldCall, func(t *testing.T, r response) {
			checkOldError(t, r, 90018)
		}},
		{"errcode 90018 on new API", EndpointAppToken, Fault{Errcode: 90018}, newCall, func(t *testing.T, r response) {
			checkNewError(t, r, http.StatusForbidden, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
		}},
		{"errcode 90020 on new API", EndpointAppToken, Fault{Errcode: 90020}, newCall, func(t *testing.T, r response) {
			checkNewError(t, r, http.StatusForbidden, "Forbidden.AccessDenied.ApiCountLimitForOrg")
		}},
		{"errcode -1 on new API", EndpointAppToken, Fault{Errcode: -1}, newCall, func(t *testing.T, r response) {
			checkNewError(t, r, http.StatusInternalServerError, "server.error")
		}},
		{"punish page on old API", EndpointGetToken, Fault{PunishPage: true}, oldCall, func(t *testing.T, r response) {
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "punish") {
				t.Errorf("Content-Type %q, body %s; want the HTML punish page", r.header.Get("Content-Type"), r.body)
			}
		}},
		{"punish JSON on new API", EndpointAppToken, Fault{PunishPage: true}, newCall, func(t *testing.T, r response) {
			m := r.json(t)
			checkShape(t, m, map[string]string{"status": "number", "wait": "number", "source": "string", "punish": "string", "uuid": "string"})
			if m["punish"] != "deny" || m["status"] != json.Number("1111") {
				t.Errorf("body = %v", m)
			}
		}},
		{"truncated", EndpointAppToken, Fault{Truncated: true}, newCall, func(t *testing.T, r response) {
			if r.status != http.StatusOK || json.Valid(r.body) || !bytes.HasPrefix(r.body, []byte(`{"accessToken":`)) {
				t.Errorf("status %d, body %s; want 200 with half a JSON object", r.status, r.body)
			}
		}},
		{"oversize", EndpointUser, Fault{Oversize: true}, func(e *env) response { return e.postJSON("/topapi/v2/user/get", nil) },
			func(t *testing.T, r response) {
				if len(r.body) <= 1<<20 {
					t.Errorf("body is %d bytes, want > 1 MiB", len(r.body))
				}
				checkOldError(t, r, 88) // still the real answer, after the padding
			}},
		{"latency", EndpointGetToken, Fault{Latency: time.Millisecond}, oldCall, func(t *testing.T, r response) {
			checkOldOK(t, r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			e.fake.InjectFault(tt.endpoint, tt.fault)
			tt.check(t, tt.call(e))
			if got := e.fake.Calls(tt.endpoint); got != 1 {
				t.Errorf("Calls = %d, want 1", got)
			}
		})
	}
}

func TestFaultTimes(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.InjectFault(EndpointGetToken, Fault{Errcode: 90018, Times: 2})
	call := func() response { return e.get("/gettoken?appkey=" + DemoAppKey + "&appsecret=" + DemoAppSecret) }
	checkOldError(t, call(), 90018)
	checkOldError(t, call(), 90018)
	checkOldOK(t, call())

	e.fake.InjectFault(EndpointGetToken, Fault{Errcode: -1})
	for range 3 {
		checkOldError(t, call(), -1)
	}
	e.fake.ClearFaults()
	checkOldOK(t, call())
}

func TestFaultLatencyHonoursCancellation(t *testing.T) {
	t.Run("client gives up", func(t *testing.T) {
		e := newEnv(t, Options{})
		e.fake.InjectFault(EndpointAppToken, Fault{Latency: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1.0/oauth2/accessToken", strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		// The cleanup's httptest.Server.Close blocks unless the handler returned.
	})
	t.Run("handler returns on a done context", func(t *testing.T) {
		s := New(Options{})
		s.InjectFault(EndpointUser, Fault{Latency: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/topapi/v2/user/get", strings.NewReader(`{}`))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Body.Len() != 0 {
			t.Errorf("body = %q, want none", rec.Body)
		}
	})
}
