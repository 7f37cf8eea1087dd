package dingtalk

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
)

// A 403 permission error names the missing permission in
// accessdenieddetail.requiredScopes (shape as DingTalk returns it for
// users/me without Contact.User.Read); the client keeps it for the page
// that tells an administrator what to grant.
func TestPermissionDeniedNamesRequiredScopes(t *testing.T) {
	body, err := os.ReadFile("testdata/error_permission_denied.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c, err := New(Config{APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: srv.URL, AppKey: "k", AppSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(t.Context(), "user-token")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("Me = %v, want an *APIError matching ErrPermissionDenied", err)
	}
	if want := []string{"Contact.User.Read"}; !slices.Equal(apiErr.RequiredScopes, want) {
		t.Errorf("RequiredScopes = %v, want %v", apiErr.RequiredScopes, want)
	}
	if apiErr.RequestID != "5A8E2F0C-6B1D-4C3A-9E7F-1D2C3B4A5E6F" {
		t.Errorf("RequestID = %q", apiErr.RequestID)
	}
}
