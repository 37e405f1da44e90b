package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Security events are log lines with msg "audit" and an event name, naming
// the actor's and the target's user ids, the client IP and (through the
// request's context) the request_id. A flood of one event from one client
// network is summarised: the first auditBurst lines of a minute are
// written, the rest counted and reported in one summary line when the
// minute ends, naming the event, the network and how many lines it stands
// for. A flood cannot blind the trail: when the table of counts is full,
// finished windows are summarised and forgotten, and if that frees no
// room, a newcomer's line is written as it is, never folded into someone
// else's count.

const (
	auditBurst   = 10
	auditWindow  = time.Minute
	auditMaxKeys = 10_000
)

// auditor writes audit events.
type auditor struct {
	logger  *slog.Logger
	now     func() time.Time
	revoked func(reason string, n int64) // sessions ended, for metrics
	mu      sync.Mutex
	counts  map[auditKey]*auditCount
	maxKeys int
}

type auditKey struct{ event, network string }

type auditCount struct {
	start      time.Time
	written    int
	suppressed int
}

func newAuditor(logger *slog.Logger, now func() time.Time) *auditor {
	return &auditor{logger: logger, now: now, counts: map[auditKey]*auditCount{}, maxKeys: auditMaxKeys}
}

// record writes one event about the request r. actorID is who acted ("" for
// an anonymous caller), targetID the account acted on.
func (a *auditor) record(r *http.Request, event, actorID, targetID string, attrs ...slog.Attr) {
	clientIP := ""
	if st := stateFrom(r.Context()); st != nil {
		clientIP = st.clientIP
	}
	if !a.admit(event, clientIP) {
		return
	}
	all := append([]slog.Attr{
		slog.String("event", event),
		slog.String("actor_id", actorID),
		slog.String("target_id", targetID),
		slog.String("client_ip", clientIP),
	}, attrs...)
	a.logger.LogAttrs(r.Context(), slog.LevelInfo, "audit", all...)
}

// sessionsRevoked records sessions ended before their expiry, for reason.
func (a *auditor) sessionsRevoked(r *http.Request, reason, actorID, targetID string, n int64) {
	if n == 0 {
		return
	}
	a.countRevoked(reason, n)
	a.record(r, "session.revoked", actorID, targetID, slog.String("reason", reason), slog.Int64("count", n))
}

// countRevoked counts sessions ended for reason in the metrics, without an
// event of their own (logout is its own event).
func (a *auditor) countRevoked(reason string, n int64) {
	if a.revoked != nil {
		a.revoked(reason, n)
	}
}

// admit reports whether one more line of event from clientIP's network is
// written in this window; otherwise it is counted for the summary.
func (a *auditor) admit(event, clientIP string) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	key := auditKey{event, clientNetwork(clientIP)}
	c, ok := a.counts[key]
	if !ok && len(a.counts) >= a.maxKeys {
		a.summariseFinished(now)
		if len(a.counts) >= a.maxKeys {
			return true // no room to count it: write it, rather than merge it into a stranger's count
		}
	}
	if !ok || now.Sub(c.start) >= auditWindow {
		if ok && c.suppressed > 0 {
			a.summarise(key, c)
		}
		c = &auditCount{start: now}
		a.counts[key] = c
	}
	if c.written < auditBurst {
		c.written++
		return true
	}
	c.suppressed++
	return false
}

// sweep writes the summaries of windows that ended and forgets them; main
// runs it every minute.
func (a *auditor) sweep(context.Context) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.summariseFinished(now)
}

// summariseFinished summarises and forgets the windows that ended by now.
func (a *auditor) summariseFinished(now time.Time) {
	for key, c := range a.counts {
		if now.Sub(c.start) >= auditWindow {
			if c.suppressed > 0 {
				a.summarise(key, c)
			}
			delete(a.counts, key)
		}
	}
}

// summarise writes the line that stands for the suppressed lines of key's
// window.
func (a *auditor) summarise(key auditKey, c *auditCount) {
	a.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit",
		slog.String("event", key.event),
		slog.Bool("summary", true),
		slog.String("client_network", key.network),
		slog.Int("suppressed", c.suppressed),
		slog.Int("written", c.written),
		slog.Time("window_start", c.start),
	)
}
