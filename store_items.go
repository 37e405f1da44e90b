package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// item is a thing a user owns.
type item struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description *string   `json:"description"`
	OwnerID     string    `json:"owner_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Version     int64     `json:"version"` // grows at every change of the row: the ETag
}

const itemColumns = `id, title, description, owner_id, created_at, updated_at, version`

// scanItem reads an item's columns, after any leading ones into lead.
func scanItem(row rowScanner, lead ...any) (item, error) {
	var it item
	err := row.Scan(append(lead, itemFields(&it)...)...)
	return it.utc(), err
}

// itemFields are the scan destinations of itemColumns, in order.
func itemFields(it *item) []any {
	return []any{&it.ID, &it.Title, &it.Description, &it.OwnerID, &it.CreatedAt, &it.UpdatedAt, &it.Version}
}

// utc is it with its times in UTC, as the API writes them.
func (it item) utc() item {
	it.CreatedAt, it.UpdatedAt = it.CreatedAt.UTC(), it.UpdatedAt.UTC()
	return it
}

// viewer is who asks: a superuser sees every item, anyone else their own.
type viewer struct {
	id        string
	superuser bool
}

func viewerOf(u user) viewer { return viewer{id: u.ID, superuser: u.IsSuperuser} }

// createItem stores it, whose id and times the caller made, so that its
// answer is known before the statement. In a request with an
// Idempotency-Key the one statement also keeps that answer and takes the
// key, or does nothing (errKeyTaken), in place of
// the keyed requests' transaction of four statements (measured by
// scripts/safewrites-cost.sh: a keyed create took 2.1x the time of one
// without a key that way, and 1.1x this way).
func (s *store) createItem(ctx context.Context, it item, answer keptAnswer) error {
	const insert = `INSERT INTO items (id, owner_id, title, description, created_at, updated_at)`
	k := keyedFrom(ctx)
	if k == nil {
		_, err := s.db.ExecContext(ctx, insert+` VALUES ($1, $2, $3, $4, $5, $5)`, it.ID, it.OwnerID, it.Title, it.Description, it.CreatedAt)
		return classify(err, "Item")
	}
	answer.fingerprint = k.fingerprint
	args := append(s.keepArgs(k.scope, k.key, answer), it.ID, it.OwnerID, it.Title, it.Description, it.CreatedAt)
	res, err := s.db.ExecContext(ctx, `WITH kept AS (`+keepAnswerSQL+`) `+insert+`
		SELECT $11, $12, $13, $14, $15, $15 WHERE EXISTS (SELECT 1 FROM kept)`, args...)
	if err != nil {
		return classify(err, "Item")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errKeyTaken
	}
	k.kept = true
	return nil
}

// The item list's two branches: a user's own items, on the index
// (owner_id, created_at, id), and a superuser's every item, on (created_at,
// id). Only the branch that applies runs (the other's one-time filter
// fails). A superuser who asks for their own (mine) gets the first branch
// alone.
const (
	ownItems  = `NOT viewer.is_superuser AND owner_id = viewer.id`
	allItems  = `viewer.is_superuser`
	mineItems = `owner_id = viewer.id`
)

// afterPosition keeps the rows after the position ($4, $5).
const afterPosition = `(created_at, id) < ($4, $5)`

// The list's statements: what the session may see, or only its own.
var (
	itemsPageSQL, itemsOffsetPageSQL         = itemsPages(ownItems, allItems)
	mineItemsPageSQL, mineItemsOffsetPageSQL = itemsPages(mineItems, "")
)

// itemsPages are a list's two statements, over the branches own and all
// (or own alone).
// first: $6 rows after the position, read on the branch's index from the
// position on, in order: a page deep in a list costs what the first does.
// offset: the same page $7 rows further on. Where it starts is found on
// the index alone (an index-only scan passes a row without reading it
// from the table, once vacuum has marked its page all-visible), then only
// the page's rows are read. Measured: offset 9,980 of 200,000 items, 0.17x
// of a small first page's req/s as LIMIT … OFFSET, 0.24x so. First pages
// and cursor pages keep first: with the skip, the small user's list
// measured 0.90x to 0.95x of that (compare.sh, two runs).
func itemsPages(own, all string) (first, offset string) {
	first = itemsPage(own, all, func(string) string { return afterPosition })
	offset = itemsPage(own, all, func(branch string) string {
		return `(created_at, id) <= (SELECT created_at, id FROM items WHERE ` + branch + ` AND ` + afterPosition + `
	 ORDER BY created_at DESC, id DESC OFFSET $7 LIMIT 1)`
	})
	return first, offset
}

// itemsPage is the list's statement: in each branch (all may be none),
// the first $6 rows of those start(branch) keeps.
func itemsPage(own, all string, start func(branch string) string) string {
	page := func(branch string) string {
		return `(SELECT ` + itemColumns + ` FROM items WHERE ` + branch + ` AND ` + start(branch) + `
	 ORDER BY created_at DESC, id DESC LIMIT $6)`
	}
	if all == "" {
		return page(own)
	}
	return page(own) + ` UNION ALL ` + page(all)
}

// itemsCountSQL is how many items the session's user owns, from the
// counts kept with the rows (item_counts): one row, joined to the
// session's.
const itemsCountSQL = `SELECT n AS total FROM item_counts WHERE owner_id = viewer.id`

// itemsPageAs is the session's user and the page of items they may see
// (with mine, only their own), one past the limit, with their count, in
// one round trip; a superuser's count, of every item, takes a second.
func (s *store) itemsPageAs(ctx context.Context, tokenHash []byte, p sessionPolicy, q pageQuery, mine bool) (user, string, []item, int, error) {
	var it item
	var total int
	items := make([]item, 0, q.limit+1)
	first, offset := itemsPageSQL, itemsOffsetPageSQL
	if mine {
		first, offset = mineItemsPageSQL, mineItemsOffsetPageSQL
	}
	statement, args := first, []any{q.after.createdAt, q.after.id, q.limit + 1}
	if q.offset > 0 {
		statement, args = offset, append(args, q.offset)
	}
	u, sessionID, err := s.readAsSession(ctx, tokenHash, p, sessionRead{
		sql: statement, args: args,
		own: itemFields(&it),
		each: func() {
			items = append(items, it.utc())
			it.Description = nil // the next row's NULL must not keep this one's
		},
		count: itemsCountSQL, total: &total,
	})
	if err == nil && u.IsSuperuser && !mine {
		total, err = s.countAllItems(ctx)
	}
	return u, sessionID, items, total, err
}

// countAllItems is the number of every user's items: one row per owner.
func (s *store) countAllItems(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM item_counts`).Scan(&n)
	return n, classify(err, "Items")
}

// at is an item's place in its list.
func (it item) at() position { return position{createdAt: it.CreatedAt, id: it.ID} }

// itemSQL is one item ($4), when the session's user may see it.
const itemSQL = `SELECT ` + itemColumns + ` FROM items WHERE id = $4 AND (viewer.is_superuser OR owner_id = viewer.id)`

// itemAs is the session's user and one item, in one round trip; found is
// false for someone else's item, as for one that does not exist.
func (s *store) itemAs(ctx context.Context, tokenHash []byte, p sessionPolicy, id string) (u user, sessionID string, it item, found bool, err error) {
	u, sessionID, err = s.readAsSession(ctx, tokenHash, p, sessionRead{sql: itemSQL, args: []any{id}, own: itemFields(&it), each: func() { found = true }})
	return u, sessionID, it.utc(), found, err
}

// itemChanges are the columns an update sets; description can be cleared,
// so it says apart whether it is set.
type itemChanges struct {
	Title          *string
	SetDescription bool
	Description    *string
}

// updateItem applies c to the item if v may see it and p holds, in one
// statement; when p does not hold, p.failed says so with the version.
func (s *store) updateItem(ctx context.Context, v viewer, id string, c itemChanges, p precondition) (item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, `
		UPDATE items SET
			title       = COALESCE($4, title),
			description = CASE WHEN $5 THEN $6 ELSE description END,
			-- a PATCH that changes nothing leaves updated_at alone
			updated_at  = CASE WHEN COALESCE($4, title) IS DISTINCT FROM title
			                     OR ($5 AND $6::text IS DISTINCT FROM description)
			                   THEN $7 ELSE updated_at END
		WHERE id = $1 AND ($2 OR owner_id = $3) AND ($8::bigint[] IS NULL OR version = ANY ($8))
		RETURNING `+itemColumns,
		id, v.superuser, v.id, c.Title, c.SetDescription, c.Description, s.timestamp(), p.versions))
	if errors.Is(err, sql.ErrNoRows) && p.versions != nil {
		return it, s.itemPreconditionFailed(ctx, v, id, p)
	}
	return it, classify(err, "Item")
}

// deleteItem deletes the item if v may see it and p holds, in one
// statement.
func (s *store) deleteItem(ctx context.Context, v viewer, id string, p precondition) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM items WHERE id = $1 AND ($2 OR owner_id = $3) AND ($4::bigint[] IS NULL OR version = ANY ($4))`,
		id, v.superuser, v.id, p.versions)
	if err != nil {
		return classify(err, "Item")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if p.versions != nil {
			return s.itemPreconditionFailed(ctx, v, id, p)
		}
		return classify(sql.ErrNoRows, "Item")
	}
	return nil
}

// itemPreconditionFailed says why a conditional write of an item changed
// nothing: it is gone (or not v's), or p did not hold at its version now.
func (s *store) itemPreconditionFailed(ctx context.Context, v viewer, id string, p precondition) error {
	var version int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM items WHERE id = $1 AND ($2 OR owner_id = $3)`, id, v.superuser, v.id).Scan(&version)
	if err != nil {
		return classify(err, "Item")
	}
	return p.failed(version)
}
