package main

import (
	"context"
	"io"
	"log/slog"
)

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
