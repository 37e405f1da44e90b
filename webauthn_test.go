package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// softAuthenticator is a passkey authenticator written in Go for the tests:
// a real key pair of one algorithm, answering the service's options as a
// browser's PublicKeyCredential.toJSON() would, so each check of the
// service can be met or broken on purpose.
type softAuthenticator struct {
	t      testing.TB
	alg    int
	key    crypto.Signer
	spki   []byte
	credID []byte
	handle []byte // the user handle, learned at registration
	count  uint32 // the signature counter; 0 keeps none
	aaguid []byte

	// What the next answer says, for the tests that break one thing.
	origin, rpID string
	flags        byte
	tweak        func(clientData map[string]any)
}

func newSoftAuthenticator(t testing.TB, alg int) *softAuthenticator {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case algES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case algEdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case algRS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	credID := make([]byte, 16)
	rand.Read(credID)
	return &softAuthenticator{t: t, alg: alg, key: key, spki: spki, credID: credID, count: 1, aaguid: make([]byte, 16),
		flags: flagUP | flagUV | flagBE | flagBS}
}

// at points the authenticator at a's relying party.
func (s *softAuthenticator) at(a *testApp) *softAuthenticator {
	rp := relyingParty(a.cfg)
	if s.origin == "" {
		s.origin = rp.origin
	}
	if s.rpID == "" {
		s.rpID = rp.id
	}
	return s
}

// authData is authenticatorData: the RP id's hash, the flags, the counter,
// and at registration the attested credential data (with an empty CBOR
// map where the COSE key goes: the service reads the SPKI instead).
func (s *softAuthenticator) authData(attested bool) []byte {
	h := sha256.Sum256([]byte(s.rpID))
	b := append([]byte{}, h[:]...)
	flags := s.flags
	if attested {
		flags |= flagAT
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, s.count)
	if attested {
		b = append(b, s.aaguid...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.credID)))
		b = append(b, s.credID...)
		b = append(b, 0xa0)
	}
	return b
}

func (s *softAuthenticator) clientData(ceremony, challenge string) []byte {
	cd := map[string]any{"type": ceremony, "challenge": challenge, "origin": s.origin, "crossOrigin": false}
	if s.tweak != nil {
		s.tweak(cd)
	}
	b, _ := json.Marshal(cd)
	return b
}

// registration answers creation options as RegistrationResponseJSON.
func (s *softAuthenticator) registration(options map[string]any) map[string]any {
	user, _ := options["user"].(map[string]any)
	handle, err := unb64(user["id"].(string))
	if err != nil {
		s.t.Fatalf("user.id %v: %v", user["id"], err)
	}
	s.handle = handle
	return map[string]any{"id": b64(s.credID), "rawId": b64(s.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":     b64(s.clientData("webauthn.create", options["challenge"].(string))),
			"authenticatorData":  b64(s.authData(true)),
			"transports":         []string{"internal", "hybrid"},
			"publicKey":          b64(s.spki),
			"publicKeyAlgorithm": s.alg,
			"attestationObject":  b64([]byte{0xa3}),
		},
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{}}
}

// assertion answers request options as AuthenticationResponseJSON, the
// counter moved on first.
func (s *softAuthenticator) assertion(challenge string) map[string]any {
	if s.count > 0 {
		s.count++
	}
	ad := s.authData(false)
	cdj := s.clientData("webauthn.get", challenge)
	cdHash := sha256.Sum256(cdj)
	msg := append(append([]byte{}, ad...), cdHash[:]...)
	digest := sha256.Sum256(msg)
	var sig []byte
	var err error
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, msg)
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	}
	if err != nil {
		s.t.Fatal(err)
	}
	response := map[string]any{"clientDataJSON": b64(cdj), "authenticatorData": b64(ad), "signature": b64(sig), "userHandle": b64(s.handle)}
	return map[string]any{"id": b64(s.credID), "rawId": b64(s.credID), "type": "public-key", "response": response,
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{}}
}

// register adds this authenticator's passkey to the account of token
// (whose password is password-123) and answers POST /users/me/passkeys.
func (s *softAuthenticator) register(a *testApp, token, email string) response {
	s.t.Helper()
	return s.at(a).registerVia(a.do, token, "password-123")
}

// registerVia is register through do, with the account's password.
func (s *softAuthenticator) registerVia(do func(req) response, token, password string) response {
	s.t.Helper()
	options := do(req{method: "POST", path: "/api/v1/users/me/passkeys/options", token: token, body: map[string]any{"current_password": password}})
	expectStatus(s.t, options, 200)
	r := do(req{method: "POST", path: "/api/v1/users/me/passkeys", token: token, body: map[string]any{"credential": s.registration(options.json)}})
	expectStatus(s.t, r, 201)
	return r
}

// challenge asks POST /auth/passkey/options for one.
func (s *softAuthenticator) challenge(a *testApp) string {
	s.t.Helper()
	return s.challengeVia(a.do)
}

func (s *softAuthenticator) challengeVia(do func(req) response) string {
	s.t.Helper()
	r := do(req{method: "POST", path: "/api/v1/auth/passkey/options"})
	expectStatus(s.t, r, 200)
	return r.str("challenge")
}

// signIn signs in with this passkey: a challenge, then its assertion.
func (s *softAuthenticator) signIn(a *testApp) response {
	s.t.Helper()
	return s.at(a).signInVia(a.do)
}

func (s *softAuthenticator) signInVia(do func(req) response) response {
	s.t.Helper()
	return do(req{method: "POST", path: "/api/v1/auth/passkey", body: map[string]any{"credential": s.assertion(s.challengeVia(do))}})
}
