package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
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
	codeInvalidToken     errorCode = "invalid_token"
	codeEmailUnverified  errorCode = "email_unverified"
	codeMFARequired      errorCode = "mfa_required"            // 401: the password was right; a second factor completes the login
	codeMFAEnrollment    errorCode = "mfa_enrollment_required" // 403: the account must enrol a second factor first
	codeCSRF             errorCode = "csrf"                    // 403: a cookie-borne change from another origin
	codeMFALocked        errorCode = "mfa_locked"              // 403: too many wrong codes in a row; a password reset unlocks
	codeKeyReused        errorCode = "idempotency_key_reused"  // 422: an Idempotency-Key used for another request
	codeKeyInProgress    errorCode = "idempotency_in_progress" // 409: an Idempotency-Key whose first request still runs
	codePrecondition     errorCode = "precondition_failed"     // 412: If-Match names a version that is no longer current
	codePreconditionReq  errorCode = "precondition_required"   // 428: IF_MATCH_REQUIRED, and no If-Match
	codeInternal         errorCode = "internal"
	codeUnavailable      errorCode = "unavailable"
)

// status is the one place a code becomes an HTTP status.
func (c errorCode) status() int {
	switch c {
	case codeValidation, codeKeyReused:
		return http.StatusUnprocessableEntity
	case codeBadRequest, codeInvalidToken:
		return http.StatusBadRequest
	case codeUnauthorized, codeMFARequired:
		return http.StatusUnauthorized
	case codeForbidden, codeEmailUnverified, codeMFAEnrollment, codeCSRF, codeMFALocked:
		return http.StatusForbidden
	case codeNotFound:
		return http.StatusNotFound
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case codeConflict, codeKeyInProgress:
		return http.StatusConflict
	case codePrecondition:
		return http.StatusPreconditionFailed
	case codePreconditionReq:
		return http.StatusPreconditionRequired
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
// writeError is sorted by asAPIError: store errors by their kind, and the
// rest is internal, logged in full and answered generically.
type apiError struct {
	Code   errorCode
	Detail string
	Fields []fieldError
	Err    error // the cause, for the log only

	RetryAfter time.Duration // sent as Retry-After when set
	MFAToken   string        // mfa_required: the token of the login's second step
	ETag       string        // precondition_failed: the current version's tag, sent as ETag
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

// errKeyInProgress is an Idempotency-Key whose first request is still
// committing (the store's errKeyTaken, where nothing is kept yet).
var errKeyInProgress = newError(codeKeyInProgress,
	"A request with this Idempotency-Key is still being processed; wait for its answer, then retry with the same key.")

func errNotFound(what string) *apiError {
	return newError(codeNotFound, what+" not found.")
}

// unavailable wraps a cause the client must not see (a lost database, a
// schema an upgrade has not migrated yet); the client may retry after
// unavailableRetry.
func unavailable(err error) *apiError {
	return &apiError{Code: codeUnavailable, Detail: "The service is temporarily unavailable; try again shortly.", Err: err, RetryAfter: unavailableRetry}
}

// unavailableRetry is the Retry-After of a 503: long enough for a
// database restart or a migration to finish, short enough not to strand a
// client.
const unavailableRetry = 5 * time.Second

// clientGone reports whether the request's client went away (net/http
// cancels its context): whatever failed then is logged as 499, and nothing
// is written, since nobody is there to read it.
func clientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// asAPIError sorts any error into the contract's codes. The store's kinds
// map one to one; an error of no known kind is a bug (internal).
func asAPIError(err error) *apiError {
	var ae *apiError
	var se *storeError
	var stale *staleError
	switch {
	case errors.As(err, &ae) && ae.Code != codeInternal:
		return ae
	case errors.As(err, &se) && se.kind == errMissing:
		return &apiError{Code: codeNotFound, Detail: se.what + " not found.", Err: err}
	case errors.As(err, &se) && se.kind == errDuplicate && se.field != "":
		return &apiError{Code: codeConflict, Detail: "A " + strings.ToLower(se.what) + " with this " + se.field + " already exists.",
			Fields: []fieldError{{Field: se.field, Message: "is already in use"}}, Err: err}
	case errors.As(err, &se) && se.kind == errDuplicate:
		return &apiError{Code: codeConflict, Detail: se.what + " already exists.", Err: err}
	case errors.As(err, &se) && se.kind == errStoreDown:
		return unavailable(err)
	case errors.As(err, &stale) && stale.missing:
		return &apiError{Code: codePreconditionReq, ETag: etag(stale.current),
			Detail: "Send If-Match with the ETag you last read (IF_MATCH_REQUIRED is on), so a change made meanwhile is not overwritten."}
	case errors.As(err, &stale):
		return &apiError{Code: codePrecondition, ETag: etag(stale.current),
			Detail: "It was changed since you read it: If-Match does not name its current version. Read it again (its ETag is in this answer), then reapply your change."}
	case errors.Is(err, errKeyTaken):
		return errKeyInProgress
	}
	return &apiError{Code: codeInternal, Detail: "Something went wrong on our side; the request_id identifies it in our logs.", Err: err}
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
	MFAToken  string       `json:"mfa_token,omitempty"`
}

// problemOf is the document for e, answered to a request for path.
func problemOf(e *apiError, path, requestID string) problem {
	status := e.Code.status()
	return problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    e.Detail,
		Instance:  path,
		Code:      e.Code,
		RequestID: requestID,
		Errors:    e.Fields,
		MFAToken:  e.MFAToken,
	}
}

// ceilSeconds rounds a wait up, so a client that waits that long is let in.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// exitError carries the process exit code: 2 for bad configuration, 1 for
// everything else.
type exitError struct {
	code   int
	logged bool // the JSON log already has a line for it
	err    error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
