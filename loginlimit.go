package main

import (
	"context"
	"net/http"
	"time"
)

// Password guessing is limited per account without letting anyone lock the
// owner out. Two budgets count failures (a wrong password at login, a wrong
// current password at a password or email change):
//   - login: one account from one client network. Another network is not
//     affected, so 10 guesses from an attacker's address leave the owner's
//     address alone.
//   - account: one account from every network together (ASVS 2.2.1), for
//     guesses spread over many addresses. When it is spent, a network the
//     account signed in from successfully in the last knownNetworkTTL still
//     gets through (its own login budget still applies); others get 429.
//
// A failure is reserved before the password is hashed and given back when
// the password proves right, so concurrent guesses cannot overshoot either
// budget: the 11th of 50 parallel guesses is refused before it is hashed.

// knownNetworkTTL is how long a successful sign-in vouches for its network.
const knownNetworkTTL = 30 * 24 * time.Hour

// passwordAttempt is the failures reserved for one password check.
type passwordAttempt struct {
	l                    *rateLimits
	loginKey, accountKey string // "" when not reserved
	w                    http.ResponseWriter
	st                   *requestState
}

// reservePasswordFailure reserves one failure for email from the request's
// client network, before any hashing. known says whether that network is
// one the account signed in from lately: it passes when the account budget
// is spent.
func (l *rateLimits) reservePasswordFailure(w http.ResponseWriter, r *http.Request, email string, known bool) (*passwordAttempt, error) {
	ctx, st, now := r.Context(), stateFrom(r.Context()), l.now()
	a := &passwordAttempt{l: l, w: w, st: st}
	if !l.enabled {
		return a, nil
	}
	network := clientNetwork(st.clientIP)
	loginKey := email + " " + network
	d, err := l.store.take(ctx, l.login, loginKey, now, true)
	if err != nil {
		return nil, l.storeFailed(ctx, l.login, err)
	}
	if err := l.apply(w, st, d); err != nil {
		return nil, err
	}
	a.loginKey = loginKey
	d, err = l.store.take(ctx, l.account, email, now, true)
	if err != nil {
		a.succeeded(ctx)
		return nil, l.storeFailed(ctx, l.account, err)
	}
	if d.allowed {
		a.accountKey = email
		l.apply(w, st, d)
		return a, nil
	}
	if known {
		return a, nil // a network the owner uses: only its own login budget applies
	}
	a.succeeded(ctx) // refused: nothing counts
	return nil, l.apply(w, st, d)
}

// succeeded gives the reserved failures back, and the headers say so: the
// password was right, or could not be checked.
func (a *passwordAttempt) succeeded(ctx context.Context) {
	now := a.l.now()
	for _, res := range []struct {
		p   *policy
		key string
	}{{a.l.login, a.loginKey}, {a.l.account, a.accountKey}} {
		if res.key == "" {
			continue
		}
		if err := a.l.store.giveBack(ctx, res.p, res.key, now); err != nil {
			a.l.logger.WarnContext(ctx, "rate-limit store could not give back a reserved failure", "policy", res.p.name, "error", err.Error())
		}
		refund(a.w, a.st, res.p)
	}
	a.loginKey, a.accountKey = "", ""
}

// storeFailed logs a store error on a password route and fails closed.
func (l *rateLimits) storeFailed(ctx context.Context, p *policy, err error) error {
	l.logger.ErrorContext(ctx, "rate-limit store failed", "policy", p.name, "fail_closed", true, "error", err.Error())
	return unavailable(err)
}

// countUnknownCredential counts a failed passkey sign-in whose credential
// the service does not know against the client network's login budget
// (no account to charge): 429 once that is spent.
func (l *rateLimits) countUnknownCredential(w http.ResponseWriter, r *http.Request) error {
	if !l.enabled {
		return nil
	}
	ctx, st := r.Context(), stateFrom(r.Context())
	d, err := l.store.take(ctx, l.login, "(unknown passkey) "+clientNetwork(st.clientIP), l.now(), true)
	if err != nil {
		return l.storeFailed(ctx, l.login, err)
	}
	return l.apply(w, st, d)
}
