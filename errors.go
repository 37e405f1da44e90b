package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// errorCode is the stable machine word a client switches on.
type errorCode string

const (
	codeValidation       errorCode = "validation_failed"
	codeBadRequest       errorCode = "bad_request"
	codeUnauthorized     errorCode = "unauthorized"
	codeForbidden        errorCode = "forbidden"
	codeNotFound         errorCode = "not_found"
	codeMethodNotAllowed errorCode = "method_not_allowed"
	codeConflict         errorCode = "conflict"
	codeTooLarge         errorCode = "payload_too_large"
	codeUnsupportedMedia errorCode = "unsupported_media_type"
	codeRateLimited      errorCode = "rate_limited"
	codeInternal         errorCode = "internal"
	codeUnavailable      errorCode = "unavailable"
)

// status is the one place a code becomes an HTTP status.
func (c errorCode) status() int {
	switch c {
	case codeValidation:
		return http.StatusUnprocessableEntity
	case codeBadRequest:
		return http.StatusBadRequest
	case codeUnauthorized:
		return http.StatusUnauthorized
	case codeForbidden:
		return http.StatusForbidden
	case codeNotFound:
		return http.StatusNotFound
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case codeConflict:
		return http.StatusConflict
	case codeTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case codeRateLimited:
		return http.StatusTooManyRequests
	case codeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// fieldError names one failing field of a request.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// apiError is the one error type handlers return. Anything else that reaches
// writeError is internal: logged in full, answered generically.
type apiError struct {
	Code   errorCode
	Detail string
	Fields []fieldError
	Err    error // the cause, for the log only

	RetryAfter time.Duration // sent as Retry-After when set
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Detail + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Detail
}

func (e *apiError) Unwrap() error { return e.Err }

func newError(code errorCode, detail string) *apiError {
	return &apiError{Code: code, Detail: detail}
}

func validationError(fields []fieldError) *apiError {
	return &apiError{Code: codeValidation, Detail: "The request failed validation.", Fields: fields}
}

func errNotFound(what string) *apiError {
	return newError(codeNotFound, what+" not found.")
}

// unavailable wraps a cause the client must not see (a lost database).
func unavailable(err error) *apiError {
	return &apiError{Code: codeUnavailable, Detail: "The service is temporarily unavailable; try again shortly.", Err: err}
}

// problem is an RFC 9457 problem details document.
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Instance  string       `json:"instance"`
	Code      errorCode    `json:"code"`
	RequestID string       `json:"request_id"`
	Errors    []fieldError `json:"errors,omitempty"`
}

// writeError answers with a problem document. Internal causes are kept on
// the request's state for the access log line, never sent.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code == codeInternal {
		ae = &apiError{Code: codeInternal, Detail: "Something went wrong on our side; the request_id identifies it in our logs.", Err: err}
	}
	st := stateFrom(r.Context())
	if st != nil && ae.Err != nil {
		st.err = err
	}
	status := ae.Code.status()
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer`)
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(ae.RetryAfter)))
	}
	p := problem{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   ae.Detail,
		Instance: r.URL.Path,
		Code:     ae.Code,
		Errors:   ae.Fields,
	}
	if st != nil {
		p.RequestID = st.id
	}
	writeJSON(w, status, "application/problem+json", p)
}

// writeJSON is the one place a response body is encoded.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Our own types always marshal; reaching here is a programming error.
		panic(err)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// ceilSeconds rounds a wait up, so a client that waits that long is let in.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
