package main

import "testing"

// What a sign-in costs the server, a passkey's against a password's, end
// to end through HTTP with the production hashing cost (PBKDF2, 600,000
// iterations). A passkey sign-in is two requests (a challenge, then the
// assertion) and one signature check; a password sign-in is one request
// and one hash. The client's signing is left out of the timing.
func benchSignIn(b *testing.B) (*testApp, *softAuthenticator) {
	db, dsn := migratedDB(b)
	a := newTestAppHashing(b, db, dsn, map[string]string{"LOG_LEVEL": "warn"}, passwordIterations)
	a.register("owner@example.com", "password-123")
	key := newSoftAuthenticator(b, algES256)
	key.register(a, a.login("owner@example.com", "password-123"), "owner@example.com")
	return a, key
}

func BenchmarkSignInPassword(b *testing.B) {
	a, _ := benchSignIn(b)
	for b.Loop() {
		expectStatus(b, a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "owner@example.com", "password": "password-123"}}), 200)
	}
}

func BenchmarkSignInPasskey(b *testing.B) {
	a, key := benchSignIn(b)
	for b.Loop() {
		challenge := key.challenge(a)
		b.StopTimer()
		assertion := key.assertion(challenge)
		b.StartTimer()
		expectStatus(b, a.do(req{method: "POST", path: "/api/v1/auth/passkey", body: map[string]any{"credential": assertion}}), 200)
	}
}
