package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

type identitiesData struct {
	Q       string
	Link    string // "", "linked" or "unlinked": kept across searches and pages
	After   string
	Results []mapping.SearchResult
	Next    string
}

// identities searches DingTalk identities by name, userId, unionId,
// mobile, job number or org email; ?link=unlinked (or linked) narrows them
// to those not linked to an account (or linked).
func (s *Server) identities(w http.ResponseWriter, r *http.Request) {
	q, after, link := r.URL.Query().Get("q"), r.URL.Query().Get("after"), r.URL.Query().Get("link")
	page, err := s.cfg.Store.Search(r.Context(), mapping.Query{Text: q, After: after, Link: mapping.LinkFilter(link)})
	p := s.newPage(r, "identities", "identities")
	status := http.StatusOK
	if errors.Is(err, mapping.ErrInvalid) {
		p.Error, status = p.T["err_invalid_search"], http.StatusBadRequest
		if l := mapping.LinkFilter(link); l != mapping.LinkAny && l != mapping.LinkLinked && l != mapping.LinkUnlinked {
			p.Error, link = p.T["err_invalid_link"], ""
		}
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	p.D = identitiesData{Q: q, Link: link, After: after, Results: page.Results, Next: page.Next}
	s.render(w, r, status, "identities", p)
}

// pendingRequest is a request with its suggested accounts' usernames.
type pendingRequest struct {
	mapping.Request
	Suggested []mapping.Account
}

type pendingData struct {
	After    string
	Requests []pendingRequest
	Next     string
}

// pending lists the open requests, most recently seen first.
func (s *Server) pending(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	after := r.URL.Query().Get("after")
	page, err := s.cfg.Store.PendingRequests(ctx, mapping.RequestQuery{After: after})
	p := s.newPage(r, "pending", "pending")
	if errors.Is(err, mapping.ErrInvalid) {
		p.Error = p.T["err_invalid_search"]
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	d := pendingData{After: after, Next: page.Next}
	for _, req := range page.Requests {
		pr := pendingRequest{Request: req}
		for _, id := range req.SuggestedAccountIDs {
			if a, err := s.cfg.Store.AccountByID(ctx, id); err == nil {
				pr.Suggested = append(pr.Suggested, a)
			}
		}
		d.Requests = append(d.Requests, pr)
	}
	p.D = d
	s.render(w, r, http.StatusOK, "pending", p)
}

// approve links the request's identity to the account named by username.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := s.path("/pending")
	a, err := s.cfg.Store.AccountByUsername(ctx, strings.TrimSpace(r.PostFormValue("username")))
	if errors.Is(err, mapping.ErrNotFound) {
		http.Redirect(w, r, back+"?err=err_no_account", http.StatusSeeOther)
		return
	}
	if err == nil {
		_, err = s.cfg.Store.Approve(ctx, s.meta(r, adminFrom(ctx).Account.ID), chi.URLParam(r, "id"), a.ID)
	}
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	http.Redirect(w, r, back+"?ok=ok_approved", http.StatusSeeOther)
}

// approveNew creates an account and links the request's identity to it.
func (s *Server) approveNew(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := s.path("/pending")
	_, _, err := s.cfg.Store.ApproveNewAccount(ctx, s.meta(r, adminFrom(ctx).Account.ID), chi.URLParam(r, "id"), mapping.Account{
		Username:    strings.TrimSpace(r.PostFormValue("username")),
		DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
		Groups:      splitGroups(r.PostFormValue("groups")),
	})
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	http.Redirect(w, r, back+"?ok=ok_approved", http.StatusSeeOther)
}

// reject closes the request with a reason.
func (s *Server) reject(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := s.path("/pending")
	_, err := s.cfg.Store.Reject(ctx, s.meta(r, adminFrom(ctx).Account.ID), chi.URLParam(r, "id"), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		s.redirectError(w, r, back, err)
		return
	}
	http.Redirect(w, r, back+"?ok=ok_rejected", http.StatusSeeOther)
}
