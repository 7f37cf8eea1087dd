package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/mapping"
)

// SelfChecker runs the DingTalk self-check of one corp's app; a
// *dingtalk.Client is one.
type SelfChecker interface {
	SelfCheck(ctx context.Context, p dingtalk.Probe) dingtalk.Report
}

var _ SelfChecker = (*dingtalk.Client)(nil)

// DingTalkCorp is a configured corp and its DingTalk app, as the console
// shows it. It has no field for the app secret.
type DingTalkCorp struct {
	ID, Name string
	AppKey   string
	AgentID  string
	// LegacyTokenEndpoint: app tokens come from GET /gettoken.
	LegacyTokenEndpoint bool
	// SNS: a legacy scan-login app is configured.
	SNS bool
	// EventsURL is where DingTalk pushes the corp's contact events, when an
	// event subscription is configured.
	EventsURL string
	// Checker runs the self-check; nil turns it off for this corp.
	Checker SelfChecker
}

const (
	// defaultSelfCheckInterval is how long a corp's self-check waits after
	// the last one: each run spends DingTalk quota.
	defaultSelfCheckInterval = time.Minute
	// selfCheckTimeout bounds one run: a few calls, each bounded by the
	// DingTalk client's own timeout, within the server's write timeout.
	selfCheckTimeout = 20 * time.Second
	// probeSearchPages bounds how far the check looks through the mapping
	// for a person of a corp the administrator is not in.
	probeSearchPages = 4
)

// corp returns the configured corp with this id.
func (s *Server) corp(id string) (DingTalkCorp, bool) {
	for _, c := range s.cfg.DingTalkCorps {
		if c.ID == id {
			return c, true
		}
	}
	return DingTalkCorp{}, false
}

// checkRow is one API of a report, as the page shows it.
type checkRow struct {
	dingtalk.Check
	Problem bool
}

// checkResult is a finished run for one corp.
type checkResult struct {
	CorpID    string
	Problems  int
	Rows      []checkRow
	ProbeName string // who was looked up
	ProbeID   string
	At        time.Time
}

type selfCheckData struct {
	Corps       []DingTalkCorp
	Result      *checkResult
	IntervalSec int
}

// selfCheckPage shows the corps and the button that runs the check. It
// never calls DingTalk: that happens only on the POST.
func (s *Server) selfCheckPage(w http.ResponseWriter, r *http.Request) {
	s.renderSelfCheck(w, r, http.StatusOK, nil, "")
}

// renderSelfCheck shows the page, with a run's result or the error errKey
// names (its {placeholder}, value pairs filled in).
func (s *Server) renderSelfCheck(w http.ResponseWriter, r *http.Request, status int, res *checkResult, errKey string, pairs ...string) {
	p := s.newPage(r, "dingtalk", "dt_title")
	if errKey != "" {
		p.Error = strings.NewReplacer(pairs...).Replace(p.T[errKey])
	}
	p.D = selfCheckData{Corps: s.cfg.DingTalkCorps, Result: res, IntervalSec: int(math.Ceil(s.selfCheckInterval().Seconds()))}
	s.render(w, r, status, "dingtalk", p)
}

func (s *Server) selfCheckInterval() time.Duration {
	if s.cfg.SelfCheckInterval > 0 {
		return s.cfg.SelfCheckInterval
	}
	return defaultSelfCheckInterval
}

// runSelfCheck runs the check of the corp the form names, at most once per
// interval per corp, and shows the result on the page.
func (s *Server) runSelfCheck(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := adminFrom(ctx)
	corp, ok := s.corp(r.PostFormValue("corp"))
	if !ok || corp.Checker == nil {
		s.renderMessage(w, r, http.StatusNotFound, "err_not_found")
		return
	}
	if wait := s.claimSelfCheck(corp.ID); wait > 0 {
		s.log.InfoContext(ctx, "admin: dingtalk self-check refused: ran recently", "corp_id", corp.ID, "retry_in", wait.String())
		secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", secs)
		s.renderSelfCheck(w, r, http.StatusTooManyRequests, nil, "dt_err_too_soon", "{corp}", corp.Name, "{seconds}", secs)
		return
	}

	probe, probeName := s.probe(ctx, corp, a.Account.ID)
	cctx, cancel := context.WithTimeout(ctx, selfCheckTimeout)
	rep := corp.Checker.SelfCheck(cctx, probe)
	cancel()

	res := &checkResult{CorpID: corp.ID, Problems: rep.Problems(), ProbeName: probeName, ProbeID: rep.Probe.UserID, At: rep.Started}
	detail := map[string]string{"app_key": corp.AppKey, "problems": strconv.Itoa(res.Problems), "probe_user_id": rep.Probe.UserID}
	for _, c := range rep.Checks {
		res.Rows = append(res.Rows, checkRow{Check: c, Problem: c.Status.Problem()})
		detail[string(c.API)] = string(c.Status)
		if c.Status.Problem() {
			// Logged once, here; DingTalk's errors are redacted by the client.
			s.log.WarnContext(ctx, "admin: dingtalk self-check found a problem", "corp_id", corp.ID, "api", string(c.API),
				"status", string(c.Status), "dingtalk_code", c.Code, "dingtalk_request_id", c.RequestID, "err", c.Err)
		}
	}
	s.log.InfoContext(ctx, "admin: dingtalk self-check", "corp_id", corp.ID, "problems", res.Problems, "duration", rep.Duration.String())
	if err := s.cfg.Store.RecordEvent(ctx, s.meta(r, a.Account.ID), mapping.Event{
		Action: "dingtalk.selfcheck", TargetType: "corp", TargetID: corp.ID, Detail: detail,
	}); err != nil {
		s.log.WarnContext(ctx, "admin: audit dingtalk self-check", "err", err)
	}
	s.renderSelfCheck(w, r, http.StatusOK, res, "")
}

// claimSelfCheck records a run of corp's check now, or returns how long
// until one is allowed. The claim is taken before the run, so that a double
// click cannot start two. It is per replica: with n replicas a corp is
// checked at most n times per interval.
func (s *Server) claimSelfCheck(corpID string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if last, ok := s.lastCheck[corpID]; ok {
		if wait := last.Add(s.selfCheckInterval()).Sub(now); wait > 0 {
			return wait
		}
	}
	if s.lastCheck == nil {
		s.lastCheck = map[string]time.Time{}
	}
	s.lastCheck[corpID] = now
	return 0
}

// probe picks the person of corp whom the check looks up: the
// administrator running it, if they are in the corp; else someone the
// mapping knows there. Only directory reads are made about them.
func (s *Server) probe(ctx context.Context, corp DingTalkCorp, accountID string) (dingtalk.Probe, string) {
	own, err := s.cfg.Store.BindingsByAccount(ctx, accountID)
	if err != nil && !errors.Is(err, mapping.ErrNotFound) {
		s.log.WarnContext(ctx, "admin: self-check: read the administrator's identities", "err", err)
	}
	for _, b := range own {
		if b.CorpID == corp.ID && !b.Disabled {
			return probeOf(b, corp), b.Name
		}
	}
	after := ""
	for range probeSearchPages {
		page, err := s.cfg.Store.Search(ctx, mapping.Query{Limit: mapping.MaxPageSize, After: after})
		if err != nil {
			s.log.WarnContext(ctx, "admin: self-check: search identities", "err", err)
			break
		}
		for _, res := range page.Results {
			if b := res.Binding; b.CorpID == corp.ID && !b.Disabled {
				return probeOf(b, corp), b.Name
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	return dingtalk.Probe{}, ""
}

// probeOf uses the binding's unionId only if it was learnt through this
// app: unionIds differ between DingTalk developer accounts (BR-08).
func probeOf(b mapping.Binding, corp DingTalkCorp) dingtalk.Probe {
	p := dingtalk.Probe{UserID: b.UserID}
	if b.AppKey == corp.AppKey {
		p.UnionID = b.UnionID
	}
	return p
}
