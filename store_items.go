package main

import (
	"context"
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5"
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

// countItems is the total alone, for a page past the last one, where no
// row carries it.
func (s *store) countItems(ctx context.Context, v viewer) (int, error) {
	var count int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE $1 OR owner_id = $2`, v.superuser, v.id).Scan(&count)
	return count, err
}

// sessionItemsPageSQL is the live session of a token hash, its user, and
// the page of items that user may see, in one statement: one round trip
// and one snapshot, so a session ended a moment ago shows nothing. No row
// means no live session; otherwise every row carries the session and user,
// and one row with NULL item columns stands for an empty page. The window
// count sees every row the WHERE keeps, before LIMIT. Only the branch that
// applies to the user runs (the other's one-time filter fails), each on its
// index, (owner_id, created_at) or (created_at), in order, with no sort.
const sessionItemsPageSQL = `WITH viewer AS (` + liveSessionSQL + `)
	SELECT viewer.*, page.* FROM viewer LEFT JOIN LATERAL (
		(SELECT count(*) OVER () AS total, ` + itemColumns + ` FROM items WHERE NOT viewer.is_superuser AND owner_id = viewer.id
		 ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5)
		UNION ALL
		(SELECT count(*) OVER () AS total, ` + itemColumns + ` FROM items WHERE viewer.is_superuser
		 ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5)
	) page ON true`

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

// sessionItemsPage is userBySession and the user's page of items in one
// round trip: the user and session id (errMissing when the session is not
// live), then the page and the total. Its rows are read through pgx itself:
// the session and user columns once, from the first row (pgx skips a nil
// destination without decoding it), the item columns from every row that
// has an item.
func (s *store) sessionItemsPage(ctx context.Context, tokenHash []byte, p sessionPolicy, limit, offset int) (u user, sessionID string, items []item, count int, err error) {
	now := s.timestamp()
	var lastUsed time.Time
	found := false
	items = make([]item, 0, limit)
	err = s.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sessionItemsPageSQL, append(liveSessionArgs(tokenHash, p, now), limit, offset)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var it item
		var total int64
		head := append([]any{&sessionID, &lastUsed}, userFields(&u)...)
		tail := []any{&total, &it.ID, &it.Title, &it.Description, &it.OwnerID, &it.CreatedAt, &it.UpdatedAt}
		dest := make([]any, len(head)+len(tail))
		for rows.Next() {
			clear(dest)
			if !found {
				copy(dest, head)
			}
			hasItem := rows.RawValues()[len(head)] != nil // an empty page's one row has a NULL total
			if hasItem {
				copy(dest[len(head):], tail)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			found = true
			if hasItem {
				count = int(total)
				it.CreatedAt, it.UpdatedAt = it.CreatedAt.UTC(), it.UpdatedAt.UTC()
				items = append(items, it)
				it.Description = nil // the next row's NULL must not keep this one's
			}
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return user{}, "", nil, 0, classify(err, "Items")
	case !found:
		return user{}, "", nil, 0, errMissing
	}
	u.CreatedAt = u.CreatedAt.UTC()
	if len(items) == 0 && offset > 0 {
		if count, err = s.countItems(ctx, viewerOf(u)); err != nil {
			return user{}, "", nil, 0, classify(err, "Items")
		}
	}
	return u, sessionID, items, count, s.touchSession(ctx, tokenHash, lastUsed, now)
}
