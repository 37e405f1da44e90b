package main

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

// The plumbing every handler uses: request headers by canonical key, the
// handler type that returns its error, strict decoding, optional fields,
// paging, path ids and the one JSON writer.

// header is Header.Get for a key already in canonical form: the middleware
// runs it on every request, and Get re-canonicalises the key each time.
func header(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// apiFunc is a handler that returns its error; the error becomes a problem
// document in one place.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

func (f apiFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		writeError(w, r, err)
	}
}

// validator is implemented by request types that check their own fields;
// valid only reads its receiver.
type validator interface {
	valid() []fieldError
}

// normalizer is implemented by request types whose fields are put into
// canonical form (an email lower-cased) before they are checked.
type normalizer interface {
	normalize()
}

// decode reads one strict JSON value into T, in the contract's order of
// checks: content type (415), size (413), syntax (400), validation (422).
func decode[T any](r *http.Request) (T, error) {
	var v T
	if err := requireJSON(r); err != nil {
		return v, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return v, bodyReadError(err, "The request body could not be read.")
	}
	if err := unmarshalStrict(body, &v); err != nil {
		return v, err
	}
	return v, check(&v)
}

// requireJSON is 415 unless the body is sent as application/json.
func requireJSON(r *http.Request) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return newError(codeUnsupportedMedia, "Send the body as Content-Type: application/json.")
	}
	return nil
}

// check normalizes and validates a decoded request.
func check(v any) error {
	if n, ok := v.(normalizer); ok {
		n.normalize()
	}
	if val, ok := v.(validator); ok {
		if fields := val.valid(); len(fields) > 0 {
			return validationError(fields)
		}
	}
	return nil
}

// bodyReadError is 413 when the body passed MAX_BODY_BYTES, else a 400
// saying otherwise.
func bodyReadError(err error, otherwise string) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return newError(codeTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", tooBig.Limit))
	}
	return newError(codeBadRequest, otherwise)
}

// unmarshalStrict turns every decoding failure into a sentence a frontend
// can show: anything but one JSON object, unknown fields and trailing data
// are 400, wrong types are 422 naming the field.
func unmarshalStrict(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return newError(codeBadRequest, "The request body is empty; send a JSON object.")
	}
	if bytes.Equal(body, []byte("null")) { // encoding/json takes null as "leave v as it is"
		return newError(codeBadRequest, "The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntaxErr):
			return newError(codeBadRequest, fmt.Sprintf("The request body is not valid JSON (at byte %d).", syntaxErr.Offset))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return newError(codeBadRequest, "The request body is not valid JSON (it ends too early).")
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return newError(codeBadRequest, "The request body must be a JSON object.")
		case errors.As(err, &typeErr):
			// Our bodies are flat; the path may still name an embedded struct.
			field := typeErr.Field[strings.LastIndexByte(typeErr.Field, '.')+1:]
			return validationError([]fieldError{{Field: field, Message: "must be a " + jsonTypeName(typeErr.Type.String())}})
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return newError(codeBadRequest, "The request body has an unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field ")+".")
		default:
			return newError(codeBadRequest, "The request body could not be decoded as JSON.")
		}
	}
	if dec.More() {
		return newError(codeBadRequest, "The request body must hold a single JSON value.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(codeBadRequest, "The request body must hold a single JSON value.")
	}
	return nil
}

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "string"):
		return "string"
	case strings.Contains(goType, "bool"):
		return "boolean"
	case strings.Contains(goType, "int"):
		return "whole number in range"
	default:
		return "value of the documented type"
	}
}

// opt is a JSON field that tells "absent" from "null" from a value, so PATCH
// can clear optional fields and reject null for required ones.
type opt[T any] struct {
	Set  bool
	Null bool
	V    T
}

func (o *opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

// repeatedParams names each scalar query parameter given more than once:
// which of the values was meant cannot be guessed, and an unchecked second
// one must not slip past validation.
func repeatedParams(q url.Values, names ...string) []fieldError {
	var fields []fieldError
	for _, name := range names {
		if len(q[name]) > 1 {
			fields = append(fields, fieldError{Field: name, Message: "must be given once"})
		}
	}
	return fields
}

// flagParam reads a true-or-false query parameter, false when absent; a
// bad or repeated one is a field error naming it.
func flagParam(q url.Values, name string) (bool, []fieldError) {
	v, ok := q[name]
	switch {
	case !ok:
		return false, nil
	case len(v) > 1:
		return false, repeatedParams(q, name)
	case v[0] == "true" || v[0] == "false":
		return v[0] == "true", nil
	}
	return false, []fieldError{{Field: name, Message: "must be true or false"}}
}

// pathID is the {id} of the route, or a 404 when it is not a UUID.
func pathID(r *http.Request, what string) (string, error) {
	id := strings.ToLower(r.PathValue("id"))
	if !isUUID(id) {
		return "", errNotFound(what)
	}
	return id, nil
}

// isUUID accepts the canonical 8-4-4-4-12 hex form; anything else in a
// path is a 404, not a database error.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

const (
	contentJSON    = "application/json"
	contentProblem = "application/problem+json"
)

// writeJSON is the one place a response body is encoded: the hot types
// write themselves (encode.go), the rest go through encoding/json.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var body []byte
	if a, ok := appends(v); ok {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		body = append(a.appendJSON((*bp)[:0]), '\n')
		*bp = body
	} else {
		body = jsonBody(v)
	}
	writeBody(w, status, contentType, body)
}

// writeTagged writes a resource at version with its ETag.
func writeTagged(w http.ResponseWriter, status int, version int64, v any) {
	w.Header().Set("ETag", etag(version))
	writeJSON(w, status, contentJSON, v)
}

// jsonBody is v's JSON as writeJSON writes it (a newline after it), for an
// answer kept before it is sent (Idempotency-Key).
func jsonBody(v any) []byte {
	if a, ok := appends(v); ok {
		return append(a.appendJSON(nil), '\n')
	}
	body, err := json.Marshal(v)
	if err != nil {
		// Our own types always marshal; reaching here is a programming error.
		panic(err)
	}
	return append(body, '\n')
}

// writeBody writes an answer whose body is ready.
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// writeError answers with a problem document. Internal causes are kept on
// the request's state for the access log line, never sent; a client that
// went away is only noted for the log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if clientGone(r.Context()) {
		if st != nil {
			st.clientGone = true
		}
		return
	}
	ae := asAPIError(err)
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
	if ae.ETag != "" {
		w.Header().Set("ETag", ae.ETag)
	}
	id := ""
	if st != nil {
		id = st.id
	}
	writeJSON(w, status, contentProblem, problemOf(ae, r.URL.Path, id))
}
