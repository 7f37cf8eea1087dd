package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

// accountForm is the create form's fields, kept when it is shown again.
type accountForm struct {
	Username, DisplayName, Email, Phone, Groups string
}

type accountsData struct {
	Q        string
	After    string
	Accounts []mapping.Account
	Next     string
	Form     accountForm
}

// accounts lists accounts matching ?q, a page at a time.
func (s *Server) accounts(w http.ResponseWriter, r *http.Request) {
	s.renderAccounts(w, r, http.StatusOK, accountForm{}, "")
}

func (s *Server) renderAccounts(w http.ResponseWriter, r *http.Request, status int, form accountForm, errKey string) {
	q, after := r.URL.Query().Get("q"), r.URL.Query().Get("after")
	page, err := s.cfg.Store.SearchAccounts(r.Context(), mapping.Query{Text: q, After: after})
	p := s.newPage(r, "accounts", "accounts")
	if errors.Is(err, mapping.ErrInvalid) {
		p.Error = p.T["err_invalid_search"]
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	if errKey != "" {
		p.Error = p.T[errKey]
	}
	p.D = accountsData{Q: q, After: after, Accounts: page.Accounts, Next: page.Next, Form: form}
	s.render(w, r, status, "accounts", p)
}

// createAccount creates an account from the form.
func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	f := accountForm{
		Username: strings.TrimSpace(r.PostFormValue("username")), DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
		Email: strings.TrimSpace(r.PostFormValue("email")), Phone: strings.TrimSpace(r.PostFormValue("phone")),
		Groups: r.PostFormValue("groups"),
	}
	a, err := s.cfg.Store.CreateAccount(r.Context(), s.meta(r, adminFrom(r.Context()).Account.ID), mapping.Account{
		Username: f.Username, DisplayName: f.DisplayName, Email: f.Email, Phone: f.Phone, Groups: splitGroups(f.Groups),
	})
	if err != nil {
		status, key := s.mutationError(r, err)
		if status == http.StatusInternalServerError {
			s.internalError(w, r, err)
			return
		}
		s.renderAccounts(w, r, status, f, key)
		return
	}
	http.Redirect(w, r, s.path("/accounts/"+url.PathEscape(a.ID)+"?ok=ok_created"), http.StatusSeeOther)
}

func splitGroups(s string) []string {
	var out []string
	for _, g := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ' ' || r == '\n' }) {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

type accountData struct {
	Account    mapping.Account
	Identities []mapping.Binding
}

// account shows one account and its DingTalk identities.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a, err := s.cfg.Store.AccountByID(ctx, chi.URLParam(r, "id"))
	if errors.Is(err, mapping.ErrNotFound) {
		s.renderMessage(w, r, http.StatusNotFound, "err_not_found")
		return
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	bs, err := s.cfg.Store.BindingsByAccount(ctx, a.ID)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p := s.newPage(r, "accounts", "account")
	p.Title = a.Username
	p.D = accountData{Account: a, Identities: bs}
	s.render(w, r, http.StatusOK, "account", p)
}

// setDisabled disables or enables an account, if it has not changed since
// the page showing it was read.
func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	back := s.path("/accounts/" + url.PathEscape(id))
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	disabled := r.PostFormValue("disabled") == "true"
	cur, err := s.cfg.Store.AccountByID(ctx, id)
	if err == nil && cur.Version != version {
		err = &mapping.ConflictError{Reason: mapping.ConflictStale, Version: cur.Version}
	}
	if err == nil {
		_, err = s.cfg.Store.SetAccountDisabled(ctx, s.meta(r, adminFrom(ctx).Account.ID), id, disabled)
	}
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	ok := "ok_enabled"
	if disabled {
		ok = "ok_disabled"
	}
	http.Redirect(w, r, back+"?ok="+ok, http.StatusSeeOther)
}

// unlink removes one identity's link, at the version the page showed.
func (s *Server) unlink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := s.path("/accounts/" + url.PathEscape(chi.URLParam(r, "id")))
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	k := mapping.Key{CorpID: r.PostFormValue("corp_id"), UserID: r.PostFormValue("user_id")}
	b, err := s.cfg.Store.Binding(ctx, k)
	if err == nil && b.AccountID != chi.URLParam(r, "id") {
		err = &mapping.ConflictError{Reason: mapping.ConflictStale, Version: b.Version}
	}
	if err == nil {
		_, err = s.cfg.Store.Unlink(ctx, s.meta(r, adminFrom(ctx).Account.ID), k, version)
	}
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	http.Redirect(w, r, back+"?ok=ok_unlinked", http.StatusSeeOther)
}

// mutationError turns a store error into a status and a message key.
func (s *Server) mutationError(r *http.Request, err error) (int, string) {
	var ce *mapping.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Reason == mapping.ConflictStale:
		return http.StatusConflict, "err_stale"
	case errors.As(err, &ce) && ce.Reason == mapping.ConflictUsernameTaken:
		return http.StatusConflict, "err_username_taken"
	case errors.As(err, &ce) && ce.Reason == mapping.ConflictRequestDecided:
		return http.StatusConflict, "err_decided"
	case errors.Is(err, mapping.ErrConflict):
		return http.StatusConflict, "err_conflict"
	case errors.Is(err, mapping.ErrInvalid):
		return http.StatusBadRequest, "err_invalid"
	case errors.Is(err, mapping.ErrNotFound):
		return http.StatusNotFound, "err_gone"
	}
	s.log.ErrorContext(r.Context(), "admin: change failed", "err", err, "path", r.URL.Path)
	return http.StatusInternalServerError, "err_unavailable"
}

// redirectError goes back to the page with a message saying why the change
// did not happen.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, back string, err error) {
	_, key := s.mutationError(r, err)
	http.Redirect(w, r, back+"?err="+key, http.StatusSeeOther)
}
