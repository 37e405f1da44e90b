package main

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"net/netip"
	"sync"
	"time"
)

// limitStore keeps the counts. take judges one request for key under p and,
// when consume is set and it is allowed, counts it; a refused request is
// never counted. giveBack uncounts one request taken earlier (a login
// failure reserved before hashing, for a password that proved right).
type limitStore interface {
	take(ctx context.Context, p *policy, key string, now time.Time, consume bool) (limitDecision, error)
	giveBack(ctx context.Context, p *policy, key string, now time.Time) error
	sweep(ctx context.Context, now time.Time) error
}

// memoryStore is the single-replica store: a table per policy.
type memoryStore struct {
	tables map[*policy]*memoryTable // fixed at construction; read without a lock
}

// memoryTable caps its keys at maxKeys, so a flood of fresh addresses cannot
// exhaust memory. When it is full, a new key takes the place of a tracked
// key that has spent at most half its limit (such a key loses little by
// starting over); a key over half its limit is never dropped early, so a
// flood cannot reset an attacker's count. When no such place is found, the
// new key is judged by its network's shared count (IPv4 /16, IPv6 /32):
// a flood from one network crowds out only its own network. Policies keyed
// by account (overflowPasses) share with nobody: an untracked account
// passes uncounted and is limited by the per-IP budgets alone, so failed
// logins for made-up accounts cannot lock real ones out.
type memoryTable struct {
	maxKeys  int
	mu       sync.Mutex
	counts   map[string]windowCount
	overflow map[string]windowCount // by network; at most maxOverflowNetworks
}

const (
	// evictionProbes is how many tracked keys a full table looks at, in the
	// map's random order, for one light enough to give up its place.
	evictionProbes = 8
	// maxOverflowNetworks bounds the networks' shared counts; past it (an
	// IPv6 flood from more /32s than that) the rest share one count.
	maxOverflowNetworks = 65_536
)

func newMemoryStore(maxKeys int, policies ...*policy) *memoryStore {
	s := &memoryStore{tables: map[*policy]*memoryTable{}}
	for _, p := range policies {
		s.tables[p] = &memoryTable{maxKeys: maxKeys, counts: map[string]windowCount{}, overflow: map[string]windowCount{}}
	}
	return s
}

func (s *memoryStore) take(_ context.Context, p *policy, key string, now time.Time, consume bool) (limitDecision, error) {
	t := s.tables[p]
	idx, elapsed := p.windowIndex(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	c, tracked := t.counts[key]
	if !tracked && len(t.counts) >= t.maxKeys && !(consume && t.evictLight(p, idx, elapsed)) {
		return t.takeOverflow(p, key, idx, elapsed, consume), nil
	}
	c = c.at(idx)
	d := p.decide(c, elapsed)
	if consume && d.allowed {
		c.curr++
		t.counts[key] = c
	}
	return d, nil
}

// evictLight drops one tracked key that has spent at most half its limit,
// of the first evictionProbes the map's random order gives, so nobody can
// pick whose place it is.
func (t *memoryTable) evictLight(p *policy, idx int64, elapsed time.Duration) bool {
	probes := 0
	for key, c := range t.counts {
		if 2*p.estimate(c.at(idx), elapsed) <= float64(p.limit) {
			delete(t.counts, key)
			return true
		}
		if probes++; probes == evictionProbes {
			return false
		}
	}
	return false
}

// takeOverflow judges a key the full table does not track.
func (t *memoryTable) takeOverflow(p *policy, key string, idx int64, elapsed time.Duration, consume bool) limitDecision {
	if p.overflowPasses {
		return limitDecision{policy: p, allowed: true, remaining: p.limit - 1, reset: p.window - elapsed}
	}
	network := overflowNetwork(key)
	c, ok := t.overflow[network]
	if !ok && len(t.overflow) >= maxOverflowNetworks {
		network = "*"
		c = t.overflow[network]
	}
	c = c.at(idx)
	d := p.decide(c, elapsed)
	if consume && d.allowed {
		c.curr++
		t.overflow[network] = c
	}
	return d
}

// overflowNetwork is the network whose clients share a count when the
// table is full: the /16 of an IPv4 key, the /32 of an IPv6 one.
func overflowNetwork(key string) string {
	if a, err := netip.ParseAddr(key); err == nil && a.Is4() {
		p, _ := a.Prefix(16)
		return p.String()
	}
	if p, err := netip.ParsePrefix(key); err == nil {
		p, _ = p.Addr().Prefix(32)
		return p.String()
	}
	return "*"
}

func (s *memoryStore) giveBack(_ context.Context, p *policy, key string, now time.Time) error {
	t := s.tables[p]
	idx, _ := p.windowIndex(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.counts[key]; ok {
		t.counts[key] = c.giveBack(idx)
	}
	return nil
}

// giveBack uncounts one request made in window idx or the one before: the
// current count holds it unless the window rolled since.
func (c windowCount) giveBack(idx int64) windowCount {
	switch {
	case c.index >= idx-1 && c.curr > 0:
		c.curr--
	case c.index == idx && c.prev > 0:
		c.prev--
	}
	return c
}

// sweep drops keys whose windows have both passed: they weigh nothing.
func (s *memoryStore) sweep(_ context.Context, now time.Time) error {
	for p, t := range s.tables {
		idx, _ := p.windowIndex(now)
		t.mu.Lock()
		maps.DeleteFunc(t.counts, func(_ string, c windowCount) bool { return c.index < idx-1 })
		maps.DeleteFunc(t.overflow, func(_ string, c windowCount) bool { return c.index < idx-1 })
		t.mu.Unlock()
	}
	return nil
}

func (s *memoryStore) len(p *policy) int {
	t := s.tables[p]
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.counts)
}

// postgresStore shares the counts between replicas. One statement per
// check, under the row lock of INSERT ... ON CONFLICT, so concurrent checks
// from any replica never let more than the limit through.
type postgresStore struct {
	db       *sql.DB
	policies []*policy
}

// takeSQL moves the row to window $3, adds one when the request fits
// ($4 is the previous window's weight, $5 the limit, $6 whether to count)
// and says whether it counted. The CASEs are the window roll of
// windowCount.at; SET sees the row as it was.
const takeSQL = `
INSERT INTO rate_limits AS r (policy, key, win, curr, prev, counted)
VALUES ($1, $2, $3, CASE WHEN $6 AND 1 <= $5 THEN 1 ELSE 0 END, 0, $6 AND 1 <= $5)
ON CONFLICT (policy, key) DO UPDATE SET
	win     = $3,
	prev    = CASE WHEN r.win = $3 THEN r.prev WHEN r.win = $3 - 1 THEN r.curr ELSE 0 END,
	curr    = CASE WHEN r.win = $3 THEN r.curr ELSE 0 END
	        + CASE WHEN $6 AND (CASE WHEN r.win = $3 THEN r.prev WHEN r.win = $3 - 1 THEN r.curr ELSE 0 END) * $4::float8
	                         + (CASE WHEN r.win = $3 THEN r.curr ELSE 0 END) + 1 <= $5 THEN 1 ELSE 0 END,
	counted = $6 AND (CASE WHEN r.win = $3 THEN r.prev WHEN r.win = $3 - 1 THEN r.curr ELSE 0 END) * $4::float8
	                 + (CASE WHEN r.win = $3 THEN r.curr ELSE 0 END) + 1 <= $5
RETURNING curr, prev, counted`

func (s *postgresStore) take(ctx context.Context, p *policy, key string, now time.Time, consume bool) (limitDecision, error) {
	idx, elapsed := p.windowIndex(now)
	if !consume {
		var c windowCount
		err := s.db.QueryRowContext(ctx, `SELECT win, curr, prev FROM rate_limits WHERE policy = $1 AND key = $2`, p.name, key).
			Scan(&c.index, &c.curr, &c.prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return limitDecision{}, err
		}
		return p.decide(c.at(idx), elapsed), nil
	}
	weight := float64(p.window-elapsed) / float64(p.window)
	c := windowCount{index: idx}
	var counted bool
	err := s.db.QueryRowContext(ctx, takeSQL, p.name, key, idx, weight, p.limit, consume).Scan(&c.curr, &c.prev, &counted)
	if err != nil {
		return limitDecision{}, err
	}
	if counted {
		c.curr-- // judge the state this request found
	}
	d := p.decide(c, elapsed)
	d.allowed = counted // the database's word, made under its row lock
	return d, nil
}

// giveBack is windowCount.giveBack in one statement.
func (s *postgresStore) giveBack(ctx context.Context, p *policy, key string, now time.Time) error {
	idx, _ := p.windowIndex(now)
	_, err := s.db.ExecContext(ctx, `
		UPDATE rate_limits SET
			curr = CASE WHEN curr > 0 THEN curr - 1 ELSE curr END,
			prev = CASE WHEN curr = 0 AND win = $3 AND prev > 0 THEN prev - 1 ELSE prev END
		WHERE policy = $1 AND key = $2 AND win >= $3 - 1`, p.name, key, idx)
	return err
}

func (s *postgresStore) sweep(ctx context.Context, now time.Time) error {
	for _, p := range s.policies {
		idx, _ := p.windowIndex(now)
		if _, err := s.db.ExecContext(ctx, `DELETE FROM rate_limits WHERE policy = $1 AND win < $2`, p.name, idx-1); err != nil {
			return err
		}
	}
	return nil
}
