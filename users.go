package main

import (
	"database/sql"
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

// selfPatch is what a user may change of themselves. A new email needs the
// current password in the same body (re-authentication, ASVS 7.5.1).
type selfPatch struct {
	Email           opt[string]  `json:"email"`
	FullName        opt[*string] `json:"full_name"`
	CurrentPassword opt[string]  `json:"current_password"`
}

func (q *selfPatch) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q selfPatch) valid() []fieldError {
	var p problems
	p.add("email", emailChangeProblem(q.Email))
	p.add("full_name", fullNameProblem(q.FullName))
	if q.Email.Set {
		p.add("current_password", requiredPassword(q.CurrentPassword))
	} else if q.CurrentPassword.Set {
		p.add("current_password", "is only needed to change the email")
	}
	return p
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
		writeJSON(w, http.StatusOK, contentJSON, currentUser(r))
		return nil
	})
}

// handleMePatch changes the caller's name and, re-authenticated by the
// current password under the auth budget, their email: a stolen token alone
// cannot take the account over, nor probe which emails exist. A new email
// ends the caller's other sessions and voids links mailed to the old one;
// the new address is unverified until its link is followed, and the old
// one hears of the change.
func handleMePatch(s *store, pw *passwordHasher, limits *rateLimits, au *auditor, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[selfPatch](r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		changes := userChanges{SetFullName: req.FullName.Set, FullName: req.FullName.V}
		me := currentUser(r)
		newEmail := req.Email.Set && req.Email.V != me.Email
		if req.Email.Set {
			if err := limits.check(w, r, limits.auth, failClosed); err != nil {
				return err
			}
			if err := requireCurrentPassword(w, r, s, pw, limits, req.CurrentPassword.V); err != nil {
				return err
			}
			changes.Email = &req.Email.V
		}
		sessions := keepSessions
		if newEmail {
			sessions = revokeOtherSessions(stateFrom(ctx).sessionHash)
		}
		var u user
		var revoked int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if u, revoked, err = s.updateUserTx(ctx, tx, me.ID, changes, sessions); err != nil || !newEmail {
				return err
			}
			if err := m.mailToken(ctx, tx, u, purposeVerify); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "email_changed", me.Email)
		})
		if err != nil {
			return classify(err, "User")
		}
		if req.Email.Set {
			au.record(r, "email.changed", u.ID, u.ID)
			au.sessionsRevoked(r, "email_changed", u.ID, u.ID, revoked)
		}
		if req.FullName.Set {
			au.record(r, "user.updated", u.ID, u.ID, slog.Any("fields", []string{"full_name"}))
		}
		writeJSON(w, http.StatusOK, contentJSON, u)
		return nil
	})
}

type passwordChange struct {
	CurrentPassword opt[string] `json:"current_password"`
	NewPassword     opt[string] `json:"new_password"`
}

func (q passwordChange) valid() []fieldError {
	var p problems
	p.add("current_password", requiredPassword(q.CurrentPassword))
	p.add("new_password", requiredPassword(q.NewPassword))
	if len(p) == 0 && q.CurrentPassword.V == q.NewPassword.V {
		p.add("new_password", "must differ from the current password")
	}
	return p
}

// handlePasswordChange checks the current password (a wrong one is 422, not
// 401, which would sign the frontend out) and revokes every other session.
func handlePasswordChange(s *store, pw *passwordHasher, limits *rateLimits, au *auditor, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[passwordChange](r)
		if err != nil {
			return err
		}
		if p := newPasswordProblem(req.NewPassword.V, currentUser(r).Email); p != "" {
			return validationError([]fieldError{{Field: "new_password", Message: p}})
		}
		if err := requireCurrentPassword(w, r, s, pw, limits, req.CurrentPassword.V); err != nil {
			return err
		}
		ctx, me := r.Context(), currentUser(r)
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

func handleMeDelete(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r)
		if me.IsSuperuser {
			return newError(codeForbidden, "A superuser cannot delete their own account.")
		}
		if err := s.deleteUser(r.Context(), me.ID); err != nil {
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
		created, err := s.createUser(r.Context(), s.db, u)
		if err != nil {
			return err
		}
		au.record(r, "user.created", currentUser(r).ID, created.ID)
		w.Header().Set("Location", "/api/v1/users/"+created.ID)
		writeJSON(w, http.StatusCreated, contentJSON, created)
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
		writeJSON(w, http.StatusOK, contentJSON, u)
		return nil
	})
}

// handleUserPatch is a superuser's change to an account. mfa_enabled:false
// is how an operator restores a user who lost both factors: the factor and
// its codes go, every session ends, the user is told by mail, and the
// audit log names the superuser. A superuser turns their own factor off
// as anyone does, with a code (DELETE /users/me/mfa).
func handleUserPatch(s *store, pw *passwordHasher, au *auditor, m *mailer) http.Handler {
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
			hash, err := newPasswordHash(r, s, pw, id, req.Email, req.Password.V)
			if err != nil {
				return err
			}
			changes.PasswordHash = &hash
		}
		var u, before user
		var revoked int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
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
		writeJSON(w, http.StatusOK, contentJSON, u)
		return nil
	})
}

// newPasswordHash hashes a password a superuser sets for the account id,
// after the policy for new passwords, against the email the account will
// have (email, when the same change sets it).
func newPasswordHash(r *http.Request, s *store, pw *passwordHasher, id string, email opt[string], password string) (string, error) {
	if !email.Set {
		u, err := s.userByID(r.Context(), id)
		if err != nil {
			return "", err
		}
		email.V = u.Email
	}
	if p := newPasswordProblem(password, email.V); p != "" {
		return "", validationError([]fieldError{{Field: "password", Message: p}})
	}
	return pw.hash(r.Context(), hashClaimOf(r, true), password)
}

func handleUserDelete(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "User")
		if err != nil {
			return err
		}
		if id == currentUser(r).ID {
			return newError(codeForbidden, "A superuser cannot delete themselves.")
		}
		if err := s.deleteUser(r.Context(), id); err != nil {
			return err
		}
		au.record(r, "user.deleted", currentUser(r).ID, id)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
