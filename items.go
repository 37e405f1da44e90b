package main

import (
	"errors"
	"net/http"
)

// itemWrite is PATCH /items/{id}: every field optional; description may
// be cleared with null, title may not.
type itemWrite struct {
	Title       opt[string]  `json:"title"`
	Description opt[*string] `json:"description"`
}

func (q itemWrite) valid() []fieldError {
	var p problems
	if q.Title.Set {
		p.add("title", firstOf(notNull(q.Title), titleProblem(q.Title.V)))
	}
	p.add("description", descriptionProblem(q.Description))
	return p
}

// itemCreate is POST /items: the same fields, title required.
type itemCreate struct{ itemWrite }

func (q itemCreate) valid() []fieldError {
	var p problems
	p.add("title", firstOf(required(q.Title), titleProblem(q.Title.V)))
	p.add("description", descriptionProblem(q.Description))
	return p
}

func titleProblem(title string) string { return lengthProblem(title, 1, 255) }

func descriptionProblem(o opt[*string]) string {
	if o.Set && o.V != nil {
		return lengthProblem(*o.V, 0, 10_000)
	}
	return ""
}

// handleItemList is GET /items: the caller's items, or every item for a
// superuser, a page by key, read in the session's own statement (readAs).
func handleItemList(s *store, sessions sessionPolicy, pages *cursors) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		mine, badMine := flagParam(r.URL.Query(), "mine")
		q, bad := pages.query(r, "items", badMine...)
		var items []item
		var count int
		err := readAs(r, s, sessions, bad, func(hash []byte) (u user, sessionID string, err error) {
			u, sessionID, items, count, err = s.itemsPageAs(r.Context(), hash, sessions, q, mine)
			return u, sessionID, err
		})
		if err != nil {
			return err
		}
		writePage(w, r, q, pageOf(pages, q, items, item.at, count, false))
		return nil
	})
}

func handleItemCreate(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[itemCreate](r)
		if err != nil {
			return err
		}
		now := s.timestamp()
		it := item{ID: newUUID(), Title: req.Title.V, Description: req.Description.V, OwnerID: currentUser(r).ID, CreatedAt: now, UpdatedAt: now, Version: 1}
		answer := keptAnswer{status: http.StatusCreated, location: "/api/v1/items/" + it.ID, contentType: contentJSON, body: jsonBody(it)}
		err = s.createItem(r.Context(), it, answer)
		if errors.Is(err, errMissing) {
			return errUnauthenticated // the account was deleted a moment ago
		} else if err != nil {
			return err
		}
		w.Header().Set("Location", answer.location)
		w.Header().Set("ETag", etag(it.Version))
		writeBody(w, answer.status, answer.contentType, answer.body)
		return nil
	})
}

// handleItemGet is GET /items/{id}, read as handleItemList is. Someone
// else's item is not_found, so existence does not leak.
func handleItemGet(s *store, sessions sessionPolicy) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, bad := pathID(r, "Item")
		var it item
		var found bool
		err := readAs(r, s, sessions, bad, func(hash []byte) (u user, sessionID string, err error) {
			u, sessionID, it, found, err = s.itemAs(r.Context(), hash, sessions, id)
			return u, sessionID, err
		})
		if err != nil {
			return err
		}
		if !found {
			return errNotFound("Item")
		}
		if notModified(w, r, etag(it.Version)) {
			return nil
		}
		writeTagged(w, http.StatusOK, it.Version, it)
		return nil
	})
}

// handleItemPatch is PATCH /items/{id}; with If-Match, only while the item
// is at a version it names (ifMatchRequired: IF_MATCH_REQUIRED).
func handleItemPatch(s *store, ifMatchRequired bool) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[itemWrite](r)
		if err != nil {
			return err
		}
		id, err := pathID(r, "Item")
		if err != nil {
			return err
		}
		changes := itemChanges{SetDescription: req.Description.Set, Description: req.Description.V}
		if req.Title.Set {
			changes.Title = &req.Title.V
		}
		it, err := s.updateItem(r.Context(), viewerOf(currentUser(r)), id, changes, preconditionOf(r, ifMatchRequired))
		if err != nil {
			return err
		}
		writeTagged(w, http.StatusOK, it.Version, it)
		return nil
	})
}

// handleItemDelete is DELETE /items/{id}, conditional as handleItemPatch.
func handleItemDelete(s *store, ifMatchRequired bool) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "Item")
		if err != nil {
			return err
		}
		if err := s.deleteItem(r.Context(), viewerOf(currentUser(r)), id, preconditionOf(r, ifMatchRequired)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
