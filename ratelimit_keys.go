package main

import "math"

// countTable is one shard's counts, keyed by a key's 64-bit hash: an open
// addressing table with linear probing in one flat slice. A check touches
// the one cache line holding its slot (a Go map reads a control word, a
// slot in another line, and hashes the key again to store), and finds the
// slot once, so the count is updated in place.
//
// A slot whose hash is 0 is free; hashes are stored with the low bit set
// (hashKey), so none is 0. The table grows by half when three quarters of
// it is used, so it stays between half and three quarters full after the
// first growth: 32 to 48 bytes a key. The owner's mutex guards it.
type countTable struct {
	slots []countSlot
	used  int
}

type countSlot struct {
	h uint64
	c windowCount
}

const minCountSlots = 16

func newCountTable(capacity int) countTable {
	return countTable{slots: make([]countSlot, capacity)}
}

// hashKey makes a hash a valid, non-zero table key.
func hashKey(h uint64) uint64 { return h | 1 }

// home is where h's probe starts: its low 32 bits scaled to the length, so
// the length need not be a power of two.
func (t *countTable) home(h uint64) int {
	return int((h & math.MaxUint32) * uint64(len(t.slots)) >> 32)
}

// find is the slot holding h, or, when h is absent, the free slot where it
// would go.
func (t *countTable) find(h uint64) (*countSlot, bool) {
	i := t.home(h)
	for {
		s := &t.slots[i]
		if s.h == h {
			return s, true
		}
		if s.h == 0 {
			return s, false
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// insert stores h, which must be absent, with c.
func (t *countTable) insert(h uint64, c windowCount) {
	if 4*(t.used+1) > 3*len(t.slots) {
		t.resize(len(t.slots) + len(t.slots)/2)
	}
	s, _ := t.find(h)
	*s = countSlot{h: h, c: c}
	t.used++
}

// remove frees slot i and moves later slots of the same probe run back, so
// every key stays reachable from its home without tombstones.
func (t *countTable) remove(i int) {
	n := len(t.slots)
	dist := func(from, to int) int {
		if d := to - from; d >= 0 {
			return d
		}
		return to - from + n
	}
	for j := i; ; {
		if j++; j == n {
			j = 0
		}
		if t.slots[j].h == 0 {
			break
		}
		// j's key may fill the hole unless its home lies after the hole.
		if dist(t.home(t.slots[j].h), j) >= dist(i, j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = countSlot{}
	t.used--
}

// removeFirst removes the first of at most probes used slots from h's home
// on for which drop says yes, and reports whether it did. Where h's home
// lies is secret (the hash is seeded), so nobody can pick whose slot it is.
func (t *countTable) removeFirst(h uint64, probes int, drop func(windowCount) bool) bool {
	i := t.home(h)
	for range len(t.slots) {
		if t.slots[i].h != 0 {
			if drop(t.slots[i].c) {
				t.remove(i)
				return true
			}
			if probes--; probes == 0 {
				return false
			}
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	return false
}

// keep keeps the keys whose counts keep says yes to, in a table sized for
// them (so a table grown by a flood shrinks back), and returns how many it
// dropped.
func (t *countTable) keep(keep func(windowCount) bool) int {
	live := 0
	for _, s := range t.slots {
		if s.h != 0 && keep(s.c) {
			live++
		}
	}
	dropped := t.used - live
	if dropped > 0 {
		t.rebuild(capacityFor(live), keep)
	}
	return dropped
}

func (t *countTable) resize(capacity int) {
	t.rebuild(capacity, func(windowCount) bool { return true })
}

func (t *countTable) rebuild(capacity int, keep func(windowCount) bool) {
	old := t.slots
	*t = newCountTable(capacity)
	for _, s := range old {
		if s.h != 0 && keep(s.c) {
			d, _ := t.find(s.h)
			*d = s
			t.used++
		}
	}
}

// capacityFor is the length that holds n keys at most three quarters full.
func capacityFor(n int) int {
	c := minCountSlots
	for 4*n > 3*c {
		c += c / 2
	}
	return c
}
