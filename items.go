package main

import (
	"net/http"
)

// itemWrite is POST /items (title required) and PATCH /items/{id}
// (every field optional; description may be cleared with null).
type itemWrite struct {
	Title       opt[string]  `json:"title"`
	Description opt[*string] `json:"description"`
	creating    bool
}

func (q *itemWrite) valid() []fieldError {
	var p problems
	if q.creating || q.Title.Set {
		p.add("title", firstOf(required(q.Title), lengthProblem(q.Title.V, 1, 255)))
	}
	if q.Description.Set && q.Description.V != nil {
		p.add("description", lengthProblem(*q.Description.V, 0, 10_000))
	}
	return p
}

// itemCreate marks the write as a create, where title is required.
type itemCreate struct{ itemWrite }

func (q *itemCreate) valid() []fieldError {
	q.creating = true
	return q.itemWrite.valid()
}

func handleItemList(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageFrom(r)
		if err != nil {
			return err
		}
		items, count, err := s.listItems(r.Context(), viewerOf(currentUser(r)), p)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, listPage[item]{Data: items, Count: count})
		return nil
	})
}

func handleItemCreate(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[itemCreate](r)
		if err != nil {
			return err
		}
		it, err := s.createItem(r.Context(), currentUser(r).ID, req.Title.V, req.Description.V)
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/api/v1/items/"+it.ID)
		encode(w, http.StatusCreated, it)
		return nil
	})
}

func handleItemGet(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "Item")
		if err != nil {
			return err
		}
		it, err := s.itemFor(r.Context(), viewerOf(currentUser(r)), id)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, it)
		return nil
	})
}

func handleItemPatch(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[itemWrite](r)
		if err != nil {
			return err
		}
		id, err := pathID(r, "Item")
		if err != nil {
			return err
		}
		changes := itemChanges{Description: req.Description}
		if req.Title.Set {
			changes.Title = &req.Title.V
		}
		it, err := s.updateItem(r.Context(), viewerOf(currentUser(r)), id, changes)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, it)
		return nil
	})
}

func handleItemDelete(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "Item")
		if err != nil {
			return err
		}
		if err := s.deleteItem(r.Context(), viewerOf(currentUser(r)), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
