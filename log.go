package main

import (
	"context"
	"io"
	"log/slog"
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
	user        *user          // set by requireUser
	sessionHash []byte         // the presented token's hash, for logout
	limit       *limitDecision // the rate-limit policy closest to running out
	err         error          // internal cause of a 5xx, for the log only
	stack       []byte         // set when a panic was recovered
}

type stateKey struct{}

func withState(ctx context.Context, st *requestState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// contextHandler adds request_id and trace_id to every record logged with a
// request's context, whichever file logs it.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if st := stateFrom(ctx); st != nil {
		r.AddAttrs(slog.String("request_id", st.id))
		if st.traceID != "" {
			r.AddAttrs(slog.String("trace_id", st.traceID))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// newLogger writes JSON lines at the given level.
func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}
