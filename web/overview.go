package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

// failureWindow is how far back the overview counts failed sign-ins.
const failureWindow = 24 * time.Hour

// figure is a count as the overview shows it: "≈" marks the database's estimate.
type figure struct {
	N        int64
	Text     string // with thousands separators
	Estimate bool
}

func newFigure(c mapping.Count) figure {
	return figure{N: c.N, Text: thousands(c.N), Estimate: c.Estimate}
}

// thousands formats n as 1,234,567: the same in both languages of the console.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// failureRow is one reason sign-ins failed for, in words.
type failureRow struct {
	Reason string // the code, for the test hooks and for reasons without words
	Label  string
	N      string
}

type overviewData struct {
	Accounts, Identities, Linked, Unlinked, Pending, SignIns figure
	AnyEstimate                                              bool
	Failures                                                 []failureRow
	Midnight                                                 time.Time // "today" starts here
	Zone                                                     string
}

// overview shows how many accounts, identities and open requests there are, how many
// people signed in today and why sign-ins failed in the last 24 hours.
func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	// Today is the server's day: Now's time zone (time.Local, from TZ, unless a test says
	// otherwise).
	y, mo, day := now.Date()
	midnight := time.Date(y, mo, day, 0, 0, 0, 0, now.Location())
	st, err := s.cfg.Store.Stats(r.Context(), mapping.StatsQuery{SignedInSince: midnight, FailuresSince: now.Add(-failureWindow)})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p := s.newPage(r, "overview", "overview")
	d := overviewData{
		Accounts: newFigure(st.Accounts), Identities: newFigure(st.Identities), Linked: newFigure(st.Linked),
		Unlinked: newFigure(st.Unlinked), Pending: newFigure(st.OpenRequests), SignIns: newFigure(st.SignIns),
		Midnight: midnight, Zone: midnight.Format("MST -07:00"),
	}
	for _, f := range []figure{d.Accounts, d.Identities, d.Linked, d.Unlinked, d.Pending, d.SignIns} {
		d.AnyEstimate = d.AnyEstimate || f.Estimate
	}
	for _, f := range st.Failures {
		d.Failures = append(d.Failures, failureRow{Reason: f.Reason, Label: reasonLabel(p.T, f.Reason), N: thousands(f.N)})
	}
	p.D = d
	s.render(w, r, http.StatusOK, "overview", p)
}

// reasonLabel says a failure reason in words; a code the console does not know yet is
// shown as it is, after a generic label.
func reasonLabel(t map[string]string, reason string) string {
	if reason == "" {
		return t["reason_none"]
	}
	if l, ok := t["reason_"+reason]; ok {
		return l
	}
	return t["reason_other"] + " (" + reason + ")"
}
