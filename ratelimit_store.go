package main

import (
	"context"
	"database/sql"
	"errors"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
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
	tables []*memoryTable // fixed at construction; read without a lock
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
//
// The keys are spread over shards, each under its own mutex, so parallel
// checks on different keys rarely wait for each other; size, shared by the
// shards, keeps the cap exact.
type memoryTable struct {
	policy     *policy
	maxKeys    int64
	size       atomic.Int64
	seed       maphash.Seed
	shards     [memoryShards]memoryShard
	overflowMu sync.Mutex
	overflow   map[string]windowCount // by network; at most maxOverflowNetworks
}

const (
	memoryShards = 32
	// evictionProbes is how many keys of a shard a full table looks at for
	// one light enough to give up its place.
	evictionProbes = 8
	// maxOverflowNetworks bounds the networks' shared counts; past it (an
	// IPv6 flood from more /32s than that) the rest share one count.
	maxOverflowNetworks = 65_536
)

// A shard keys its counts by the key's 64-bit seeded hash, not the string:
// no key is stored or compared, so a check is one probe of an integer.
// Two of 100,000 keys share a hash with a probability of about 5e-10, and
// the seed is secret, so nobody can aim a collision.
type memoryShard struct {
	mu     sync.Mutex
	counts countTable
	_      [24]byte // keeps neighbouring shards' mutexes off one cache line
}

func newMemoryStore(maxKeys int, policies ...*policy) *memoryStore {
	s := &memoryStore{tables: make([]*memoryTable, 0, len(policies))}
	for _, p := range policies {
		t := &memoryTable{policy: p, maxKeys: int64(maxKeys), seed: maphash.MakeSeed(), overflow: map[string]windowCount{}}
		for i := range t.shards {
			t.shards[i].counts = newCountTable(minCountSlots)
		}
		s.tables = append(s.tables, t)
	}
	return s
}

// table is p's table. A scan of a handful of pointers is cheaper than a
// map lookup by name, and a policy is known by its address.
func (s *memoryStore) table(p *policy) *memoryTable {
	for _, t := range s.tables {
		if t.policy == p {
			return t
		}
	}
	panic("rate limit: no table for policy " + p.name)
}

// slot is the shard and the in-shard key of key.
func (t *memoryTable) slot(key string) (*memoryShard, uint64) {
	h := maphash.String(t.seed, key)
	return &t.shards[h>>59], hashKey(h) // the top 5 bits pick one of the 32 shards
}

func (s *memoryStore) take(_ context.Context, p *policy, key string, now time.Time, consume bool) (limitDecision, error) {
	t := s.table(p)
	idx, elapsed := p.windowIndex(now)
	sh, h := t.slot(key)
	sh.mu.Lock()
	slot, tracked := sh.counts.find(h)
	if !tracked && !t.reserve(consume) && !(consume && sh.evictLight(p, h, idx, elapsed)) {
		sh.mu.Unlock()
		return t.takeOverflow(p, key, idx, elapsed, consume), nil
	}
	var c windowCount
	if tracked {
		c = slot.c.at(idx)
	} else {
		c = windowCount{index: idx}
	}
	d := p.decide(c, elapsed)
	switch {
	case consume && d.allowed && tracked:
		slot.c = windowCount{index: c.index, curr: c.curr + 1, prev: c.prev}
	case consume && d.allowed:
		sh.counts.insert(h, windowCount{index: c.index, curr: 1})
	case consume && !tracked:
		t.size.Add(-1) // room was made, but the request was refused: nothing stored
	}
	sh.mu.Unlock()
	return d, nil
}

// reserve claims room for a new key when the request may be stored (a peek
// only asks whether there is room).
func (t *memoryTable) reserve(consume bool) bool {
	for {
		n := t.size.Load()
		if n >= t.maxKeys {
			return false
		}
		if !consume || t.size.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// evictLight drops one key of the shard that has spent at most half its
// limit, leaving its room (size unchanged) to the caller's new key h.
func (sh *memoryShard) evictLight(p *policy, h uint64, idx int64, elapsed time.Duration) bool {
	return sh.counts.removeFirst(h, evictionProbes, func(c windowCount) bool {
		return 2*p.estimate(c.at(idx), elapsed) <= float64(p.limit)
	})
}

// takeOverflow judges a key the full table does not track.
func (t *memoryTable) takeOverflow(p *policy, key string, idx int64, elapsed time.Duration, consume bool) limitDecision {
	if p.overflowPasses {
		return limitDecision{policy: p, allowed: true, remaining: p.limit - 1, reset: p.window - elapsed}
	}
	network := overflowNetwork(key)
	t.overflowMu.Lock()
	defer t.overflowMu.Unlock()
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
	t := s.table(p)
	idx, _ := p.windowIndex(now)
	sh, h := t.slot(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if slot, ok := sh.counts.find(h); ok {
		slot.c = slot.c.giveBack(idx)
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
	for _, t := range s.tables {
		idx, _ := t.policy.windowIndex(now)
		for i := range t.shards {
			sh := &t.shards[i]
			sh.mu.Lock()
			dropped := sh.counts.keep(func(c windowCount) bool { return c.index >= idx-1 })
			sh.mu.Unlock()
			t.size.Add(-int64(dropped))
		}
		t.overflowMu.Lock()
		for network, c := range t.overflow {
			if c.index < idx-1 {
				delete(t.overflow, network)
			}
		}
		t.overflowMu.Unlock()
	}
	return nil
}

func (s *memoryStore) len(p *policy) int {
	return int(s.table(p).size.Load())
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
