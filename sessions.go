package main

import (
	"net/http"
)

// The caller's sessions: see them, end one, end all but the current one;
// and a superuser's way to end every session of a user.

// handleSessionList is GET /users/me/sessions, the page where a user
// looks for a sign-in they do not recognise, read in the session's own
// statement (readAs); the current one is marked.
func handleSessionList(s *store, p sessionPolicy, pages *cursors) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		q, bad := pages.query(r, "sessions")
		var list []session
		var count int
		var current string
		err := readAs(r, s, p, bad, func(hash []byte) (u user, sessionID string, err error) {
			u, current, list, count, err = s.sessionsPageAs(r.Context(), hash, p, q)
			return u, current, err
		})
		if err != nil {
			return err
		}
		for i := range list {
			list[i].Current = list[i].ID == current
		}
		count, capped := capCount(count)
		writePage(w, r, q, pageOf(pages, q, list, session.at, count, capped))
		return nil
	})
}

// handleSessionDelete ends one of the caller's sessions at once; another
// user's session id is 404, like an unknown one.
func handleSessionDelete(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "Session")
		if err != nil {
			return err
		}
		me := currentUser(r).ID
		if err := s.deleteSessionByID(r.Context(), me, id); err != nil {
			return err
		}
		au.sessionsRevoked(r, "user_ended", me, me, 1)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleSessionDeleteOthers ends every session of the caller but the one
// making the request.
func handleSessionDeleteOthers(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r).ID
		n, err := s.deleteSessions(r.Context(), me, stateFrom(r.Context()).sessionHash)
		if err != nil {
			return err
		}
		au.sessionsRevoked(r, "user_ended_others", me, me, n)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleUserSessionsDelete is a superuser ending every session of a user
// (a stolen laptop, a leaving employee).
func handleUserSessionsDelete(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "User")
		if err != nil {
			return err
		}
		if _, err := s.userByID(r.Context(), id); err != nil {
			return err
		}
		n, err := s.deleteSessions(r.Context(), id, nil)
		if err != nil {
			return err
		}
		au.sessionsRevoked(r, "admin_ended", currentUser(r).ID, id, n)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
