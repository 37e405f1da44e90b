package main

import (
	"math"
	"time"
)

// The limiter is a weighted two-window counter: each key keeps the count of
// the current fixed window and of the one before, and the estimate is
// prev × (share of the previous window still inside the sliding window) +
// curr. It needs two integers per key whatever the limit (a timestamp log
// needs one entry per request), it slides smoothly instead of letting a
// burst through at each window edge, and its error is bounded: it assumes
// the previous window's requests were spread evenly.

// policy is one budget: limit requests per window per key.
type policy struct {
	name   string
	limit  int
	window time.Duration
	// overflowPasses: the policy is keyed by account, so when the memory
	// table is full an untracked key passes uncounted instead of sharing a
	// count (see memoryTable); the per-IP auth policy still limits it.
	overflowPasses bool
}

// windowCount is one key's state.
type windowCount struct {
	index int64 // the fixed window curr counts, as now / window
	curr  int32
	prev  int32
}

// at returns the counts as seen from fixed window idx.
func (c windowCount) at(idx int64) windowCount {
	switch c.index {
	case idx:
		return c
	case idx - 1:
		return windowCount{index: idx, prev: c.curr}
	default:
		return windowCount{index: idx}
	}
}

func (p *policy) windowIndex(now time.Time) (idx int64, elapsed time.Duration) {
	n := now.UnixNano()
	w := int64(p.window)
	idx = n / w
	return idx, time.Duration(n - idx*w) // one division, not two
}

// limitDecision is the answer for one request and the headers' content.
type limitDecision struct {
	policy     *policy
	allowed    bool
	remaining  int
	reset      time.Duration // when the client may send again (denied) or the window rolls (allowed)
	retryAfter time.Duration
}

// decide judges one more request against c, already moved to the current
// window, elapsed into it. It runs on every check, so the allowed path is a
// few float operations and nothing else.
func (p *policy) decide(c windowCount, elapsed time.Duration) limitDecision {
	left := float64(p.limit) - p.estimate(c, elapsed) - 1
	if left >= 0 {
		return limitDecision{policy: p, allowed: true, remaining: int(left), reset: p.window - elapsed}
	}
	wait := p.wait(c, elapsed)
	return limitDecision{policy: p, reset: wait, retryAfter: wait}
}

// estimate is the sliding window's count: the previous window weighted by
// the share of it still inside the window, plus the current one.
func (p *policy) estimate(c windowCount, elapsed time.Duration) float64 {
	w := float64(p.window)
	return float64(c.prev)*(w-float64(elapsed))/w + float64(c.curr)
}

// wait is how long until one more request fits. Within the current window
// the previous window's weight decays linearly; if that is not enough, the
// window rolls and the current count starts to decay in turn. So a wait can
// exceed one window, never two.
func (p *policy) wait(c windowCount, elapsed time.Duration) time.Duration {
	w := float64(p.window)
	limit := float64(p.limit)
	left := w - float64(elapsed)
	if c.prev > 0 && float64(c.curr)+1 <= limit {
		t := left - w*(limit-1-float64(c.curr))/float64(c.prev)
		return time.Duration(math.Ceil(max(t, 1)))
	}
	after := 0.0
	if float64(c.curr) > limit-1 {
		after = w * (1 - (limit-1)/float64(c.curr))
	}
	return time.Duration(math.Ceil(left + after))
}
