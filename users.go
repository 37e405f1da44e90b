package main

import (
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
)

// userPatch is PATCH /users/me (email, full_name) and, with the admin
// fields, PATCH /users/{id}.
type userPatch struct {
	Email       opt[string]  `json:"email"`
	FullName    opt[*string] `json:"full_name"`
	Password    opt[string]  `json:"password"`
	IsActive    opt[bool]    `json:"is_active"`
	IsSuperuser opt[bool]    `json:"is_superuser"`
	MFAEnabled  opt[bool]    `json:"mfa_enabled"` // only false: an operator restores a user who lost both factors
}

func (q *userPatch) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q userPatch) valid() []fieldError {
	var p problems
	p.add("email", emailChangeProblem(q.Email))
	p.add("full_name", fullNameProblem(q.FullName))
	if q.Password.Set {
		p.add("password", firstOf(notNull(q.Password), passwordProblem(q.Password.V)))
	}
	p.add("is_active", notNull(q.IsActive))
	p.add("is_superuser", notNull(q.IsSuperuser))
	if q.MFAEnabled.Set && q.MFAEnabled.V {
		p.add("mfa_enabled", "can only be false: the user turns two-factor sign-in on with their own authenticator")
	} else {
		p.add("mfa_enabled", notNull(q.MFAEnabled))
	}
	return p
}

// fieldsSet names the fields the PATCH changes, never their values.
func (q userPatch) fieldsSet() []string {
	var fields []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"email", q.Email.Set}, {"full_name", q.FullName.Set}, {"password", q.Password.Set}, {"is_active", q.IsActive.Set}, {"is_superuser", q.IsSuperuser.Set}, {"mfa_enabled", q.MFAEnabled.Set}} {
		if f.set {
			fields = append(fields, f.name)
		}
	}
	return fields
}

// emailChangeProblem checks an email a PATCH may leave out.
func emailChangeProblem(o opt[string]) string {
	if !o.Set {
		return ""
	}
	return firstOf(notNull(o), emailProblem(o.V))
}

// selfPatch is what a user may change of themselves. A new email needs
// every factor in the same body (reauth, ASVS 7.5.1).
type selfPatch struct {
	Email    opt[string]  `json:"email"`
	FullName opt[*string] `json:"full_name"`
	reauth
}

func (q *selfPatch) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q selfPatch) valid() []fieldError {
	var p problems
	p.add("email", emailChangeProblem(q.Email))
	p.add("full_name", fullNameProblem(q.FullName))
	if q.Email.Set {
		return append(p, q.reauth.valid()...)
	}
	return append(p, q.reauth.unneeded("is only needed to change the email")...)
}

// userCreate is POST /users, an admin creating an account.
type userCreate struct {
	registerRequest
	IsActive    opt[bool] `json:"is_active"`
	IsSuperuser opt[bool] `json:"is_superuser"`
}

func (q userCreate) valid() []fieldError {
	p := problems(q.registerRequest.valid())
	p.add("is_active", notNull(q.IsActive))
	p.add("is_superuser", notNull(q.IsSuperuser))
	return p
}

func handleMeGet() http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r)
		if notModified(w, r, etag(me.Version)) {
			return nil
		}
		writeTagged(w, http.StatusOK, me.Version, me)
		return nil
	})
}

// errEmailTaken is an email change to an address another account holds,
// answered as the unique violation it would have been.
var errEmailTaken = &storeError{kind: errDuplicate, what: "User", field: "email", err: errors.New("the address is another account's")}

// handleMePatch changes the caller's name and, re-authenticated with every
// factor under the auth budget, asks for a change of their email: a stolen
// session, even with the password, cannot move the account away from its
// owner's mailbox. Nothing changes yet: the new address is mailed a link
// (confirmEmailChange switches it), the current one a notice, and the
// account shows pending_email. The caller's own address cancels a pending
// change.
func handleMePatch(c credentials, ifMatchRequired bool) http.Handler {
	s, au, m := c.store, c.audit, c.mailer
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[selfPatch](r)
		if err != nil {
			return err
		}
		ctx, me := r.Context(), currentUser(r)
		if req.Email.Set {
			if err := c.limits.check(w, r, c.limits.auth, failClosed); err != nil {
				return err
			}
			if err := c.reauthenticate(w, r, req.reauth); err != nil {
				return err
			}
		}
		requested := false
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.checkUserVersion(ctx, tx, me.ID, preconditionOf(r, ifMatchRequired)); err != nil {
				return err
			}
			if req.FullName.Set {
				if _, _, err := s.updateUserTx(ctx, tx, me.ID, userChanges{SetFullName: true, FullName: req.FullName.V}, keepSessions); err != nil {
					return err
				}
			}
			switch {
			case !req.Email.Set:
				return nil
			case req.Email.V == me.Email:
				return s.cancelEmailChange(ctx, tx, me.ID)
			}
			taken, err := s.userExists(ctx, req.Email.V)
			if err != nil {
				return err
			}
			if taken {
				return errEmailTaken
			}
			requested, err = m.mailEmailChange(ctx, tx, me, req.Email.V, stateFrom(ctx).sessionHash)
			return err
		})
		if err != nil {
			return classify(err, "User")
		}
		if requested {
			au.record(r, "email.change_requested", me.ID, me.ID)
		}
		if req.FullName.Set {
			au.record(r, "user.updated", me.ID, me.ID, slog.Any("fields", []string{"full_name"}))
		}
		u, err := s.userByID(ctx, me.ID)
		if err != nil {
			return err
		}
		writeTagged(w, http.StatusOK, u.Version, u)
		return nil
	})
}

type passwordChange struct {
	reauth
	NewPassword opt[string] `json:"new_password"`
}

func (q passwordChange) valid() []fieldError {
	p := problems(q.reauth.valid())
	p.add("new_password", requiredPassword(q.NewPassword))
	if len(p) == 0 && q.CurrentPassword.V == q.NewPassword.V {
		p.add("new_password", "must differ from the current password")
	}
	return p
}

// handleMePassword re-authenticates the caller with every factor (a
// wrong one is 422, not 401, which would sign the frontend out) and revokes
// every other session.
func handleMePassword(c credentials) http.Handler {
	s, pw, au, m := c.store, c.hasher, c.audit, c.mailer
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[passwordChange](r)
		if err != nil {
			return err
		}
		ctx, me := r.Context(), currentUser(r)
		if p := newPasswordProblem(req.NewPassword.V, me.Email, me.FullName); p != "" {
			return validationError([]fieldError{{Field: "new_password", Message: p}})
		}
		if err := c.reauthenticate(w, r, req.reauth); err != nil {
			return err
		}
		hash, err := pw.hash(ctx, hashClaimOf(r, true), req.NewPassword.V)
		if err != nil {
			return err
		}
		var revoked int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, revoked, err = s.updateUserTx(ctx, tx, me.ID, userChanges{PasswordHash: &hash}, revokeOtherSessions(stateFrom(ctx).sessionHash)); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "password_changed", me.Email)
		})
		if err != nil {
			return classify(err, "User")
		}
		au.record(r, "password.changed", me.ID, me.ID)
		au.sessionsRevoked(r, "password_changed", me.ID, me.ID, revoked)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleMeDelete deletes the caller's account, re-authenticated with every
// factor: a stolen session alone cannot destroy it.
func handleMeDelete(c credentials, ifMatchRequired bool) http.Handler {
	s, au := c.store, c.audit
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r)
		if me.IsSuperuser {
			return newError(codeForbidden, "A superuser cannot delete their own account.")
		}
		req, err := decode[reauth](r)
		if err != nil {
			return err
		}
		if err := c.reauthenticate(w, r, req); err != nil {
			return err
		}
		if err := s.deleteUser(r.Context(), me.ID, preconditionOf(r, ifMatchRequired)); err != nil {
			return err
		}
		au.record(r, "user.deleted", me.ID, me.ID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleUserList is GET /users: every account, a page by key. The plain
// authenticated read: `superuser` in front, the page, one store call, one
// write.
func handleUserList(s *store, pages *cursors) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		q, err := pages.query(r, "users")
		if err != nil {
			return err
		}
		users, count, err := s.listUsers(r.Context(), q)
		if err != nil {
			return err
		}
		writePage(w, r, q, pageOf(pages, q, users, user.at, count, false))
		return nil
	})
}

func handleUserCreate(s *store, pw *passwordHasher, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[userCreate](r)
		if err != nil {
			return err
		}
		hash, err := pw.hash(r.Context(), hashClaimOf(r, true), req.Password.V)
		if err != nil {
			return err
		}
		u := user{Email: req.Email.V, FullName: req.FullName.V, passwordHash: hash, IsActive: true}
		if req.IsActive.Set {
			u.IsActive = req.IsActive.V
		}
		u.IsSuperuser = req.IsSuperuser.V
		db, err := s.conn(r.Context())
		if err != nil {
			return err
		}
		created, err := s.createUser(r.Context(), db, u)
		if err != nil {
			return err
		}
		au.record(r, "user.created", currentUser(r).ID, created.ID)
		w.Header().Set("Location", "/api/v1/users/"+created.ID)
		writeTagged(w, http.StatusCreated, created.Version, created)
		return nil
	})
}

// handleUserGet shows a user to themselves or a superuser; anyone else gets
// 404, so ids do not reveal which accounts exist.
func handleUserGet(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "User")
		if err != nil {
			return err
		}
		me := currentUser(r)
		if !me.IsSuperuser && id != me.ID {
			return errNotFound("User")
		}
		u, err := s.userByID(r.Context(), id)
		if err != nil {
			return err
		}
		if notModified(w, r, etag(u.Version)) {
			return nil
		}
		writeTagged(w, http.StatusOK, u.Version, u)
		return nil
	})
}

// handleUserPatch is a superuser's change to an account. mfa_enabled:false
// is how an operator restores a user who lost both factors: the factor and
// its codes go, every session ends, the user is told by mail, and the
// audit log names the superuser. A superuser turns their own factor off
// as anyone does, with a code (DELETE /users/me/mfa).
func handleUserPatch(s *store, pw *passwordHasher, au *auditor, m *mailer, ifMatchRequired bool) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[userPatch](r)
		if err != nil {
			return err
		}
		id, err := pathID(r, "User")
		if err != nil {
			return err
		}
		ctx, me := r.Context(), currentUser(r).ID
		if id == me && ((req.IsActive.Set && !req.IsActive.V) || (req.IsSuperuser.Set && !req.IsSuperuser.V)) {
			return newError(codeForbidden, "A superuser cannot deactivate or demote themselves.")
		}
		if id == me && req.MFAEnabled.Set {
			return newError(codeForbidden, "Turn your own two-factor sign-in off with a code: DELETE /api/v1/users/me/mfa.")
		}
		changes := userChanges{SetFullName: req.FullName.Set, FullName: req.FullName.V, DisableMFA: req.MFAEnabled.Set}
		if req.Email.Set {
			changes.Email = &req.Email.V
		}
		if req.IsActive.Set {
			changes.IsActive = &req.IsActive.V
		}
		if req.IsSuperuser.Set {
			changes.IsSuperuser = &req.IsSuperuser.V
		}
		if req.Password.Set {
			hash, err := newPasswordHash(r, s, pw, id, req)
			if err != nil {
				return err
			}
			changes.PasswordHash = &hash
		}
		var u, before user
		var revoked int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.checkUserVersion(ctx, tx, id, preconditionOf(r, ifMatchRequired)); err != nil {
				return err
			}
			if changes.DisableMFA {
				if before, err = s.lockUserByID(ctx, tx, id); err != nil {
					return err
				}
			}
			if u, revoked, err = s.updateUserTx(ctx, tx, id, changes, changes.revocation()); err != nil {
				return err
			}
			if before.MFAEnabled {
				return m.mailNotice(ctx, tx, "mfa_disabled", before.Email)
			}
			return nil
		})
		if err != nil {
			return classify(err, "User")
		}
		au.record(r, "user.updated", me, id, slog.Any("fields", req.fieldsSet()))
		if before.MFAEnabled {
			au.record(r, "mfa.disabled", me, id, slog.String("by", "superuser"))
		}
		au.sessionsRevoked(r, "admin_change", me, id, revoked)
		writeTagged(w, http.StatusOK, u.Version, u)
		return nil
	})
}

// newPasswordHash hashes the password a superuser sets for the account id
// in q, after the policy for new passwords, against the email and name the
// account will have (those q sets, else its own).
func newPasswordHash(r *http.Request, s *store, pw *passwordHasher, id string, q userPatch) (string, error) {
	u, err := s.userByID(r.Context(), id)
	if err != nil {
		return "", err
	}
	email, name := u.Email, u.FullName
	if q.Email.Set {
		email = q.Email.V
	}
	if q.FullName.Set {
		name = q.FullName.V
	}
	if p := newPasswordProblem(q.Password.V, email, name); p != "" {
		return "", validationError([]fieldError{{Field: "password", Message: p}})
	}
	return pw.hash(r.Context(), hashClaimOf(r, true), q.Password.V)
}

func handleUserDelete(s *store, au *auditor, ifMatchRequired bool) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "User")
		if err != nil {
			return err
		}
		if id == currentUser(r).ID {
			return newError(codeForbidden, "A superuser cannot delete themselves.")
		}
		if err := s.deleteUser(r.Context(), id, preconditionOf(r, ifMatchRequired)); err != nil {
			return err
		}
		au.record(r, "user.deleted", currentUser(r).ID, id)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
