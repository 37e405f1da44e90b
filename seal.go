package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
)

// sealer encrypts what must not be readable at rest (a queued mail, which
// carries a link with a token) with AES-256-GCM under a key derived from
// SECRET_KEY for one purpose. The database holds the sealed bytes, never
// the key, so a dump, a backup or an injection yields nothing usable.
type sealer struct{ aead cipher.AEAD }

// newSealer derives purpose's key from secret (HKDF-SHA256), so one
// SECRET_KEY serves several uses without one's ciphertext opening under
// another's key.
func newSealer(secret []byte, purpose string) *sealer {
	key, err := hkdf.Key(sha256.New, secret, nil, "backend "+purpose, 32)
	if err != nil {
		panic(err) // only for a length HKDF cannot make; 32 it always can
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic(err)
	}
	return &sealer{aead: aead}
}

// seal encrypts plain, bound to context (a recipient, say): the sealed
// bytes open only with the same context.
func (s *sealer) seal(plain, context []byte) []byte {
	return s.aead.Seal(nil, nil, plain, context)
}

// errUnsealable is a sealed value that does not open: made under another
// SECRET_KEY, or changed.
var errUnsealable = errors.New("sealed value does not open: it was sealed under another SECRET_KEY, or altered")

func (s *sealer) open(sealed, context []byte) ([]byte, error) {
	plain, err := s.aead.Open(nil, nil, sealed, context)
	if err != nil {
		return nil, errUnsealable
	}
	return plain, nil
}
