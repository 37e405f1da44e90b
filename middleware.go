package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// requestID gives every request its state and an id: the caller's when it
// is safe to echo and log, else 128 fresh random bits.
func requestID(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := &requestState{
				id:       header(r.Header, "X-Request-Id"),
				traceID:  traceIDFrom(header(r.Header, "Traceparent")),
				clientIP: clientIP(r, trusted),
			}
			if !validRequestID(st.id) {
				st.id = newRequestID()
			}
			st.idHeader[0] = st.id
			w.Header()["X-Request-Id"] = st.idHeader[:]
			next.ServeHTTP(w, r.WithContext(withState(r.Context(), st)))
		})
	}
}

func validRequestID(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID is 128 random bits in hex. An id names a request in the
// logs and is no secret, so it comes from math/rand/v2's generator
// (ChaCha8, seeded by the system, one per thread: a few nanoseconds, where
// the system's getrandom took about a hundred).
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// traceIDFrom returns the trace id of a valid W3C traceparent
// (version-traceid-parentid-flags), or "" for anything else.
func traceIDFrom(h string) string {
	if len(h) < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return ""
	}
	version, traceID, parentID, flags := h[0:2], h[3:35], h[36:52], h[53:55]
	if !isLowerHex(version) || version == "ff" || !isLowerHex(traceID) || !isLowerHex(parentID) || !isLowerHex(flags) {
		return ""
	}
	// Version 00 is exactly 55 characters; later versions may append fields.
	if (version == "00" && len(h) != 55) || (len(h) > 55 && h[55] != '-') {
		return ""
	}
	if strings.Trim(traceID, "0") == "" || strings.Trim(parentID, "0") == "" {
		return ""
	}
	return traceID
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// accessLog writes the one line per request that ops read and alert on,
// and counts it in the metrics.
func accessLog(logger *slog.Logger, m *metrics, life *healthState) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			m.inFlight.Add(1)
			defer m.inFlight.Add(-1) // after the line: a drain waiting on it sees the line written
			st := stateFrom(r.Context())
			sw := &st.writer
			sw.ResponseWriter = w
			if life != nil {
				sw.draining = &life.draining
			}
			next.ServeHTTP(sw, r)
			cutOff := st.clientGone && life != nil && life.cutOff.Load()
			switch {
			case cutOff:
				sw.status = http.StatusServiceUnavailable // the client got nothing: ours to fix
				st.err = errors.New("cut off at the shutdown timeout")
			case st.clientGone:
				sw.status = statusClientGone
			case sw.status == 0:
				sw.start(http.StatusOK) // nothing written: net/http sends a 200 after us, with these headers
			}
			took := time.Since(start) // one monotonic clock read, where time.Now takes two
			end := start.Add(took)
			if st.route == "" {
				st.route = routeUnmatched // answered before the mux (a preflight, a refusal): bounded, never the raw path
			}
			m.observe(st.route, r.Method, sw.status, took)
			// Levels are for alerting: a 5xx is ours to fix; 4xx answers,
			// 429s and clients that left are the clients' business.
			level := slog.LevelInfo
			switch {
			case isHealthPath(r.URL.Path):
				level = slog.LevelDebug
			case sw.status >= 500:
				level = slog.LevelError
			}
			if !logger.Enabled(r.Context(), level) {
				return
			}
			// request_id and trace_id come from the context, as on every line.
			var attrs [12]slog.Attr
			as := append(attrs[:0],
				slog.String("method", r.Method),
				slog.String("route", st.route),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(took.Microseconds())/1000),
				slog.String("client_ip", st.clientIP),
				slog.String("user_agent", header(r.Header, "User-Agent")),
			)
			if st.userID != "" {
				as = append(as, slog.String("user_id", st.userID))
			}
			if st.err != nil {
				as = append(as, slog.String("error", st.err.Error()))
			}
			if cutOff {
				as = append(as, slog.Bool("cut_off", true))
			}
			if st.stack != nil {
				as = append(as, slog.String("stack", string(st.stack)))
			}
			writeLine(r.Context(), logger, end, level, "request", as)
		})
	}
}

// writeLine logs one line of attributes: through our handler without a
// slog.Record (which allocates past five attributes), else as a record. It
// is not Logger.LogAttrs, which would walk the stack for a source location
// no line carries.
func writeLine(ctx context.Context, logger *slog.Logger, t time.Time, level slog.Level, msg string, as []slog.Attr) {
	if h, ok := logger.Handler().(*jsonHandler); ok {
		h.handleAttrs(ctx, t, level, msg, as)
		return
	}
	rec := slog.NewRecord(t, level, msg, 0)
	rec.AddAttrs(as...)
	logger.Handler().Handle(ctx, rec)
}

// statusClientGone is nginx's word for a client that closed the request
// before the answer: logged, never sent.
const statusClientGone = 499

func isHealthPath(p string) bool {
	return p == "/api/v1/health" || p == "/api/v1/health/live"
}

// recoverPanics turns a panic into a 500 problem; the stack goes into the
// access line, so it is logged once, with the request_id.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // the server's own way to drop a connection
			}
			st := stateFrom(r.Context())
			st.stack = debug.Stack()
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				st.err = fmt.Errorf("panic after the response started: %v", v)
				return
			}
			writeError(w, r, fmt.Errorf("panic: %v", v))
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the contract's headers before anything is written,
// so errors and panics carry them too. The keys are already canonical and
// the one-element values are shared, read-only: assigning them directly
// spares a parse and an allocation per header on every request (a later
// Add appends to a copy, since each slice is full).
func securityHeaders(next http.Handler) http.Handler {
	headers := []struct {
		key   string
		value []string
	}{
		{"Cache-Control", []string{"no-store"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Content-Security-Policy", []string{apiCSP}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Cross-Origin-Resource-Policy", []string{"same-origin"}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range headers {
			h[kv.key] = kv.value
		}
		next.ServeHTTP(w, r)
	})
}

const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// csrf refuses a change carried by the browser's session cookie that does
// not come from the frontend's own origin (OWASP's CSRF cheat sheet, Fetch
// Metadata): an unsafe method with the cookie (or a login asking for one,
// ?session=cookie) and no bearer token must say Sec-Fetch-Site same-origin
// (or none: typed by the person), or, from a browser too old to send that
// header, carry an Origin equal to FRONTEND_URL's. Anything else is 403
// csrf, before the route reads or writes anything: a limiter, a session,
// a body. SameSite=Strict already keeps other sites' pages from sending the
// cookie; this holds when a browser or a sibling subdomain does not.
func csrf(frontendURL string) func(http.Handler) http.Handler {
	origin := ""
	if u, err := url.Parse(frontendURL); err == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	refused := newError(codeCSRF, "This change came from another site, so it was refused. Open the app itself and try again.")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if safeMethod(r.Method) || r.Header.Get("Authorization") != "" {
				next.ServeHTTP(w, r)
				return
			}
			if !hasSessionCookie(r) && r.URL.Query().Get("session") != "cookie" {
				next.ServeHTTP(w, r)
				return
			}
			switch site := r.Header.Get("Sec-Fetch-Site"); {
			case site == "same-origin" || site == "none":
			case site == "" && origin != "" && r.Header.Get("Origin") == origin:
			default:
				writeError(w, r, refused)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// cors lets the listed frontends call the API from a browser. The bearer
// token travels in a header; the session cookie is for the frontend's own
// origin only, so credentials are never allowed.
func cors(allowed []string) func(http.Handler) http.Handler {
	varyOrigin := []string{"Origin"}
	origins := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		origins[strings.TrimSuffix(o, "/")] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			if _, set := h["Vary"]; set {
				h.Add("Vary", "Origin")
			} else {
				h["Vary"] = varyOrigin // full slice: a later Add copies it
			}
			origin := header(r.Header, "Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			ok := origins[origin] || origins["*"]
			preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
			if preflight {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if !ok {
					writeError(w, r, newError(codeForbidden, "Origin "+strconv.Quote(origin)+" is not allowed; add it to CORS_ALLOWED_ORIGINS."))
					return
				}
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID, Traceparent")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if ok {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Expose-Headers", "X-Request-ID, Location, Retry-After, RateLimit, RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset")
			}
			next.ServeHTTP(w, r)
		})
	}
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
