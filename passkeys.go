package main

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Passkeys (WebAuthn Level 3): registering one from settings, signing in
// with one (no email typed), listing, renaming and deleting them. The
// protocol's pieces are in webauthn.go; checking an assertion is in
// credentials.go, beside the password and the code.

var errPasskeysOff = newError(codeConflict,
	"Passkeys are not available here: FRONTEND_URL is on an IP address, and a passkey needs a domain name (set FRONTEND_URL or WEBAUTHN_RP_ID).")

// newChallenge makes a ceremony's challenge: 32 random bytes, stored as
// their SHA-256 with what it is bound to.
func newChallenge(r *http.Request, s *store, purpose string, userID *string, sessionHash []byte) ([]byte, error) {
	challenge := make([]byte, 32)
	rand.Read(challenge)
	hash := sha256.Sum256(challenge)
	err := s.createChallenge(r.Context(), webauthnChallenge{hash: hash[:], purpose: purpose, userID: userID, sessionHash: sessionHash,
		network: clientNetwork(stateFrom(r.Context()).clientIP)})
	if errors.Is(err, errTooManyChallenges) {
		return nil, &apiError{Code: codeRateLimited, RetryAfter: webauthnChallengeTTL,
			Detail: "Too many passkey ceremonies wait from your network; finish one, or wait five minutes."}
	}
	return challenge, err
}

// credentialDescriptor names a credential for excludeCredentials.
type credentialDescriptor struct {
	Type       string   `json:"type"`
	ID         string   `json:"id"`
	Transports []string `json:"transports,omitempty"`
}

// creationOptions is PublicKeyCredentialCreationOptionsJSON, as
// PublicKeyCredential.parseCreationOptionsFromJSON takes it.
type creationOptions struct {
	RP struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	Challenge              string                 `json:"challenge"`
	PubKeyCredParams       []pubKeyCredParam      `json:"pubKeyCredParams"`
	Timeout                int64                  `json:"timeout"`
	ExcludeCredentials     []credentialDescriptor `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		ResidentKey        string `json:"residentKey"`
		RequireResidentKey bool   `json:"requireResidentKey"`
		UserVerification   string `json:"userVerification"`
	} `json:"authenticatorSelection"`
	Attestation string `json:"attestation"`
}

// pubKeyCredParam is an algorithm a new passkey may use.
type pubKeyCredParam struct {
	Type string `json:"type"`
	Alg  int    `json:"alg"`
}

// handlePasskeyOptions is POST /users/me/passkeys/options: re-authenticated
// with every factor, the options of a registration, whose challenge is
// bound to this session.
func handlePasskeyOptions(c credentials) http.Handler {
	s := c.store
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[reauth](r)
		if err != nil {
			return err
		}
		if c.rp.id == "" {
			return errPasskeysOff
		}
		if err := c.reauthenticate(w, r, req); err != nil {
			return err
		}
		ctx, me, st := r.Context(), currentUser(r), stateFrom(r.Context())
		handle, err := s.webauthnHandle(ctx, me.ID)
		if err != nil {
			return err
		}
		existing, err := s.passkeyCredentialIDs(ctx, me.ID)
		if err != nil {
			return err
		}
		challenge, err := newChallenge(r, s, "register", &me.ID, st.sessionHash)
		if err != nil {
			return err
		}
		var o creationOptions
		o.RP.ID, o.RP.Name = c.rp.id, c.rp.name
		o.User.ID, o.User.Name, o.User.DisplayName = b64(handle), me.Email, me.Email
		if me.FullName != nil {
			o.User.DisplayName = *me.FullName
		}
		o.Challenge = b64(challenge)
		for _, alg := range offeredAlgorithms {
			o.PubKeyCredParams = append(o.PubKeyCredParams, pubKeyCredParam{"public-key", alg})
		}
		o.Timeout = webauthnChallengeTTL.Milliseconds()
		o.ExcludeCredentials = []credentialDescriptor{}
		for _, p := range existing {
			o.ExcludeCredentials = append(o.ExcludeCredentials, credentialDescriptor{Type: "public-key", ID: b64(p.credentialID), Transports: transportList(p.transports)})
		}
		o.AuthenticatorSelection.ResidentKey, o.AuthenticatorSelection.RequireResidentKey = "required", true
		o.AuthenticatorSelection.UserVerification = "preferred"
		o.Attestation = "none"
		writeJSON(w, http.StatusOK, contentJSON, o)
		return nil
	})
}

// transportList is a stored list of transports.
func transportList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// passkeyCreate is POST /users/me/passkeys: the browser's registration
// response, and a name.
type passkeyCreate struct {
	Credential opt[json.RawMessage] `json:"credential"`
	Name       opt[string]          `json:"name"`
}

func (q passkeyCreate) valid() []fieldError {
	var p problems
	if !q.Credential.Set || q.Credential.Null {
		p.add("credential", "is required: the registration response as PublicKeyCredential.toJSON() gives it")
	}
	if q.Name.Set {
		p.add("name", passkeyNameProblem(q.Name.V))
	}
	return p
}

// passkeyNameProblem says what is wrong with a passkey's name: 1 to 64
// characters, no control characters.
func passkeyNameProblem(name string) string {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	if n == 0 || n > 64 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "must be 1 to 64 characters, with no control characters"
	}
	return ""
}

// handlePasskeyCreate verifies a registration response against the
// challenge this session was given, and stores the passkey: its public key
// (the Level 3 JSON's SPKI) and algorithm, flags, transports and a name.
func handlePasskeyCreate(c credentials) http.Handler {
	s, au, m := c.store, c.audit, c.mailer
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[passkeyCreate](r)
		if err != nil {
			return err
		}
		if c.rp.id == "" {
			return errPasskeysOff
		}
		ctx, me, st := r.Context(), currentUser(r), stateFrom(r.Context())
		p, reason, err := c.registration(r, req.Credential.V, me, st.sessionHash)
		if err != nil {
			return err
		}
		if reason != "" {
			au.record(r, "passkey.failed", me.ID, me.ID, slog.String("reason", "registration: "+reason))
			return validationError([]fieldError{{Field: "credential", Message: "was refused: " + reason}})
		}
		p.Name = "Passkey"
		if req.Name.Set {
			p.Name = strings.TrimSpace(req.Name.V)
		} else if p.Device != nil {
			p.Name = *p.Device
		}
		var saved passkey
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			if saved, err = s.createPasskey(ctx, tx, p); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "passkey_added", me.Email)
		})
		if errors.Is(err, errDuplicate) {
			return validationError([]fieldError{{Field: "credential", Message: "is registered already"}})
		} else if err != nil {
			return classify(err, "Passkey")
		}
		au.record(r, "passkey.added", me.ID, me.ID, slog.String("passkey_id", saved.ID))
		writeJSON(w, http.StatusCreated, contentJSON, saved)
		return nil
	})
}

// registration reads and verifies a registration response of me: the
// challenge (spent, bound to this session), the ceremony, the attested
// credential's id, the algorithm (one offered) and its public key. It
// answers the passkey to store, or why it is refused.
func (c credentials) registration(r *http.Request, raw json.RawMessage, me user, sessionHash []byte) (passkey, string, error) {
	var reg registrationJSON
	if err := json.Unmarshal(raw, &reg); err != nil {
		return passkey{}, "it is not a registration response as PublicKeyCredential.toJSON() gives it", nil
	}
	d, err := decodeAnswer(reg.RawID, reg.Type, reg.Response.ClientDataJSON, reg.Response.AuthenticatorData)
	if err != nil {
		return passkey{}, err.Error(), nil
	}
	challenge, err := unb64(d.cd.Challenge)
	if err != nil {
		return passkey{}, "the challenge is not base64url", nil
	}
	hash := sha256.Sum256(challenge)
	ch, err := c.store.spendChallenge(r.Context(), hash[:], "register")
	switch {
	case errors.Is(err, errMissing):
		return passkey{}, "its challenge is unknown, spent or expired; ask for new options", nil
	case err != nil:
		return passkey{}, "", err
	case ch.userID == nil || *ch.userID != me.ID || string(ch.sessionHash) != string(sessionHash):
		return passkey{}, "its challenge was given to another session", nil
	}
	if err := c.rp.check(d.cd, d.ad, "webauthn.create"); err != nil {
		return passkey{}, err.Error(), nil
	}
	if !d.ad.has(flagAT) || string(d.ad.credentialID) != string(d.rawID) {
		return passkey{}, "authenticatorData does not attest the credential that rawId names", nil
	}
	alg := reg.Response.PublicKeyAlgorithm
	if !slices.Contains(offeredAlgorithms, alg) {
		return passkey{}, "its algorithm is not one offered (ES256, EdDSA, RS256)", nil
	}
	spki, err := unb64(reg.Response.PublicKey)
	if err != nil {
		return passkey{}, "publicKey is not base64url", nil
	}
	if _, err := parsePublicKey(spki, alg); err != nil {
		return passkey{}, err.Error(), nil
	}
	var transports []string
	for _, t := range reg.Response.Transports {
		if t != "" && len(t) <= 16 && strings.Trim(t, "abcdefghijklmnopqrstuvwxyz-") == "" && !slices.Contains(transports, t) {
			transports = append(transports, t)
		}
	}
	p := passkey{userID: me.ID, credentialID: d.rawID, publicKey: spki, algorithm: alg, signCount: int64(d.ad.signCount),
		userVerified: d.ad.has(flagUV), BackupEligible: d.ad.has(flagBE), BackedUp: d.ad.has(flagBS),
		transports: strings.Join(transports, ","), aaguid: uuidString(d.ad.aaguid)}
	if name, ok := knownAuthenticators[p.aaguid]; ok {
		p.Device = &name
	}
	return p, "", nil
}

// requestOptions is PublicKeyCredentialRequestOptionsJSON, as
// PublicKeyCredential.parseRequestOptionsFromJSON takes it: discoverable
// (no allowCredentials), so no email is typed.
type requestOptions struct {
	Challenge        string                 `json:"challenge"`
	Timeout          int64                  `json:"timeout"`
	RPID             string                 `json:"rpId"`
	AllowCredentials []credentialDescriptor `json:"allowCredentials"`
	UserVerification string                 `json:"userVerification"`
}

// handlePasskeySignInOptions is POST /auth/passkey/options: a challenge for
// one assertion (a sign-in, or a re-authentication), bound to the client
// network, which holds at most maxLiveChallenges at once.
func handlePasskeySignInOptions(c credentials) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		if c.rp.id == "" {
			return errPasskeysOff
		}
		challenge, err := newChallenge(r, c.store, "authenticate", nil, nil)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, contentJSON, requestOptions{Challenge: b64(challenge), Timeout: webauthnChallengeTTL.Milliseconds(),
			RPID: c.rp.id, AllowCredentials: []credentialDescriptor{}, UserVerification: "preferred"})
		return nil
	})
}

// passkeySignIn is POST /auth/passkey.
type passkeySignIn struct {
	Credential opt[json.RawMessage] `json:"credential"`
}

func (q passkeySignIn) valid() []fieldError {
	var p problems
	if !q.Credential.Set || q.Credential.Null {
		p.add("credential", "is required: the assertion as PublicKeyCredential.toJSON() gives it")
	}
	return p
}

// handlePasskeySignIn is POST /auth/passkey: a verified assertion signs its
// account in, with no password and so no hashing slot. A user-verified one
// is both factors (mfa, and MFA_REQUIRED met); without user verification
// it signs in only an account with no second factor and none required.
func handlePasskeySignIn(c credentials, requireVerified bool) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := sessionKindProblem(r); err != nil {
			return err
		}
		req, err := decode[passkeySignIn](r)
		if err != nil {
			return err
		}
		if c.rp.id == "" {
			return errPasskeysOff
		}
		needUV := func(u user) bool { return u.MFAEnabled || mfaRequiredFor(c.sessions, u) }
		u, verified, err := c.checkPasskey(w, r, req.Credential.V, nil, needUV)
		if err != nil {
			return err
		}
		switch {
		case !u.IsActive:
			c.audit.record(r, "login.failed", "", u.ID, slog.String("reason", "inactive"))
			return newError(codeForbidden, "This account is deactivated.")
		case requireVerified && !u.EmailVerified:
			c.audit.record(r, "login.failed", "", u.ID, slog.String("reason", "unverified"))
			return newError(codeEmailUnverified, "Verify your email first: follow the link we mailed you, or ask for a new one.")
		}
		return c.startSession(w, r, u, verified, "passkey")
	})
}

// handlePasskeyList is GET /users/me/passkeys: a Page of the caller's
// passkeys, newest first.
func handlePasskeyList(s *store, pages *cursors) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		q, err := pages.query(r, "passkeys")
		if err != nil {
			return err
		}
		list, count, err := s.passkeysPage(r.Context(), currentUser(r).ID, q)
		if err != nil {
			return err
		}
		writePage(w, r, q, pageOf(pages, q, list, passkey.at, count, false))
		return nil
	})
}

// at is a passkey's place in its owner's list.
func (p passkey) at() position { return position{createdAt: p.CreatedAt, id: p.ID} }

// passkeyRename is PATCH /users/me/passkeys/{id}.
type passkeyRename struct {
	Name opt[string] `json:"name"`
}

func (q passkeyRename) valid() []fieldError {
	var p problems
	if !q.Name.Set {
		p.add("name", "is required")
	} else {
		p.add("name", passkeyNameProblem(q.Name.V))
	}
	return p
}

// handlePasskeyRename names one of the caller's passkeys; another's is 404.
func handlePasskeyRename(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, bad := pathID(r, "Passkey")
		req, err := decode[passkeyRename](r)
		if bad != nil {
			return bad
		}
		if err != nil {
			return err
		}
		p, err := s.renamePasskey(r.Context(), currentUser(r).ID, id, strings.TrimSpace(req.Name.V))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, contentJSON, p)
		return nil
	})
}

// handlePasskeyDelete deletes one of the caller's passkeys, re-authenticated
// with every factor; another's is 404. The last passkey of an account with
// no password stays (409): it would have no way in.
func handlePasskeyDelete(c credentials) http.Handler {
	s, au, m := c.store, c.audit, c.mailer
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, bad := pathID(r, "Passkey")
		if bad != nil {
			return bad
		}
		req, err := decode[reauth](r)
		if err != nil {
			return err
		}
		if err := c.reauthenticate(w, r, req); err != nil {
			return err
		}
		ctx, me := r.Context(), currentUser(r)
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.deletePasskey(ctx, tx, me.ID, id); err != nil {
				return err
			}
			if me.passwordHash == "" {
				if n, err := s.countPasskeys(ctx, tx, me.ID); err != nil {
					return err
				} else if n == 0 {
					return errLastPasskey
				}
			}
			return m.mailNotice(ctx, tx, "passkey_removed", me.Email)
		})
		if err != nil {
			return classify(err, "Passkey") // errLastPasskey passes through as itself
		}
		au.record(r, "passkey.removed", me.ID, me.ID, slog.String("passkey_id", id))
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

var errLastPasskey = newError(codeConflict, "This is the account's last way to sign in: it has no password. Add another passkey first.")
