package fake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Fault describes how an endpoint misbehaves. Latency applies first; then
// the first of HTTPStatus, PunishPage and Errcode that is set replaces the
// normal answer; Oversize and Truncated then alter whichever body results.
type Fault struct {
	// Latency delays the answer; a request whose context ends meanwhile
	// gets no answer at all.
	Latency time.Duration
	// HTTPStatus answers with this status and a short HTML body, like the
	// gateway (Tengine) in front of DingTalk.
	HTTPStatus int
	// Errcode answers with this error in the endpoint's own shape: old API
	// {"errcode":N,...} with HTTP 200; new API 403
	// Forbidden.AccessDenied.QpsLimitForAppkeyAndApi (90018 and unknown
	// codes), …QpsLimitForApi (90002), …ApiCountLimitForOrg (90020),
	// …IpNotInWhiteList (60020), or 500 server.error (-1).
	Errcode int
	// PunishPage answers like DingTalk's per-IP ban: an HTML page on the old
	// API and pages, {"status":1111,…,"punish":"deny"} on the new API;
	// both with HTTP 200.
	PunishPage bool
	// Truncated cuts the body in half (Content-Length matching the cut body).
	Truncated bool
	// Oversize prefixes the body with 5 MiB of JSON whitespace.
	Oversize bool
	// Times is how many calls the fault affects; 0 means until ClearFaults.
	Times int
}

// oversizePadding is how much whitespace Oversize adds.
const oversizePadding = 5 << 20

// InjectFault makes endpoint (an Endpoint… constant) misbehave as f,
// replacing any fault set for it before.
func (s *Server) InjectFault(endpoint string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[endpoint] = &f
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFaultLocked returns the endpoint's fault and counts one use of it.
// s.mu must be held.
func (s *Server) takeFaultLocked(endpoint string) (Fault, bool) {
	f := s.faults[endpoint]
	if f == nil {
		return Fault{}, false
	}
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.faults, endpoint)
		}
	}
	return *f, true
}

// serveFault answers a request the way f says.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, rt route, method string, f Fault) {
	if f.Latency > 0 {
		// Read the body first: only then does net/http watch the connection
		// and cancel the context when the client goes away.
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	out := w
	var buf *bufferedResponse
	if f.Truncated || f.Oversize {
		buf = &bufferedResponse{header: http.Header{}}
		out = buf
	}
	switch {
	case f.HTTPStatus != 0:
		writeGatewayStatus(out, f.HTTPStatus)
	case f.PunishPage:
		s.writePunish(out, r, rt.family)
	case f.Errcode != 0:
		s.writeErrcode(out, r, rt.family, f.Errcode)
	default:
		s.serveRoute(out, r, rt, method)
	}
	if buf != nil {
		buf.flush(w, f.Oversize, f.Truncated)
	}
}

// writeGatewayStatus writes an HTTP error the way the Tengine gateway does.
func writeGatewayStatus(w http.ResponseWriter, status int) {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n", text, text)
}

// writePunish writes the per-IP ban answer.
func (s *Server) writePunish(w http.ResponseWriter, r *http.Request, f family) {
	if f == familyNew {
		writeJSON(w, http.StatusOK, map[string]any{
			"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": randomHex(16),
		})
		return
	}
	s.renderPage(w, r, http.StatusOK, "punish.html.tmpl", nil)
}

// writeErrcode writes errcode in the family's error shape.
func (s *Server) writeErrcode(w http.ResponseWriter, r *http.Request, f family, errcode int) {
	switch f {
	case familyOld:
		writeOldError(w, r, errcode, "")
	case familyNew:
		status, code := http.StatusForbidden, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
		switch errcode {
		case 90002:
			code = "Forbidden.AccessDenied.QpsLimitForApi"
		case 90020:
			code = "Forbidden.AccessDenied.ApiCountLimitForOrg"
		case 60020:
			code = "Forbidden.AccessDenied.IpNotInWhiteList"
		case -1:
			status, code = http.StatusInternalServerError, "server.error"
		}
		writeNewError(w, r, status, code, oldMessage(errcode))
	default:
		s.renderError(w, r, http.StatusServiceUnavailable, false, fmt.Sprintf("系统繁忙 (%d)", errcode),
			fmt.Sprintf("DingTalk is busy (errcode %d)", errcode))
	}
}

// bufferedResponse holds an answer so a fault can reshape its body.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// flush writes the held answer to w, padded and/or cut.
func (b *bufferedResponse) flush(w http.ResponseWriter, oversize, truncated bool) {
	body := b.body.Bytes()
	if oversize {
		body = append(bytes.Repeat([]byte(" "), oversizePadding), body...)
	}
	if truncated {
		body = body[:len(body)/2]
	}
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	w.Write(body)
}
