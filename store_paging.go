package main

import "time"

// What the store needs of a page: where it starts and how long it is. The
// HTTP side (paging.go) reads it from a request's query and cursor.

const (
	// countCap is where a count that is not kept with the rows stops: past
	// it the page says 10,000 and count_capped.
	countCap = 10_000
	// countCapPlusOne is countCap+1 as SQL text: a count that reaches it
	// stopped early.
	countCapPlusOne = "10001"
)

// position is where a page stands in a list: the last row it showed.
type position struct {
	createdAt time.Time
	id        string // a UUID
}

// beforeAll is the first page's position: before every row.
var beforeAll = position{createdAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), id: "ffffffff-ffff-ffff-ffff-ffffffffffff"}

// pageQuery is what a list's query asks for: at most limit rows after a
// position, skipping offset of them first.
type pageQuery struct {
	limit, offset int
	after         position
	list          string // the list the cursor belongs to: items, users, sessions
}
