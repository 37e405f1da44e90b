package main

import (
	"math/rand/v2"
	"testing"
)

// TestCountTableAgreesWithAMap runs random inserts, updates, removals,
// evictions and sweeps against the table and a Go map side by side. Hashes
// come from a small set with shared low bits, so probe runs are long, wrap
// around the end of the slice, and removals must shift keys back across
// the wrap.
func TestCountTableAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	table := newCountTable(minCountSlots)
	model := map[uint64]windowCount{}
	hashes := make([]uint64, 300)
	for i := range hashes {
		// Low 32 bits (the home) from 40 values: many keys per home.
		hashes[i] = hashKey(uint64(i)<<32 | uint64(rng.IntN(40))<<26)
	}
	check := func(step int) {
		t.Helper()
		if table.used != len(model) {
			t.Fatalf("step %d: used %d, model holds %d", step, table.used, len(model))
		}
		for _, h := range hashes {
			s, ok := table.find(h)
			want, inModel := model[h]
			if ok != inModel || (ok && s.c != want) {
				t.Fatalf("step %d: hash %x: table %v %+v, model %v %+v", step, h, ok, s.c, inModel, want)
			}
		}
		if 4*table.used > 3*len(table.slots) {
			t.Fatalf("step %d: %d keys in %d slots", step, table.used, len(table.slots))
		}
	}
	for step := range 20_000 {
		h := hashes[rng.IntN(len(hashes))]
		switch op := rng.IntN(10); {
		case op < 5: // count one, inserting when new
			if s, ok := table.find(h); ok {
				s.c.curr++
			} else {
				table.insert(h, windowCount{index: int64(step), curr: 1})
			}
			c := model[h]
			if c.curr == 0 {
				c = windowCount{index: int64(step)}
			}
			c.curr++
			model[h] = c
		case op < 8: // remove
			if s, ok := table.find(h); ok {
				table.remove(table.indexOf(s))
				delete(model, h)
			}
		case op < 9: // evict the first key with an even count near h
			var gone windowCount
			if table.removeFirst(h, 8, func(c windowCount) bool { gone = c; return c.curr%2 == 0 }) {
				for k, c := range model {
					if c == gone {
						delete(model, k)
						break
					}
				}
			}
		default: // sweep the keys with odd counts
			before := len(model)
			for k, c := range model {
				if c.curr%2 == 1 {
					delete(model, k)
				}
			}
			if dropped := table.keep(func(c windowCount) bool { return c.curr%2 == 0 }); dropped != before-len(model) {
				t.Fatalf("step %d: keep dropped %d, want %d", step, dropped, before-len(model))
			}
		}
		check(step)
	}
}

// indexOf is the position of s in the table's slice.
func (t *countTable) indexOf(s *countSlot) int {
	for i := range t.slots {
		if &t.slots[i] == s {
			return i
		}
	}
	panic("slot not in table")
}
