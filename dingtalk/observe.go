package dingtalk

import (
	"errors"
	"time"
)

// Results of a call, as Call.Result names them besides DingTalk's own error
// codes.
const (
	// ResultOK is a call DingTalk answered with success.
	ResultOK = "ok"
	// ResultTransport is a call that got no complete answer: connection
	// refused or reset, timeout, cancelled context.
	ResultTransport = "transport"
	// ResultBadResponse is an answer that is not a DingTalk API response
	// (HTML, empty, truncated, oversized, unexpected status).
	ResultBadResponse = "bad_response"
	// ResultThrottled is DingTalk's rate-limit page (the HTML or JSON
	// "punish" answer), which carries no error code.
	ResultThrottled = "throttled"
)

// Call is one HTTP attempt at a DingTalk API, as Config.Observe sees it. A
// throttled call that is retried is several Calls.
type Call struct {
	// Endpoint is the API's URL path, e.g. "/topapi/v2/user/get": one of a
	// fixed set, never with a query.
	Endpoint string
	// Result is ResultOK, DingTalk's error code ("60121",
	// "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", …),
	// ResultTransport, ResultBadResponse or ResultThrottled. Error codes
	// come from DingTalk's answer: a consumer that turns them into labels
	// should bound how many distinct ones it keeps.
	Result string
	// Duration is from sending the request to having read the whole answer;
	// the rate limiter's wait before it is not included (see Wait).
	Duration time.Duration
}

// Wait is one time the Client's own rate limiter held a call back, as
// Config.ObserveWait sees it. Calls that pass at once are not reported.
type Wait struct {
	// Endpoint is the API's URL path, as in Call.
	Endpoint string
	// Duration is how long the call had to wait (or would have had to).
	Duration time.Duration
	// Refused is true when the call was not made: the wait would have
	// passed the context's deadline, or the context ended during it.
	Refused bool
}

// callResult classifies the error of one attempt for Call.Result.
func callResult(err error) string {
	if err == nil {
		return ResultOK
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	var bad *BadResponseError
	if errors.As(err, &bad) {
		if bad.Throttled {
			return ResultThrottled
		}
		return ResultBadResponse
	}
	return ResultTransport
}
