package main

import (
	"context"
	"net/http"
	"sync/atomic"
)

// requestState is what the middleware learns about one request, shared by
// pointer through the context so inner layers can add to it (the user, an
// internal error) and the access log line reports it once.
type requestState struct {
	id          string
	idHeader    [1]string // backs the X-Request-ID header value without an allocation
	traceID     string
	clientIP    string
	route       string // the matched ServeMux pattern
	userID      string
	user        *user  // set by requireUser
	sessionHash []byte // the presented token's hash, for logout
	sessionID   string // the presented session's public id
	err         error  // internal cause of a 5xx, for the log only
	stack       []byte // set when a panic was recovered
	clientGone  bool   // the client left before the answer: logged as 499

	// Every rate-limit decision of the request: the headers describe the
	// one closest to running out.
	limits []limitDecision

	// Allocated with the state, so a request's bookkeeping is one
	// allocation: the context that carries it, and the access log's writer.
	ctx    stateContext
	writer statusWriter
}

type stateKey struct{}

func withState(ctx context.Context, st *requestState) context.Context {
	st.ctx = stateContext{Context: ctx, st: st}
	return &st.ctx
}

// stateContext is context.WithValue for the one key, kept inside the state
// it carries instead of allocated beside it.
type stateContext struct {
	context.Context
	st *requestState
}

func (c *stateContext) Value(key any) any {
	if key == (stateKey{}) {
		return c.st
	}
	return c.Context.Value(key)
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// currentUser is the user requireUser let in.
func currentUser(r *http.Request) user { return *stateFrom(r.Context()).user }

// statusWriter remembers what was sent, for the access log and for
// recover. From SIGTERM on (draining), it adds "Connection: close" to every
// answer as the answer starts, so a proxy's keep-alive connections end
// after their next response, cleanly, while the replica still serves: by
// the time it stops accepting, no proxy is about to send a request on a
// connection it is closing. Deciding when the answer starts, not when the
// request arrived, covers a request that was already running at SIGTERM.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	draining *atomic.Bool // nil: never closes
}

// start is called once, before the first byte of the answer.
func (w *statusWriter) start(code int) {
	w.status = code
	if w.draining != nil && w.draining.Load() {
		w.Header().Set("Connection", "close")
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.start(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.start(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The route labels of what the catch-all answers: never the catch-all's
// own "/" pattern, so a wrong method on an API path is not counted as a
// page of the frontend.
const (
	routeUnmatched = "unmatched" // a 404 or 405
	routeFrontend  = "frontend"  // a page or asset, served in development
)
