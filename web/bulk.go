package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/dingbridge/dingbridge/mapping"
)

// Bulk approval of pending requests. The pending page's checkboxes post
// their requests here: the first post only shows what would happen to each
// (the confirmation); the second, with confirm=1, plans again and approves
// each request on its own, through its own audited store call, and shows
// what happened to each. Nothing is renamed or guessed: a request that does
// not fit the chosen way is skipped, and says why.

// maxBulk is how many requests one bulk approval takes.
const maxBulk = 100

// bulkMode is how a bulk approval approves each request.
type bulkMode string

const (
	// bulkSuggested links each request to its one suggested account.
	bulkSuggested bulkMode = "suggested"
	// bulkNew creates an account for each request from its DingTalk profile,
	// named by its userId, lower-cased.
	bulkNew bulkMode = "new"
)

// Outcomes of one request in a bulk approval.
const (
	bulkWillApprove = "approve" // confirmation: will be approved
	bulkApproved    = "approved"
	bulkSkipped     = "skipped"
	bulkFailed      = "failed"
)

// bulkItem is one selected request, planned or done.
type bulkItem struct {
	ID        string
	Name      string // DingTalk name
	UserID    string
	Username  string // the account linked to, or created
	AccountID string // bulkSuggested: the account planned, confirmed by the administrator
	Outcome   string
	Reason    string // why skipped or failed, in the page's language
}

type bulkData struct {
	Mode    bulkMode
	Done    bool // the result; else the confirmation
	Items   []bulkItem
	Count   int // will be approved (confirmation) or approved (result)
	Skipped int
	Failed  int
}

// bulkApprove shows the confirmation of a bulk approval, or, with
// confirm=1, does it and shows the result.
func (s *Server) bulkApprove(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := s.path("/pending")
	mode := bulkMode(r.PostFormValue("mode"))
	var ids []string
	seen := map[string]bool{}
	for _, id := range r.PostForm["id"] {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	switch {
	case mode != bulkSuggested && mode != bulkNew:
		http.Redirect(w, r, back+"?err=err_bulk_mode", http.StatusSeeOther)
		return
	case len(ids) == 0:
		http.Redirect(w, r, back+"?err=err_bulk_none", http.StatusSeeOther)
		return
	case len(ids) > maxBulk:
		http.Redirect(w, r, back+"?err=err_bulk_too_many", http.StatusSeeOther)
		return
	}
	done := r.PostFormValue("confirm") == "1"
	title := "bulk_confirm"
	if done {
		title = "bulk_result"
	}
	p := s.newPage(r, "pending", title)
	d := bulkData{Mode: mode, Done: done}
	actor := adminFrom(ctx).Account.ID
	for _, id := range ids {
		it := s.planBulk(ctx, r, p.T, mode, id)
		if done && it.Outcome == bulkWillApprove {
			it = s.doBulk(ctx, r, p.T, actor, mode, it)
		}
		switch it.Outcome {
		case bulkWillApprove, bulkApproved:
			d.Count++
		case bulkSkipped:
			d.Skipped++
		case bulkFailed:
			d.Failed++
		}
		d.Items = append(d.Items, it)
	}
	p.D = d
	s.render(w, r, http.StatusOK, "pending_bulk", p)
}

// planBulk says what a bulk approval would do with request id: approve it
// (and to which account), or skip it, or why it would fail.
func (s *Server) planBulk(ctx context.Context, r *http.Request, t map[string]string, mode bulkMode, id string) bulkItem {
	it := bulkItem{ID: id, Outcome: bulkSkipped}
	req, err := s.cfg.Store.PendingRequest(ctx, id)
	switch {
	case errors.Is(err, mapping.ErrNotFound), errors.Is(err, mapping.ErrInvalid):
		it.Reason = t["bulk_gone"]
		return it
	case err != nil:
		return s.bulkFailure(r, t, it, err)
	}
	it.Name, it.UserID = req.Binding.Name, req.Key.UserID
	if req.Status != mapping.RequestOpen {
		it.Reason = t["err_decided"]
		return it
	}
	switch mode {
	case bulkSuggested:
		switch len(req.SuggestedAccountIDs) {
		case 0:
			it.Reason = t["bulk_no_suggestion"]
			return it
		case 1:
		default:
			it.Reason = t["bulk_many_suggestions"]
			return it
		}
		a, err := s.cfg.Store.AccountByID(ctx, req.SuggestedAccountIDs[0])
		if errors.Is(err, mapping.ErrNotFound) {
			it.Reason = t["bulk_no_suggestion"]
			return it
		} else if err != nil {
			return s.bulkFailure(r, t, it, err)
		}
		it.Username, it.AccountID = a.Username, a.ID
		if a.Disabled {
			it.Reason = t["bulk_suggested_disabled"]
			return it
		}
	case bulkNew:
		it.Username = mapping.NormalizeUsername(req.Key.UserID)
		if !mapping.ValidUsername(it.Username) {
			it.Reason = t["bulk_bad_username"]
			return it
		}
		_, err := s.cfg.Store.AccountByUsername(ctx, it.Username)
		if err == nil {
			// A taken username is this request's failure: never a silent rename.
			it.Outcome, it.Reason = bulkFailed, t["err_username_taken"]
			return it
		} else if !errors.Is(err, mapping.ErrNotFound) {
			return s.bulkFailure(r, t, it, err)
		}
	}
	it.Outcome = bulkWillApprove
	return it
}

// doBulk approves one planned request with its own store call.
func (s *Server) doBulk(ctx context.Context, r *http.Request, t map[string]string, actor string, mode bulkMode, it bulkItem) bulkItem {
	m := s.meta(r, actor)
	var err error
	switch mode {
	case bulkSuggested:
		// The administrator confirmed this account; if the suggestion has
		// changed since, they have not seen what would happen.
		if r.PostFormValue("to_"+it.ID) != it.AccountID {
			it.Outcome, it.Reason = bulkSkipped, t["bulk_changed"]
			return it
		}
		_, err = s.cfg.Store.Approve(ctx, m, it.ID, it.AccountID)
	case bulkNew:
		var req mapping.Request
		if req, err = s.cfg.Store.PendingRequest(ctx, it.ID); err == nil {
			_, _, err = s.cfg.Store.ApproveNewAccount(ctx, m, it.ID, mapping.Account{
				Username: it.Username, DisplayName: req.Binding.Name,
			})
		}
	}
	if err != nil {
		return s.bulkFailure(r, t, it, err)
	}
	it.Outcome, it.Reason = bulkApproved, ""
	return it
}

// bulkFailure marks it failed, saying why in the page's language.
func (s *Server) bulkFailure(r *http.Request, t map[string]string, it bulkItem, err error) bulkItem {
	_, key := s.mutationError(r, err) // logs what is not the request's own fault
	it.Outcome, it.Reason = bulkFailed, t[key]
	return it
}
