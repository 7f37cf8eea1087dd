package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBody caps request bodies the fake reads.
const maxBody = 1 << 20

// params are the body parameters of an old-API POST, which DingTalk
// accepts as JSON or as a form.
type params struct {
	json map[string]any
	form url.Values
}

// readParams reads a JSON or form body.
func readParams(r *http.Request) (params, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return params{}, fmt.Errorf("read body: %w", err)
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return params{}, fmt.Errorf("parse form: %w", err)
		}
		return params{form: form}, nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return params{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return params{}, fmt.Errorf("parse json: %w", err)
	}
	return params{json: m}, nil
}

// has reports whether key was sent.
func (p params) has(key string) bool {
	if p.form != nil {
		_, ok := p.form[key]
		return ok
	}
	_, ok := p.json[key]
	return ok
}

// str returns a string parameter ("" when absent or not a string).
func (p params) str(key string) string {
	if p.form != nil {
		return p.form.Get(key)
	}
	switch v := p.json[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		return ""
	}
}

// errBadNumber reports a parameter that is not an integer.
var errBadNumber = errors.New("not an integer")

// int64 returns an integer parameter, sent as a JSON number, a numeric
// string or a form value; present is false when the key is absent.
func (p params) int64(key string) (v int64, present bool, err error) {
	if !p.has(key) {
		return 0, false, nil
	}
	var s string
	if p.form != nil {
		s = p.form.Get(key)
	} else {
		switch x := p.json[key].(type) {
		case json.Number:
			s = x.String()
		case string:
			s = x
		default:
			return 0, true, errBadNumber
		}
	}
	v, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, true, errBadNumber
	}
	return v, true, nil
}

// accessToken returns the app token of an old-API request: the query
// parameter, else a form-body parameter.
func accessToken(r *http.Request, p params) string {
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return tok
	}
	if p.form != nil {
		return p.form.Get("access_token")
	}
	return ""
}

// jsonBody reads a new-API JSON body. Keys match exactly, as at DingTalk
// (encoding/json alone would also accept "appkey" for "appKey"); a body
// that is not a JSON object reads as empty.
func jsonBody(r *http.Request) params {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return params{json: map[string]any{}}
	}
	return params{json: m}
}
