package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// newServer builds the whole HTTP surface: the route table inside the
// middleware chain.
func newServer(logger *slog.Logger, cfg config, deps serverDeps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, logger, cfg, deps)
	return withMiddleware(logger, cfg, routeRecorder(mux))
}

// withMiddleware wraps h in the chain every request passes through, listed
// outermost first.
func withMiddleware(logger *slog.Logger, cfg config, h http.Handler) http.Handler {
	chain := []func(http.Handler) http.Handler{
		requestID(cfg.TrustedProxy), // the id and state exist before anything can log or fail
		accessLog(logger),           // wraps recover, so it reports the 500 and the stack once
		recoverPanics,               // a panic becomes a 500 problem
		securityHeaders,             // set before any handler (or panic) writes
		cors(cfg.CORSOrigins),       // preflights answered before rate limits and routes see them
		limitBody(cfg.MaxBodyBytes), // the cap is in place before any handler reads
	}
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	return h
}

// serverDeps are the shared pieces the handler makers draw on.
type serverDeps struct {
	health *healthState
	store  *store
	hasher *passwordHasher
	limits *rateLimits
}

func newServerDeps(logger *slog.Logger, cfg config, db *sql.DB, health *healthState, now func() time.Time) serverDeps {
	return serverDeps{
		health: health,
		store:  &store{db: db, now: now},
		hasher: newPasswordHasher(passwordIterations, runtime.GOMAXPROCS(0)),
		limits: newRateLimits(cfg.RateLimit, db, now, logger),
	}
}

// addRoutes is the whole API surface. Each route names its guards, outer
// first, in the contract's order: rate limit, then authentication and
// permission. It returns the patterns, which the spec parity test reads.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, cfg config, d serverDeps) []string {
	var patterns []string
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		patterns = append(patterns, pattern)
	}
	s, pw, rl := d.store, d.hasher, d.limits
	authLimit := rl.limit(rl.auth, true) // fails closed: these routes guard passwords
	apiLimit := rl.limit(rl.api, false)  // fails open: a limiter outage must not stop the API
	user, superuser := requireUser(s), requireSuperuser(s)

	handle("GET /api/v1/health", handleHealth(d.health))
	handle("GET /api/v1/health/live", handleLive())

	handle("POST /api/v1/auth/register", authLimit(handleRegister(s, pw)))
	handle("POST /api/v1/auth/login", authLimit(handleLogin(s, pw, rl, cfg.SessionTTL, logger)))
	handle("POST /api/v1/auth/logout", apiLimit(user(handleLogout(s))))

	handle("GET /api/v1/users/me", apiLimit(user(handleMeGet())))
	handle("PATCH /api/v1/users/me", apiLimit(user(handleMePatch(s))))
	handle("POST /api/v1/users/me/password", authLimit(user(handlePasswordChange(s, pw))))
	handle("DELETE /api/v1/users/me", apiLimit(user(handleMeDelete(s))))

	handle("GET /api/v1/users", apiLimit(superuser(handleUserList(s))))
	handle("POST /api/v1/users", apiLimit(superuser(handleUserCreate(s, pw))))
	handle("GET /api/v1/users/{id}", apiLimit(user(handleUserGet(s))))
	handle("PATCH /api/v1/users/{id}", apiLimit(superuser(handleUserPatch(s, pw))))
	handle("DELETE /api/v1/users/{id}", apiLimit(superuser(handleUserDelete(s))))

	handle("GET /api/v1/items", apiLimit(user(handleItemList(s))))
	handle("POST /api/v1/items", apiLimit(user(handleItemCreate(s))))
	handle("GET /api/v1/items/{id}", apiLimit(user(handleItemGet(s))))
	handle("PATCH /api/v1/items/{id}", apiLimit(user(handleItemPatch(s))))
	handle("DELETE /api/v1/items/{id}", apiLimit(user(handleItemDelete(s))))

	if cfg.DocsEnabled {
		handle("GET /api/v1/openapi.json", handleOpenAPI(d.health.version))
		handle("GET /docs", handleDocs())
	}
	// Everything else: a 404 or 405 problem (see handleNoRoute).
	mux.Handle("/", handleNoRoute(mux))
	return patterns
}

// apiFunc is a handler that returns its error; the error becomes a problem
// document in one place.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

func (f apiFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		writeError(w, r, err)
	}
}

// routeRecorder keeps the matched pattern for the access log: ServeMux sets
// r.Pattern on the request it receives, which outer layers do not hold.
func routeRecorder(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { stateFrom(r.Context()).route = r.Pattern }()
		mux.ServeHTTP(w, r)
	})
}

// limitBody caps every request body; decode turns the overflow into a 413.
func limitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// handleNoRoute answers every request no pattern matched. A catch-all route
// hides ServeMux's own 405, so the allowed methods are found by asking the
// mux about the same path with each method.
func handleNoRoute(mux *http.ServeMux) http.Handler {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		var allow []string
		for _, m := range methods {
			probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return newError(codeMethodNotAllowed, fmt.Sprintf("Method %s is not allowed here; use %s.", r.Method, strings.Join(allow, ", ")))
		}
		return newError(codeNotFound, "No such route.")
	})
}

// validator is implemented by request types that check their own fields.
type validator interface {
	valid() []fieldError
}

// decode reads one strict JSON value into T, in the contract's order of
// checks: content type (415), size (413), syntax (400), validation (422).
func decode[T any](r *http.Request) (T, error) {
	var v T
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return v, newError(codeUnsupportedMedia, "Send the body as Content-Type: application/json.")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return v, bodyReadError(err, "The request body could not be read.")
	}
	if err := unmarshalStrict(body, &v); err != nil {
		return v, err
	}
	if val, ok := any(&v).(validator); ok {
		if fields := val.valid(); len(fields) > 0 {
			return v, validationError(fields)
		}
	}
	return v, nil
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
// can show: unknown fields and trailing data are 400, wrong types are 422
// naming the field.
func unmarshalStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(codeBadRequest, "The request body is empty; send a JSON object.")
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

// page is the query of a list endpoint.
type page struct{ limit, offset int }

// pageFrom reads limit (1..100, default 20) and offset (>= 0).
func pageFrom(r *http.Request) (page, error) {
	p := page{limit: 20}
	q := r.URL.Query()
	var fields []fieldError
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > 100 {
			fields = append(fields, fieldError{Field: "limit", Message: "must be a whole number from 1 to 100"})
		}
		p.limit = n
	}
	if s, ok := q["offset"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 0 {
			fields = append(fields, fieldError{Field: "offset", Message: "must be a whole number of 0 or more"})
		}
		p.offset = n
	}
	if len(fields) > 0 {
		return p, validationError(fields)
	}
	return p, nil
}

// listPage is the contract's Page shape.
type listPage[T any] struct {
	Data  []T `json:"data"`
	Count int `json:"count"`
}

func encode(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, "application/json", v)
}
