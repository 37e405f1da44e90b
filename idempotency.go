package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header-07) on the
// POSTs that create or send something: a request retried with the same
// key has its effect once. In the contract's order, after the body's
// syntax and before its validation:
//   - a key that is not 16 to 255 of [A-Za-z0-9._~-] (bare, or quoted as a
//     structured-field string) is 400;
//   - a key answered within 24 hours replays that answer (status,
//     Location, body, byte for byte, and Idempotent-Replayed: true) when
//     the request is the same (method, path and body: the fingerprint),
//     and is 422 idempotency_key_reused when it is not;
//   - a key whose first request is still committing is 409
//     idempotency_in_progress.
//
// The route runs with its writes in one transaction (store.conn, inTx),
// its answer held; a success (2xx) keeps its answer in that transaction,
// which takes the key (keepAnswer), so the effect and the kept answer
// commit together or not at all, across replicas. A request that finds
// the key taken there rolls its effect back and answers as the key says
// (the replay, 422 or 409); so does a route that failed while the key was
// taken, so a repeat is never told its body is invalid. A failure keeps
// nothing: the key stays free. Looking the key up only then keeps the
// common case, a first request, to the statements it needs (measured:
// scripts/safewrites-cost.sh).
//
// Keys are scoped to the caller: the account, or on anonymous routes the
// client network. An answer that holds a secret (a TOTP secret, a WebAuthn
// challenge) is not kept: a repeat is 409 and starts over.

var (
	errIdempotencyKey = newError(codeBadRequest,
		"The Idempotency-Key header must be 16 to 255 characters of A-Z, a-z, 0-9 and . _ ~ - (as a string, quoted or not).")
	errKeyReused = newError(codeKeyReused,
		"This Idempotency-Key was used for another request (another method, path or body) in the last 24 hours; use a new key for a new request.")
	errKeySecret = newError(codeConflict,
		"A request with this Idempotency-Key succeeded already, and its answer held a secret that is not kept: start over with a new key.")
)

// idempotencyKey reads the header's value: one key, bare or quoted.
func idempotencyKey(values []string) (string, error) {
	if len(values) != 1 {
		return "", errIdempotencyKey
	}
	k := values[0]
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if len(k) < 16 || len(k) > 255 {
		return "", errIdempotencyKey
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._~-", c) >= 0) {
			return "", errIdempotencyKey
		}
	}
	return k, nil
}

// idempotent makes a route honour Idempotency-Key. secret says its answer
// holds a secret, which is never kept.
func idempotent(s *store, secret bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			values, sent := r.Header["Idempotency-Key"]
			if !sent {
				next.ServeHTTP(w, r)
				return
			}
			body, err := rereadBody(r)
			if err != nil {
				writeError(w, r, err)
				return
			}
			key, err := idempotencyKey(values)
			if err != nil {
				writeError(w, r, err)
				return
			}
			k := &keyed{s: s, scope: idempotencyScope(r), key: key, fingerprint: fingerprint(r, body)}
			held := &heldAnswer{header: w.Header(), status: http.StatusOK}
			next.ServeHTTP(held, r.WithContext(context.WithValue(r.Context(), keyedKey{}, k)))
			err = k.finish(r.Context(), held, secret)
			// Taken, or failed: the key's answer, if it has one, is the answer.
			if (errors.Is(err, errKeyTaken) || (err == nil && !held.succeeded())) && answered(w, r, k, held) {
				return
			}
			if err != nil {
				held.drop()
				writeError(w, r, err) // errKeyTaken with nothing kept yet: 409, the other request is still committing
				return
			}
			held.sendTo(w)
		})
	}
}

// answered answers from what the key keeps: the replay of the same
// request, 422 for another, 409 for a secret; false when it keeps nothing.
func answered(w http.ResponseWriter, r *http.Request, k *keyed, held *heldAnswer) bool {
	a, err := k.s.keptAnswer(r.Context(), k.scope, k.key)
	if errors.Is(err, errMissing) {
		return false
	}
	held.drop()
	switch {
	case err != nil:
		writeError(w, r, err)
	case !bytes.Equal(a.fingerprint, k.fingerprint):
		writeError(w, r, errKeyReused)
	case a.secret:
		writeError(w, r, errKeySecret)
	default:
		if a.location != "" {
			w.Header().Set("Location", a.location)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeBody(w, a.status, a.contentType, a.body)
	}
	return true
}

// finish commits a succeeded request's effect with its answer (beginning
// the transaction if the route wrote nothing), or rolls a failed one back.
// errKeyTaken: another request took the key first; the effect is undone.
func (k *keyed) finish(ctx context.Context, held *heldAnswer, secret bool) error {
	ctx = context.WithoutCancel(ctx) // the effect is done: a client gone now does not undo it
	if !held.succeeded() {
		if k.t != nil {
			k.t.Rollback()
		}
		return nil
	}
	if k.kept {
		return nil
	}
	tx, err := k.tx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	a := keptAnswer{fingerprint: k.fingerprint, status: held.status, secret: secret, body: []byte{}}
	if !secret {
		a.location, a.contentType, a.body = held.header.Get("Location"), held.header.Get("Content-Type"), held.body.Bytes()
	}
	if err := k.s.keepAnswer(ctx, tx, k.scope, k.key, a); err != nil {
		return err
	}
	return tx.Commit()
}

// idempotencyScope is whose key it is: the account, or on an anonymous
// route the client network.
func idempotencyScope(r *http.Request) string {
	st := stateFrom(r.Context())
	if st.user != nil {
		return "user " + st.user.ID
	}
	return "network " + clientNetwork(st.clientIP)
}

// fingerprint is the request a key stands for: method, path and body.
func fingerprint(r *http.Request, body []byte) []byte {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.RequestURI()+"\n")
	h.Write(body)
	return h.Sum(nil)
}

// rereadBody reads the body, so the fingerprint covers it, and gives it
// back to the route. A body is checked as decode would before the key is
// looked at (the contract's order: 415, 413, 400, then the key): JSON, of
// the allowed size, well formed.
func rereadBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyReadError(err, "The request body could not be read.")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return body, nil
	}
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, newError(codeBadRequest, "The request body is not valid JSON.")
	}
	return body, nil
}

// heldAnswer holds a keyed route's answer until its effect is committed:
// the client hears of a success only once it is kept. Headers go straight
// to the real writer's map.
type heldAnswer struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (h *heldAnswer) Header() http.Header { return h.header }

func (h *heldAnswer) WriteHeader(status int) {
	if !h.wrote {
		h.status, h.wrote = status, true
	}
}

func (h *heldAnswer) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

func (h *heldAnswer) succeeded() bool { return h.status >= 200 && h.status <= 299 }

// drop takes back the headers the route set for its answer, which is not
// sent (those set before it, such as the rate limit's, stay).
func (h *heldAnswer) drop() {
	for _, name := range []string{"Location", "Content-Type", "Content-Length", "ETag", "WWW-Authenticate", "Retry-After", "Set-Cookie"} {
		h.header.Del(name)
	}
}

func (h *heldAnswer) sendTo(w http.ResponseWriter) {
	w.WriteHeader(h.status)
	w.Write(h.body.Bytes())
}
