package main

import (
	"context"
	"database/sql"
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
}

const itemColumns = `id, title, description, owner_id, created_at, updated_at`

// scanItem reads an item's columns, after any leading ones into lead.
func scanItem(row rowScanner, lead ...any) (item, error) {
	var it item
	err := row.Scan(append(lead, &it.ID, &it.Title, &it.Description, &it.OwnerID, &it.CreatedAt, &it.UpdatedAt)...)
	it.CreatedAt, it.UpdatedAt = it.CreatedAt.UTC(), it.UpdatedAt.UTC()
	return it, err
}

// viewer is who asks: a superuser sees every item, anyone else their own.
type viewer struct {
	id        string
	superuser bool
}

func viewerOf(u user) viewer { return viewer{id: u.ID, superuser: u.IsSuperuser} }

func (s *store) createItem(ctx context.Context, ownerID, title string, description *string) (item, error) {
	now := s.timestamp()
	it, err := scanItem(s.db.QueryRowContext(ctx, `
		INSERT INTO items (owner_id, title, description, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) RETURNING `+itemColumns, ownerID, title, description, now))
	return it, classify(err, "Item")
}

// The page and the total in one statement, one round trip: the window
// count sees every row the WHERE keeps, before LIMIT. Both use the
// (owner_id, created_at) or (created_at) index, in order, with no sort.
const (
	ownItemsPageSQL = `SELECT count(*) OVER (), ` + itemColumns + ` FROM items WHERE owner_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`
	allItemsPageSQL = `SELECT count(*) OVER (), ` + itemColumns + ` FROM items
		ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`
)

// listItems pages through what v may see, newest first, with the total.
func (s *store) listItems(ctx context.Context, v viewer, limit, offset int) ([]item, int, error) {
	var rows *sql.Rows
	var err error
	if v.superuser {
		rows, err = s.db.QueryContext(ctx, allItemsPageSQL, limit, offset)
	} else {
		rows, err = s.db.QueryContext(ctx, ownItemsPageSQL, v.id, limit, offset)
	}
	count := 0
	items, err := collect(rows, err, func(row rowScanner) (item, error) { return scanItem(row, &count) })
	if err == nil && len(items) == 0 && offset > 0 {
		// Past the last page no row carries the total: ask for it.
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE $1 OR owner_id = $2`, v.superuser, v.id).Scan(&count)
	}
	return items, count, classify(err, "Items")
}

// itemFor returns the item when v may see it; someone else's item is
// not_found, so existence does not leak.
func (s *store) itemFor(ctx context.Context, v viewer, id string) (item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM items WHERE id = $1 AND ($2 OR owner_id = $3)`, id, v.superuser, v.id))
	return it, classify(err, "Item")
}

// itemChanges are the columns an update sets; description can be cleared,
// so it says apart whether it is set.
type itemChanges struct {
	Title          *string
	SetDescription bool
	Description    *string
}

func (s *store) updateItem(ctx context.Context, v viewer, id string, c itemChanges) (item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, `
		UPDATE items SET
			title       = COALESCE($4, title),
			description = CASE WHEN $5 THEN $6 ELSE description END,
			-- a PATCH that changes nothing leaves updated_at alone
			updated_at  = CASE WHEN COALESCE($4, title) IS DISTINCT FROM title
			                     OR ($5 AND $6::text IS DISTINCT FROM description)
			                   THEN $7 ELSE updated_at END
		WHERE id = $1 AND ($2 OR owner_id = $3)
		RETURNING `+itemColumns,
		id, v.superuser, v.id, c.Title, c.SetDescription, c.Description, s.timestamp()))
	return it, classify(err, "Item")
}

func (s *store) deleteItem(ctx context.Context, v viewer, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM items WHERE id = $1 AND ($2 OR owner_id = $3)`, id, v.superuser, v.id)
	if err != nil {
		return classify(err, "Item")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return classify(sql.ErrNoRows, "Item")
	}
	return nil
}
