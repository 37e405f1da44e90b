package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// passwordIterations is OWASP's figure for PBKDF2-HMAC-SHA256.
const passwordIterations = 600_000

// passwordHasher hashes with PBKDF2-HMAC-SHA256 and bounds how many hashes
// run at once: each costs tens of milliseconds of a core, and a burst of
// logins must not starve every other request.
type passwordHasher struct {
	iterations int
	slots      chan struct{}
	maxWait    time.Duration
	derived    atomic.Int64        // hashes computed, for tests and metrics
	waiting    atomic.Int64        // hashes waiting for a slot
	observe    func(time.Duration) // each hash's time, waiting included (metrics)
}

func newPasswordHasher(iterations, concurrent int) *passwordHasher {
	return &passwordHasher{iterations: iterations, slots: make(chan struct{}, concurrent), maxWait: 2 * time.Second}
}

// errHasherBusy is answered 503 with Retry-After.
var errHasherBusy = &apiError{Code: codeUnavailable, Detail: "Too many sign-ins are being processed; try again in a moment.", RetryAfter: time.Second}

func (p *passwordHasher) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	t := time.NewTimer(p.maxWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errHasherBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *passwordHasher) release() { <-p.slots }

// hash returns "pbkdf2-sha256$<iterations>$<salt>$<key>", self-describing so
// the cost can be raised later and old hashes still verify.
func (p *passwordHasher) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := p.derive(ctx, password, salt, p.iterations)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return "pbkdf2-sha256$" + strconv.Itoa(p.iterations) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

func (p *passwordHasher) derive(ctx context.Context, password string, salt []byte, iterations int) ([]byte, error) {
	start := time.Now()
	if err := p.acquire(ctx); err != nil {
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
func (p *passwordHasher) verify(ctx context.Context, password, encoded string) (ok, stale bool, err error) {
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
	got, err := p.derive(ctx, password, salt, iterations)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && iterations < p.iterations, nil
}

// burn spends the time of one verification, so a login for an unknown email
// takes as long as one with a wrong password.
func (p *passwordHasher) burn(ctx context.Context, password string) error {
	_, err := p.derive(ctx, password, make([]byte, 16), p.iterations)
	return err
}
