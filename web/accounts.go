package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

// accountForm is the create form's fields, kept when it is shown again.
type accountForm struct {
	Username, DisplayName, Email, Phone, Groups string
}

type accountsData struct {
	Q        string
	Status   string // "", "enabled" or "disabled": kept across searches and pages
	Group    string // a group name, matched exactly; kept across searches and pages
	After    string
	Accounts []mapping.Account
	Next     string
	Form     accountForm
}

// accounts lists accounts matching ?q, a page at a time; ?status=enabled
// (or disabled) and ?group= narrow them.
func (s *Server) accounts(w http.ResponseWriter, r *http.Request) {
	s.renderAccounts(w, r, http.StatusOK, accountForm{}, "")
}

func (s *Server) renderAccounts(w http.ResponseWriter, r *http.Request, status int, form accountForm, errKey string) {
	v := r.URL.Query()
	q, after, st, group := v.Get("q"), v.Get("after"), v.Get("status"), v.Get("group")
	page, err := s.cfg.Store.SearchAccounts(r.Context(), mapping.Query{
		Text: q, After: after, Status: mapping.AccountStatus(st), Group: group,
	})
	p := s.newPage(r, "accounts", "accounts")
	var ve *mapping.ValidationError
	if errors.As(err, &ve) && ve.Field == "status" {
		p.Error, st = p.T["err_invalid_status"], ""
	} else if errors.As(err, &ve) && ve.Field == "group" {
		p.Error, group = p.T["err_invalid_group"], ""
	} else if errors.Is(err, mapping.ErrInvalid) {
		p.Error = p.T["err_invalid_search"]
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	if errKey != "" {
		p.Error = p.T[errKey]
	}
	if err != nil && status == http.StatusOK {
		status = http.StatusBadRequest
	}
	p.D = accountsData{Q: q, Status: st, Group: group, After: after, Accounts: page.Accounts, Next: page.Next, Form: form}
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

// accountEdit is the edit form's fields. Version is the version the form
// was filled from: the change is made only if nobody changed the account
// since.
type accountEdit struct {
	Username, DisplayName, Email, Phone, Groups string
	EmailVerified                               bool
	Version                                     int64
}

func editOf(a mapping.Account) accountEdit {
	return accountEdit{
		Username: a.Username, DisplayName: a.DisplayName, Email: a.Email, Phone: a.Phone,
		Groups: strings.Join(a.Groups, ", "), EmailVerified: a.EmailVerified, Version: a.Version,
	}
}

// staleField is one field of an edit that lost to someone else's change:
// what is stored now, and what the administrator typed.
type staleField struct {
	Field, Current, Yours string
}

// linkForm is the link form's fields, kept when it is shown again.
type linkForm struct {
	CorpID, UserID, UnionID string
}

// relinkOffer asks to move identity B from account From to account To.
// Back names the account page to return to: "from" or "to". Conflict: the
// offer answers a link refused because B is From's.
type relinkOffer struct {
	B        mapping.Binding
	From, To mapping.Account
	Back     string
	Conflict bool
}

// accountView is what the account page shows beyond the stored records:
// what an administrator typed, and questions that need a confirmed second
// step. Its zero value is the plain page.
type accountView struct {
	Edit    *accountEdit // nil: the account's current values
	Stale   *accountEdit // an edit refused because the account changed since
	Field   string       // the field a validation error names, marked in the form
	Link    linkForm
	Unknown *mapping.Key // asked to link an identity nobody has seen: confirm creating it
	Offer   *relinkOffer // a relink to confirm, asked for or offered after a refused link
}

type accountData struct {
	Account    mapping.Account
	Identities []mapping.Binding
	// Self: administrators looking at their own account are told that
	// leaving the admin groups ends their access.
	Self      bool
	Edit      accountEdit
	Stale     []staleField
	Field     string
	Link      linkForm
	Corps     []DingTalkCorp
	CorpNames map[string]string
	Unknown   *mapping.Key
	Offer     *relinkOffer
	SignIns   []historyEntry
	History   []historyEntry
}

// account shows one account, its DingTalk identities, their sign-ins and
// their audit trail. ?relink_corp, ?relink_user and ?to ask to move one of
// its identities to the account with username to: the page then shows
// the confirmation, naming both accounts.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	q := r.URL.Query()
	var v accountView
	errKey := ""
	if to := strings.TrimSpace(q.Get("to")); to != "" {
		k := mapping.Key{CorpID: q.Get("relink_corp"), UserID: q.Get("relink_user")}
		b, err := s.cfg.Store.Binding(ctx, k)
		if err == nil && b.AccountID != id {
			err = &mapping.ConflictError{Reason: mapping.ConflictStale, Version: b.Version}
		}
		var from, dest mapping.Account
		if err == nil {
			from, err = s.cfg.Store.AccountByID(ctx, id)
		}
		if err == nil {
			dest, err = s.cfg.Store.AccountByUsername(ctx, to)
			if errors.Is(err, mapping.ErrNotFound) {
				errKey = "err_no_account"
				err = nil
			}
		}
		switch {
		case err != nil:
			status, key := s.mutationError(r, err)
			if status == http.StatusInternalServerError {
				s.internalError(w, r, err)
				return
			}
			errKey = key
		case errKey != "":
		case dest.ID == id:
			errKey = "err_relink_same"
		default:
			v.Offer = &relinkOffer{B: b, From: from, To: dest, Back: "from"}
		}
	}
	s.renderAccount(w, r, http.StatusOK, id, v, errKey)
}

// renderAccount shows account id with v; errKey, when set, names the
// message saying why a change was not made.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, id string, v accountView, errKey string) {
	ctx := r.Context()
	a, err := s.cfg.Store.AccountByID(ctx, id)
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
	if errKey != "" {
		p.Error = p.T[errKey]
	}
	signIns, history, err := s.accountHistory(ctx, a, bs, p.T)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	d := accountData{
		Account: a, Identities: bs, Self: adminFrom(ctx).Account.ID == a.ID,
		Edit: editOf(a), Field: v.Field, Link: v.Link, Corps: s.cfg.DingTalkCorps, CorpNames: map[string]string{},
		Unknown: v.Unknown, Offer: v.Offer, SignIns: signIns, History: history,
	}
	for _, c := range s.cfg.DingTalkCorps {
		d.CorpNames[c.ID] = c.Name
	}
	if v.Edit != nil {
		d.Edit = *v.Edit
	}
	if v.Stale != nil {
		d.Stale = staleFields(p.T, editOf(a), *v.Stale)
	}
	p.D = d
	s.render(w, r, status, "account", p)
}

// staleFields lists the fields where what the administrator typed differs
// from what is stored now.
func staleFields(t map[string]string, cur, yours accountEdit) []staleField {
	yours.Groups = strings.Join(splitGroups(yours.Groups), ", ")
	var out []staleField
	for _, f := range []struct{ key, cur, yours string }{
		{"username", cur.Username, yours.Username},
		{"display_name", cur.DisplayName, yours.DisplayName},
		{"email", cur.Email, yours.Email},
		{"email_verified", strconv.FormatBool(cur.EmailVerified), strconv.FormatBool(yours.EmailVerified)},
		{"phone", cur.Phone, yours.Phone},
		{"groups", cur.Groups, yours.Groups},
	} {
		if f.cur != f.yours {
			out = append(out, staleField{Field: fieldLabel(t, f.key), Current: f.cur, Yours: f.yours})
		}
	}
	return out
}

// editAccount writes the edit form over the account, if nobody changed the
// account since the form was filled. Otherwise the page shows the account
// as it is now, with what the administrator typed beside it.
func (s *Server) editAccount(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	f := accountEdit{
		Username: strings.TrimSpace(r.PostFormValue("username")), DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
		Email: strings.TrimSpace(r.PostFormValue("email")), Phone: strings.TrimSpace(r.PostFormValue("phone")),
		Groups: r.PostFormValue("groups"), EmailVerified: r.PostFormValue("email_verified") == "true",
	}
	// A missing or malformed version is 0, which no account has: refused as stale.
	f.Version, _ = strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	a, err := s.cfg.Store.UpdateAccount(ctx, s.meta(r, adminFrom(ctx).Account.ID), mapping.Account{
		ID: id, Username: f.Username, DisplayName: f.DisplayName, Email: f.Email, EmailVerified: f.EmailVerified,
		Phone: f.Phone, Groups: splitGroups(f.Groups), Version: f.Version,
	})
	if err == nil {
		s.endConsoleSessionsUnlessAdmin(ctx, a)
		ok := "ok_saved"
		if a.Version == f.Version {
			ok = "ok_unchanged"
		}
		http.Redirect(w, r, s.path("/accounts/"+url.PathEscape(id)+"?ok="+ok), http.StatusSeeOther)
		return
	}
	status, key := s.mutationError(r, err)
	if status == http.StatusInternalServerError {
		s.internalError(w, r, err)
		return
	}
	v := accountView{Edit: &f}
	var ce *mapping.ConflictError
	var ve *mapping.ValidationError
	switch {
	case errors.As(err, &ce) && ce.Reason == mapping.ConflictStale:
		// The form starts again from the current values; the page's stale
		// notice, beside what was typed, is the message.
		v.Edit, v.Stale, key = nil, &f, ""
	case errors.As(err, &ve):
		v.Field, key = ve.Field, fieldError(ve.Field)
	case errors.As(err, &ce) && ce.Reason == mapping.ConflictUsernameTaken:
		v.Field = "username"
	}
	s.renderAccount(w, r, status, id, v, key)
}

// fieldError is the message key for a malformed field, or the general one.
func fieldError(field string) string {
	if _, ok := textZH["err_field_"+field]; ok {
		return "err_field_" + field
	}
	return "err_invalid"
}

// The shapes the mapping accepts for DingTalk ids (ADM-06). The link form
// checks them first, so that it can say which field is wrong before
// anything is looked up; TestLinkFieldsAgreeWithStore keeps them in step
// with the store, whose checks (and the database's) have the last word.
var (
	corpIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	userIDPattern  = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
	unionIDPattern = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{1,64}$`)
)

// checkLink returns the field of f that is wrong, or "".
func (s *Server) checkLink(f linkForm) string {
	switch {
	case len(s.cfg.DingTalkCorps) > 0 && !slices.ContainsFunc(s.cfg.DingTalkCorps, func(c DingTalkCorp) bool { return c.ID == f.CorpID }):
		return "corp_id" // link identities only inside a configured corp
	case !corpIDPattern.MatchString(f.CorpID):
		return "corp_id"
	case f.UserID == "" && f.UnionID == "", f.UserID != "" && f.UnionID != "":
		return "user_or_union"
	case f.UserID != "" && !userIDPattern.MatchString(f.UserID):
		return "user_id"
	case f.UnionID != "" && !unionIDPattern.MatchString(f.UnionID):
		return "union_id"
	}
	return ""
}

// link links a DingTalk identity, named by corp and userId or unionId, to
// the account. An identity linked to another account is refused, with an
// offer to move it here. An identity nobody has seen yet (never signed in,
// never imported) is created on a second, confirmed request: whoever has
// that userId in the corp will sign in as this account, so a typo must not
// slip through.
func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	f := linkForm{
		CorpID: strings.TrimSpace(r.PostFormValue("corp_id")), UserID: strings.TrimSpace(r.PostFormValue("user_id")),
		UnionID: strings.TrimSpace(r.PostFormValue("union_id")),
	}
	v := accountView{Link: f}
	if field := s.checkLink(f); field != "" {
		v.Field = "link_" + field
		s.renderAccount(w, r, http.StatusBadRequest, id, v, "err_field_"+field)
		return
	}
	if _, err := s.cfg.Store.AccountByID(ctx, id); err != nil {
		s.renderAccount(w, r, http.StatusNotFound, id, v, "") // the account page's own not-found
		return
	}
	meta := s.meta(r, adminFrom(ctx).Account.ID)
	var b mapping.Binding
	var err error
	k := mapping.Key{CorpID: f.CorpID, UserID: f.UserID}
	if f.UserID != "" {
		b, err = s.cfg.Store.Binding(ctx, k)
	} else if b, err = s.cfg.Store.BindingByUnionID(ctx, f.CorpID, f.UnionID); err == nil {
		k = b.Key()
	}
	switch {
	case errors.Is(err, mapping.ErrNotFound) && f.UserID == "":
		// A unionId alone cannot make an identity: its key is the userId.
		v.Field = "link_union_id"
		s.renderAccount(w, r, http.StatusNotFound, id, v, "err_union_unknown")
		return
	case errors.Is(err, mapping.ErrNotFound) && r.PostFormValue("create") != "yes":
		v.Unknown = &k
		s.renderAccount(w, r, http.StatusOK, id, v, "")
		return
	case errors.Is(err, mapping.ErrNotFound):
		_, err = s.cfg.Store.CreateBinding(ctx, meta, mapping.Binding{
			Identity: mapping.Identity{CorpID: k.CorpID, UserID: k.UserID}, AccountID: id, Source: mapping.SourceAdmin,
		})
	case err != nil:
	case b.AccountID == id:
		s.renderAccount(w, r, http.StatusConflict, id, v, "err_already_linked_here")
		return
	case b.Linked():
		err = &mapping.ConflictError{Reason: mapping.ConflictIdentityLinked, AccountID: b.AccountID}
	default:
		_, err = s.cfg.Store.Link(ctx, meta, k, id)
	}
	var ce *mapping.ConflictError
	if errors.As(err, &ce) && (ce.Reason == mapping.ConflictIdentityLinked || ce.Reason == mapping.ConflictIdentityExists) {
		// Linked elsewhere, possibly a moment ago by another administrator:
		// name that account and offer to move the identity here.
		s.renderLinkConflict(w, r, id, v, k)
		return
	}
	if err != nil {
		status, key := s.mutationError(r, err)
		if status == http.StatusInternalServerError {
			s.internalError(w, r, err)
			return
		}
		s.renderAccount(w, r, status, id, v, key)
		return
	}
	http.Redirect(w, r, s.path("/accounts/"+url.PathEscape(id)+"?ok=ok_linked"), http.StatusSeeOther)
}

// renderLinkConflict says that identity k is linked to another account,
// links to it, and offers to move the identity to account id (409, ADM-06).
func (s *Server) renderLinkConflict(w http.ResponseWriter, r *http.Request, id string, v accountView, k mapping.Key) {
	ctx := r.Context()
	b, err := s.cfg.Store.Binding(ctx, k)
	var from, to mapping.Account
	if err == nil && b.Linked() {
		from, err = s.cfg.Store.AccountByID(ctx, b.AccountID)
	}
	if err == nil {
		to, err = s.cfg.Store.AccountByID(ctx, id)
	}
	switch {
	case err != nil:
		s.internalError(w, r, err)
		return
	case b.AccountID == id:
		s.renderAccount(w, r, http.StatusConflict, id, v, "err_already_linked_here")
		return
	case !b.Linked(): // unlinked again since: say so, and let the administrator try again
		s.renderAccount(w, r, http.StatusConflict, id, v, "err_stale")
		return
	}
	v.Offer = &relinkOffer{B: b, From: from, To: to, Back: "to", Conflict: true}
	s.renderAccount(w, r, http.StatusConflict, id, v, "err_linked_elsewhere")
}

// relink moves one of the account's identities to the account named by
// username ?to, at the identity's version the confirmation showed.
func (s *Server) relink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	back := s.path("/accounts/" + url.PathEscape(id))
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	k := mapping.Key{CorpID: r.PostFormValue("corp_id"), UserID: r.PostFormValue("user_id")}
	to, err := s.cfg.Store.AccountByUsername(ctx, strings.TrimSpace(r.PostFormValue("to")))
	if errors.Is(err, mapping.ErrNotFound) {
		http.Redirect(w, r, back+"?err=err_no_account", http.StatusSeeOther)
		return
	}
	if err == nil && r.PostFormValue("back") == "to" {
		back = s.path("/accounts/" + url.PathEscape(to.ID))
	}
	var b mapping.Binding
	if err == nil {
		b, err = s.cfg.Store.Binding(ctx, k)
	}
	if err == nil && b.AccountID != id {
		err = &mapping.ConflictError{Reason: mapping.ConflictStale, Version: b.Version}
	}
	if err == nil && to.ID == id {
		http.Redirect(w, r, back+"?err=err_relink_same", http.StatusSeeOther)
		return
	}
	if err == nil {
		_, err = s.cfg.Store.Relink(ctx, s.meta(r, adminFrom(ctx).Account.ID), k, to.ID, version)
	}
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	s.endIdentitySessions(ctx, k, b.AccountID)
	http.Redirect(w, r, back+"?ok=ok_relinked", http.StatusSeeOther)
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
		cur, err = s.cfg.Store.SetAccountDisabled(ctx, s.meta(r, adminFrom(ctx).Account.ID), id, disabled)
	}
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	s.endConsoleSessionsUnlessAdmin(ctx, cur)
	ok := "ok_enabled"
	if disabled {
		ok = "ok_disabled"
	}
	http.Redirect(w, r, back+"?ok="+ok, http.StatusSeeOther)
}

// setIdentityDisabled disables or enables one of the account's identities,
// if it has not changed since the page showing it was read.
func (s *Server) setIdentityDisabled(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	back := s.path("/accounts/" + url.PathEscape(id))
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	disabled := r.PostFormValue("disabled") == "true"
	k := mapping.Key{CorpID: r.PostFormValue("corp_id"), UserID: r.PostFormValue("user_id")}
	b, err := s.cfg.Store.Binding(ctx, k)
	if err == nil && (b.AccountID != id || b.Version != version) {
		err = &mapping.ConflictError{Reason: mapping.ConflictStale, Version: b.Version}
	}
	if err == nil {
		_, err = s.cfg.Store.SetBindingDisabled(ctx, s.meta(r, adminFrom(ctx).Account.ID), k, disabled)
	}
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	if disabled {
		s.endIdentitySessions(ctx, k, b.AccountID)
	}
	ok := "ok_identity_enabled"
	if disabled {
		ok = "ok_identity_disabled"
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
	s.endIdentitySessions(ctx, k, b.AccountID)
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

// How much history the account page shows; the audit page has the rest.
const (
	accountEventLimit  = 50 // the account's own events read
	identityEventLimit = 20 // each identity's events read
	historyLimit       = 50 // changes shown
	signInLimit        = 20 // sign-in events shown
)

// historyEntry is an audit row as the account page shows it, every text
// in the page's language, so that one template shows it whole.
type historyEntry struct {
	At        time.Time
	Actor     string // the acting account's username, else the actor as recorded ("system", "import")
	ActorHref string // the acting account's page, when the actor is one
	Action    string // in the page's language, when known
	Target    string // "this account", or the identity's key
	IsAccount bool   // the target is the account itself
	Changes   []fieldChange
	ClientIP  string
	RequestID string
}

// fieldChange is one field an audit row changed (or, for a creation or an
// event, recorded). Values are plain text; the template escapes them.
type fieldChange struct {
	key                  string // the JSON field
	Field, Before, After string
	// BeforeHref and AfterHref are account pages when the field names an
	// account; Before and After then hold usernames.
	BeforeHref, AfterHref string
	// BeforeEmpty and AfterEmpty: the value was empty; Before or After
	// then says so in words.
	BeforeEmpty, AfterEmpty bool
}

// changeValue is one side of a fieldChange, as the template shows it.
type changeValue struct {
	Text, Href string
	Empty      bool
}

// BeforeValue is the value before the change.
func (c fieldChange) BeforeValue() changeValue {
	return changeValue{c.Before, c.BeforeHref, c.BeforeEmpty}
}

// AfterValue is the value after the change.
func (c fieldChange) AfterValue() changeValue { return changeValue{c.After, c.AfterHref, c.AfterEmpty} }

// isSignIn reports whether an audit action is a sign-in (or a refused one).
func isSignIn(action string) bool {
	return strings.HasPrefix(action, "signin.") || action == "admin.signin" || action == "admin.denied"
}

// accountHistory reads the audit rows of the account and of its identities,
// newest first, and splits them into sign-ins and changes.
func (s *Server) accountHistory(ctx context.Context, a mapping.Account, bs []mapping.Binding, t map[string]string) (signIns, changes []historyEntry, err error) {
	es, err := s.cfg.Store.AuditEvents(ctx, mapping.AuditQuery{TargetType: "account", TargetID: a.ID, Limit: accountEventLimit})
	if err != nil {
		return nil, nil, err
	}
	for _, b := range bs {
		more, err := s.cfg.Store.AuditEvents(ctx, mapping.AuditQuery{TargetType: "identity", TargetID: b.Key().String(), Limit: identityEventLimit})
		if err != nil {
			return nil, nil, err
		}
		es = append(es, more...)
	}
	slices.SortStableFunc(es, func(x, y mapping.AuditEvent) int {
		if c := y.At.Compare(x.At); c != 0 {
			return c
		}
		return cmp.Compare(y.ID, x.ID)
	})
	names := accountNames{s: s, ctx: ctx, byID: map[string]string{a.ID: a.Username}}
	for _, e := range es {
		h := historyEntry{
			At: e.At, Actor: e.Actor, Action: e.Action, RequestID: e.RequestID, Target: e.TargetID,
			Changes: fieldChanges(t, e.Before, e.After),
		}
		for i, c := range h.Changes {
			if n, ok := names.username(c.Before); ok && c.key == "account_id" {
				h.Changes[i].Before, h.Changes[i].BeforeHref = n, s.path("/accounts/"+url.PathEscape(c.Before))
			}
			if n, ok := names.username(c.After); ok && c.key == "account_id" {
				h.Changes[i].After, h.Changes[i].AfterHref = n, s.path("/accounts/"+url.PathEscape(c.After))
			}
			if c.Before == "" {
				h.Changes[i].Before, h.Changes[i].BeforeEmpty = t["empty_value"], true
			}
			if c.After == "" {
				h.Changes[i].After, h.Changes[i].AfterEmpty = t["empty_value"], true
			}
		}
		if label := t["action_"+e.Action]; label != "" {
			h.Action = label
		}
		if n, ok := names.username(e.Actor); ok {
			h.Actor, h.ActorHref = n, s.path("/accounts/"+url.PathEscape(e.Actor))
		}
		if e.TargetType == "account" {
			h.Target, h.IsAccount = t["this_account"], true
		}
		if e.ClientIP.IsValid() {
			h.ClientIP = e.ClientIP.String()
		}
		switch {
		case isSignIn(e.Action) && len(signIns) < signInLimit:
			signIns = append(signIns, h)
		case !isSignIn(e.Action) && len(changes) < historyLimit:
			changes = append(changes, h)
		}
	}
	return signIns, changes, nil
}

// accountNames looks up usernames of account ids, once each.
type accountNames struct {
	s    *Server
	ctx  context.Context
	byID map[string]string // "" for ids that are no account
}

func (n accountNames) username(id string) (string, bool) {
	if id == "" {
		return "", false
	}
	name, seen := n.byID[id]
	if !seen {
		if a, err := n.s.cfg.Store.AccountByID(n.ctx, id); err == nil {
			name = a.Username
		}
		n.byID[id] = name
	}
	return name, name != ""
}

// auditFieldOrder puts the fields people look for first; others follow by name.
var auditFieldOrder = []string{"username", "display_name", "email", "email_verified", "phone", "groups", "disabled",
	"account_id", "corp_id", "user_id", "union_id", "name"}

// fieldChanges lists the fields whose values differ between an audit row's
// before and after JSON objects (ids and versions left out). A creation
// lists the fields it set; a row that is not a JSON object shows as text.
func fieldChanges(t map[string]string, before, after []byte) []fieldChange {
	b, okB := auditObject(before)
	a, okA := auditObject(after)
	if !okB || !okA {
		return []fieldChange{{Before: string(before), After: string(after)}}
	}
	keys := map[string]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	delete(keys, "id")
	delete(keys, "version")
	var out []fieldChange
	add := func(k string) {
		bv, av := auditValue(b[k]), auditValue(a[k])
		if bv == av || (before == nil && (av == "" || av == "false")) {
			return
		}
		out = append(out, fieldChange{key: k, Field: fieldLabel(t, k), Before: bv, After: av})
	}
	for _, k := range auditFieldOrder {
		if keys[k] {
			add(k)
			delete(keys, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		add(k)
	}
	return out
}

// auditObject decodes an audit row's JSON object; nil is the empty object.
func auditObject(raw []byte) (map[string]any, bool) {
	m := map[string]any{}
	if raw == nil {
		return m, true
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return m, d.Decode(&m) == nil
}

// auditValue is a JSON value as text: lists comma-separated, null empty.
func auditValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = auditValue(e)
		}
		return strings.Join(parts, ", ")
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

// fieldLabel names a record field in the page's language, when known.
func fieldLabel(t map[string]string, field string) string {
	if l := t["field_"+field]; l != "" {
		return l
	}
	return field
}
