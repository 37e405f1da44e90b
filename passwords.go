package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Secrets a user holds: passwords, hashed slowly, and tokens (sessions,
// mailed links), random and hashed fast.

// newToken is an opaque token of 256 random bits; only its SHA-256 is
// stored, so a table of them holds nothing that logs anyone in.
func newToken() (token string, hash []byte) {
	var b [32]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// passwordIterations is OWASP's figure for PBKDF2-HMAC-SHA256.
const passwordIterations = 600_000

// passwordHasher hashes with PBKDF2-HMAC-SHA256 in a few slots (one a
// core): each hash costs about a seventh of a second of a core, and a burst
// of logins must not starve every other request.
//
// The slots are shared fairly, because a flood must not take them from the
// account's owner: a claim that goes first (the caller is signed in, holds
// a mailed link, or signs in from a network the account used before) is
// served before any other; the others are served one client network at a
// time, in turn, and a network may have only perNetwork claims waiting.
// Hundreds of addresses, each within its own rate limit, then cost the
// owner at most the hashes already running, and each other only its share.
// A claim that waits longer than maxWait is refused (503, Retry-After).
type passwordHasher struct {
	iterations int
	slots      int
	maxWait    time.Duration
	perNetwork int

	mu      sync.Mutex
	running int
	first   []*hashWaiter            // claims that go first, in arrival order
	queues  map[string][]*hashWaiter // the others, by client network
	turns   []string                 // networks with claims waiting, in the order they are served

	derived atomic.Int64        // hashes computed, for tests
	waiting atomic.Int64        // claims waiting for a slot (metrics)
	observe func(time.Duration) // each hash's time, waiting included (metrics)
}

// hashClaim is whose hash it is: the client network it is computed for,
// and whether that network goes first.
type hashClaim struct {
	network string
	first   bool
}

type hashWaiter struct{ granted chan struct{} }

func newPasswordHasher(iterations, slots int) *passwordHasher {
	return &passwordHasher{iterations: iterations, slots: slots, maxWait: 2 * time.Second, perNetwork: 2, queues: map[string][]*hashWaiter{}}
}

// errHasherBusy is answered 503 with Retry-After.
var errHasherBusy = &apiError{Code: codeUnavailable, Detail: "Too many sign-ins are being processed; try again in a moment.", RetryAfter: time.Second}

// acquire waits for a slot for c.
func (p *passwordHasher) acquire(ctx context.Context, c hashClaim) error {
	p.mu.Lock()
	if p.running < p.slots {
		p.running++
		p.mu.Unlock()
		return nil
	}
	if !c.first && len(p.queues[c.network]) >= p.perNetwork {
		p.mu.Unlock()
		return errHasherBusy // this network already has its share waiting
	}
	w := &hashWaiter{granted: make(chan struct{})}
	if c.first {
		p.first = append(p.first, w)
	} else {
		if len(p.queues[c.network]) == 0 {
			p.turns = append(p.turns, c.network)
		}
		p.queues[c.network] = append(p.queues[c.network], w)
	}
	p.waiting.Add(1)
	p.mu.Unlock()

	t := time.NewTimer(p.maxWait)
	defer t.Stop()
	var err error
	select {
	case <-w.granted:
		return nil
	case <-t.C:
		err = errHasherBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.withdraw(w, c) {
		p.waiting.Add(-1)
	} else {
		p.handOn() // granted as it gave up: the slot goes to the next claim
	}
	return err
}

// release gives a slot back.
func (p *passwordHasher) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handOn()
}

// handOn passes a freed slot to the next claim: the first of those that go
// first, else the next network's oldest claim, that network then going to
// the back of the turn. With no claim waiting, the slot is free.
func (p *passwordHasher) handOn() {
	var next *hashWaiter
	switch {
	case len(p.first) > 0:
		next, p.first = p.first[0], p.first[1:]
	case len(p.turns) > 0:
		network := p.turns[0]
		p.turns = p.turns[1:]
		q := p.queues[network]
		next = q[0]
		if len(q) == 1 {
			delete(p.queues, network)
		} else {
			p.queues[network] = q[1:]
			p.turns = append(p.turns, network)
		}
	default:
		p.running--
		return
	}
	p.waiting.Add(-1)
	close(next.granted)
}

// withdraw removes w, still waiting, from its queue, and reports whether it
// was still there.
func (p *passwordHasher) withdraw(w *hashWaiter, c hashClaim) bool {
	if c.first {
		for i, x := range p.first {
			if x == w {
				p.first = append(p.first[:i], p.first[i+1:]...)
				return true
			}
		}
		return false
	}
	q := p.queues[c.network]
	for i, x := range q {
		if x != w {
			continue
		}
		if len(q) == 1 {
			delete(p.queues, c.network)
			for j, n := range p.turns {
				if n == c.network {
					p.turns = append(p.turns[:j], p.turns[j+1:]...)
					break
				}
			}
		} else {
			p.queues[c.network] = append(q[:i:i], q[i+1:]...)
		}
		return true
	}
	return false
}

// busy is how many hashes are running now (metrics).
func (p *passwordHasher) busy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// hash returns "pbkdf2-sha256$<iterations>$<salt>$<key>", self-describing so
// the cost can be raised later and old hashes still verify.
func (p *passwordHasher) hash(ctx context.Context, c hashClaim, password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := p.derive(ctx, c, password, salt, p.iterations)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return "pbkdf2-sha256$" + strconv.Itoa(p.iterations) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

func (p *passwordHasher) derive(ctx context.Context, c hashClaim, password string, salt []byte, iterations int) ([]byte, error) {
	start := time.Now()
	if err := p.acquire(ctx, c); err != nil {
		return nil, err
	}
	defer p.release()
	p.derived.Add(1)
	if p.observe != nil {
		defer func() { p.observe(time.Since(start)) }()
	}
	return pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
}

// verify reports whether password matches encoded, and whether encoded was
// made with weaker parameters than today's and should be replaced.
func (p *passwordHasher) verify(ctx context.Context, c hashClaim, password, encoded string) (ok, stale bool, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false, false, errors.New("unknown password hash format")
	}
	iterations, err := strconv.Atoi(parts[1])
	if err != nil || iterations < 1 {
		return false, false, errors.New("bad iteration count in password hash")
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[2])
	want, err2 := b64.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false, false, fmt.Errorf("bad encoding in password hash")
	}
	got, err := p.derive(ctx, c, password, salt, iterations)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && iterations < p.iterations, nil
}

// burn spends the time of one verification, so a login for an unknown email
// takes as long as one with a wrong password.
func (p *passwordHasher) burn(ctx context.Context, c hashClaim, password string) error {
	_, err := p.derive(ctx, c, password, make([]byte, 16), p.iterations)
	return err
}

// newUUID is a random (version 4) UUID: the id of a row whose answer is
// made before its insert (createItem).
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuidString(b[:])
}

// uuidString writes 16 bytes as a UUID.
func uuidString(b []byte) string {
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
