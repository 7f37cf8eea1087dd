package idp

import (
	"context"
	"net/http"
	"sync"
)

// accountMemo remembers the accounts one request has read. A token request
// checks that the account is still active and then builds its claims from
// the same account; without the memo that is two reads of one row per
// request. It lives exactly as long as the request, so a disabled account
// is refused by the very next request, as before.
type accountMemo struct {
	mu sync.Mutex
	m  map[string]Account
}

type accountMemoKey struct{}

// withAccountMemo gives each request on next its own memo.
func withAccountMemo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		memo := &accountMemo{m: map[string]Account{}}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accountMemoKey{}, memo)))
	})
}

// account reads an account once per request (when the request has a memo).
func (s *storage) account(ctx context.Context, id string) (Account, error) {
	memo, _ := ctx.Value(accountMemoKey{}).(*accountMemo)
	if memo == nil {
		return s.accounts.Account(ctx, id)
	}
	memo.mu.Lock()
	defer memo.mu.Unlock()
	if acct, ok := memo.m[id]; ok {
		return acct, nil
	}
	acct, err := s.accounts.Account(ctx, id)
	if err == nil {
		memo.m[id] = acct
	}
	return acct, err
}
