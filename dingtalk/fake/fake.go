package fake

import (
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
)

// Lifetimes DingTalk documents and the Server does not make configurable.
const (
	defaultAppTokenTTL = 7200 * time.Second
	defaultCodeTTL     = 5 * time.Minute
	userTokenTTL       = 7200 * time.Second
	refreshTokenTTL    = 30 * 24 * time.Hour
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Fixture is the simulated world; nil means DefaultFixture().
	Fixture *Fixture
	// Now is the clock for token, code and signature lifetimes; nil means time.Now.
	Now func() time.Time
	// AppTokenTTL is the app access token lifetime; 0 means 7200 s.
	AppTokenTTL time.Duration
	// CodeTTL is the lifetime of login, JSAPI and SNS codes; 0 means 5 min.
	CodeTTL time.Duration
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger
	// BaseURL is the public URL of the fake, used by the scripts it serves.
	// Empty means: derived from each request's Host (see also SetBaseURL).
	BaseURL string
	// HTTPClient sends PushEvent requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Server simulates DingTalk's three hosts (api, oapi and login.dingtalk.com)
// on one http.Handler. It is safe for concurrent use.
type Server struct {
	now         func() time.Time
	appTokenTTL time.Duration
	codeTTL     time.Duration
	log         *slog.Logger
	client      *http.Client
	mux         *http.ServeMux
	pages       *htmltemplate.Template
	scripts     *texttemplate.Template

	mu              sync.Mutex
	fixture         Fixture
	baseURL         string
	appTokens       map[string]*appToken
	currentAppToken map[string]string // app key → its live token
	userTokens      map[string]*userToken
	refreshTokens   map[string]*userToken
	codes           map[string]*authCode
	autoApprove     *identity
	approveEach     []identity // SetAutoApproveEach: approve these in turn
	approveNext     int
	rateLimit       int                    // SetRateLimit: calls per second per API; 0 = off
	recent          map[string][]time.Time // endpoint → its accepted calls in the last second
	throttled       map[string]int         // endpoint → calls refused by rateLimit
	lastPrune       time.Time              // of the user tokens
	calls           map[string]int
	faults          map[string]*Fault
	workbench       map[string][]workbenchApp // corp id → its workbench, in order added
	httpServer      *http.Server
}

// identity names one employee of one corp.
type identity struct {
	corpID, userID string
}

// New returns a Server for opts.
func New(opts Options) *Server {
	fixture := DefaultFixture()
	if opts.Fixture != nil {
		fixture = opts.Fixture.clone()
	}
	s := &Server{
		now:             opts.Now,
		appTokenTTL:     opts.AppTokenTTL,
		codeTTL:         opts.CodeTTL,
		log:             opts.Logger,
		client:          opts.HTTPClient,
		mux:             http.NewServeMux(),
		pages:           parsePages(),
		scripts:         parseScripts(),
		fixture:         fixture,
		baseURL:         strings.TrimRight(opts.BaseURL, "/"),
		appTokens:       map[string]*appToken{},
		currentAppToken: map[string]string{},
		userTokens:      map[string]*userToken{},
		refreshTokens:   map[string]*userToken{},
		codes:           map[string]*authCode{},
		calls:           map[string]int{},
		faults:          map[string]*Fault{},
		recent:          map[string][]time.Time{},
		throttled:       map[string]int{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.appTokenTTL <= 0 {
		s.appTokenTTL = defaultAppTokenTTL
	}
	if s.codeTTL <= 0 {
		s.codeTTL = defaultCodeTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	for _, rt := range s.routes() {
		_, pattern, _ := strings.Cut(rt.endpoint, " ")
		s.mux.Handle(pattern, s.endpointHandler(rt))
	}
	s.mux.HandleFunc(pathIndex, s.handleIndex)
	s.mux.HandleFunc(pathWorkbench, s.handleWorkbench)
	s.mux.HandleFunc("/topapi/", s.handleUnknownTopAPI)
	s.mux.HandleFunc("/v1.0/", s.handleUnknownNewAPI)
	return s
}

// ServeHTTP answers requests for all simulated hosts.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Start serves on addr (e.g. "127.0.0.1:0") in the background until Close
// and returns the base URL. If no BaseURL was set, it becomes this URL.
func (s *Server) Start(addr string) (baseURL string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	baseURL = "http://" + net.JoinHostPort(host, port)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // room for injected latency
		IdleTimeout:       2 * time.Minute,
	}

	s.mu.Lock()
	if s.httpServer != nil {
		s.mu.Unlock()
		ln.Close()
		return "", errors.New("fake dingtalk already started")
	}
	s.httpServer = srv
	if s.baseURL == "" {
		s.baseURL = baseURL
	}
	s.mu.Unlock()

	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake dingtalk stopped", "err", err)
		}
	}()
	return baseURL, nil
}

// Close stops a server started with Start; it is a no-op otherwise.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpServer
	s.httpServer = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// SetBaseURL sets the public URL of the fake, used by the scripts it
// serves (for example after httptest.NewServer picked a port).
func (s *Server) SetBaseURL(baseURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(baseURL, "/")
}

// publicBaseURL is the URL a browser reaches the fake at.
func (s *Server) publicBaseURL(r *http.Request) string {
	s.mu.Lock()
	base := s.baseURL
	s.mu.Unlock()
	if base != "" {
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// SetAutoApprove makes every login (web, legacy SNS, and JSAPI for this
// corp) complete at once as the given employee, with no page shown.
// An unknown employee makes those logins fail with an error page.
func (s *Server) SetAutoApprove(corpID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.fixture.corp(corpID); c == nil || c.employee(userID) == nil {
		s.log.Warn("fake dingtalk: auto-approve identity not in fixture", "corp_id", corpID, "user_id", userID)
	}
	s.autoApprove = &identity{corpID: corpID, userID: userID}
}

// SetAutoApproveEach is SetAutoApprove for several employees of one corp
// in turn: each login completes as the next of userIDs, starting again
// after the last, so that many logins are many different people.
func (s *Server) SetAutoApproveEach(corpID string, userIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoApprove, s.approveEach, s.approveNext = nil, nil, 0
	for _, u := range userIDs {
		s.approveEach = append(s.approveEach, identity{corpID: corpID, userID: u})
	}
}

// ClearAutoApprove brings back the interactive login pages.
func (s *Server) ClearAutoApprove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoApprove, s.approveEach = nil, nil
}

// approvalLocked returns who the next auto-approved login is, or nil when
// logins are interactive. s.mu must be held.
func (s *Server) approvalLocked() *identity {
	if len(s.approveEach) > 0 {
		id := s.approveEach[s.approveNext%len(s.approveEach)]
		s.approveNext++
		return &id
	}
	return s.autoApprove
}

// SetRateLimit makes the server-to-server APIs enforce DingTalk's per-app
// per-API limit (§9.3 of the protocol notes: 20 calls/s on a
// standard-edition org) as strictly as it can be read: at most perSecond
// calls to one API within any one second, counted as they arrive; a call
// beyond it is answered as DingTalk throttles (90018, or 403
// Forbidden.AccessDenied.QpsLimitForAppkeyAndApi) and does not count. The
// simulator counts per API across its apps, which for one app is the
// per-app limit. 0 turns enforcement off (the default).
func (s *Server) SetRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = max(perSecond, 0)
	clear(s.recent)
}

// Throttled reports how many calls to endpoint SetRateLimit refused since
// the start or the last ResetCalls.
func (s *Server) Throttled(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled[endpoint]
}

// overLimitLocked records a call to endpoint at now and reports whether
// SetRateLimit refuses it. s.mu must be held.
func (s *Server) overLimitLocked(endpoint string, now time.Time) bool {
	if s.rateLimit == 0 {
		return false
	}
	calls := s.recent[endpoint]
	keep := 0
	for keep < len(calls) && now.Sub(calls[keep]) >= time.Second {
		keep++
	}
	calls = calls[keep:]
	if len(calls) >= s.rateLimit {
		s.recent[endpoint] = calls
		s.throttled[endpoint]++
		return true
	}
	s.recent[endpoint] = append(calls, now)
	return false
}

// SetLeft marks an employee as having left the corp (or re-joined it).
func (s *Server) SetLeft(corpID, userID string, left bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *Employee
	if c := s.fixture.corp(corpID); c != nil {
		e = c.employee(userID)
	}
	if e == nil {
		s.log.Warn("fake dingtalk: SetLeft on unknown employee", "corp_id", corpID, "user_id", userID)
		return
	}
	e.Left = left
}

// ExpireAppTokens invalidates every app access token issued so far; the
// next call with one fails as with a revoked token (40014,
// InvalidAuthentication) and A1/A2/A3 issue new ones.
func (s *Server) ExpireAppTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.appTokens)
	clear(s.currentAppToken)
}

// Calls reports how many requests reached endpoint (an Endpoint… constant)
// since the start or the last ResetCalls.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// ResetCalls sets every call counter to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	clear(s.throttled)
}

// requestIDKey is the context key of the request id of one request.
type requestIDKey struct{}

// requestID returns the id the Server gave r.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// endpointHandler counts the call, assigns a request id, applies faults
// and method checks, then runs the route's handler.
func (s *Server) endpointHandler(rt route) http.Handler {
	method, _, _ := strings.Cut(rt.endpoint, " ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.cors {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		id := newRequestID(rt.family)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		if rt.family == familyNew {
			w.Header().Set("x-acs-request-id", id)
			w.Header().Set("x-acs-trace-id", randomHex(16))
		}
		fault, faulty, throttled := s.begin(rt)
		s.log.DebugContext(r.Context(), "fake dingtalk request",
			"endpoint", rt.endpoint, "method", r.Method, "request_id", id, "fault", faulty, "throttled", throttled)
		if throttled {
			s.writeErrcode(w, r, rt.family, 90018)
			return
		}
		if faulty {
			s.serveFault(w, r, rt, method, fault)
			return
		}
		s.serveRoute(w, r, rt, method)
	})
}

// begin counts a call, applies SetRateLimit to the APIs (not to pages and
// scripts) and takes the endpoint's fault, if any.
func (s *Server) begin(rt route) (f Fault, faulty, throttled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[rt.endpoint]++
	if rt.family != familyWeb && s.overLimitLocked(rt.endpoint, s.now()) {
		return Fault{}, false, true
	}
	f, faulty = s.takeFaultLocked(rt.endpoint)
	return f, faulty, false
}

// serveRoute checks the method the way the endpoint's host does, then
// runs the handler.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt route, method string) {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		rt.handle(w, r)
		return
	}
	switch rt.family {
	case familyOld:
		if method == http.MethodGet {
			writeOldError(w, r, 43001, "")
		} else {
			writeOldError(w, r, 43002, "")
		}
	case familyNew:
		writeNewError(w, r, http.StatusNotFound, "InvalidAction.NotFound",
			"Specified api is not found, please check your url and method.")
	default:
		w.Header().Set("Allow", method)
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	}
}

// handleUnknownTopAPI answers paths under /topapi/ that DingTalk does not have.
func (s *Server) handleUnknownTopAPI(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, newRequestID(familyOld)))
	writeOldError(w, r, 22, fmt.Sprintf("Invalid method[%s]", r.URL.Path))
}

// handleUnknownNewAPI answers paths under /v1.0/ that DingTalk does not have.
func (s *Server) handleUnknownNewAPI(w http.ResponseWriter, r *http.Request) {
	id := newRequestID(familyNew)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	w.Header().Set("x-acs-request-id", id)
	writeNewError(w, r, http.StatusNotFound, "InvalidAction.NotFound",
		"Specified api is not found, please check your url and method.")
}

// SetDeniedScopes makes the app lack the given permissions (e.g.
// "Contact.User.Read", "qyapi_get_member"), as if an administrator had not
// granted them; it replaces the app's earlier denials.
func (s *Server) SetDeniedScopes(appKey string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, app := s.fixture.app(appKey); app != nil {
		app.DeniedScopes = slices.Clone(scopes)
	}
}
