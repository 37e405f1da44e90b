package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"time"
)

// WebAuthn Level 3 as the service speaks it: the relying party, the two
// structures a browser hands back (clientDataJSON and authenticatorData),
// public keys as the Level 3 JSON gives them (DER SubjectPublicKeyInfo, so
// no CBOR or COSE is parsed), and assertion signatures. The handlers are in
// passkeys.go.

// COSE algorithms a passkey may use: the three every platform covers.
const (
	algES256 = -7   // ECDSA on P-256 with SHA-256
	algEdDSA = -8   // Ed25519
	algRS256 = -257 // RSASSA-PKCS1-v1_5 with SHA-256
)

var offeredAlgorithms = []int{algES256, algEdDSA, algRS256}

// webauthnChallengeTTL is how long a ceremony's challenge lives.
const webauthnChallengeTTL = 5 * time.Minute

// webauthnRP is the relying party: its id (a registrable domain, which the
// browser binds every passkey to), the origin the pages run at, and the
// name authenticators show. id is empty when passkeys cannot work here
// (FRONTEND_URL on an IP address, and no WEBAUTHN_RP_ID).
type webauthnRP struct {
	id, origin, name string
}

// relyingParty is the RP of a configuration: WEBAUTHN_RP_ID, else
// FRONTEND_URL's host, at FRONTEND_URL's origin. In development the
// default FRONTEND_URL is on 127.0.0.1, an IP address WebAuthn refuses:
// passkeys then work at the same port on localhost.
func relyingParty(cfg config) webauthnRP {
	u, err := url.Parse(cfg.FrontendURL)
	if err != nil || u.Host == "" {
		return webauthnRP{}
	}
	rp := webauthnRP{id: cfg.WebAuthnRPID, origin: u.Scheme + "://" + u.Host, name: u.Hostname()}
	if rp.id == "" {
		rp.id = u.Hostname()
	}
	if _, err := netip.ParseAddr(rp.id); err == nil {
		if cfg.Env != envDevelopment || !netip.MustParseAddr(rp.id).IsLoopback() {
			return webauthnRP{}
		}
		rp.id, rp.name = "localhost", "localhost"
		rp.origin = u.Scheme + "://localhost:" + u.Port()
	}
	return rp
}

// b64 is WebAuthn JSON's base64url, without padding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// unb64 reads it back; padding is tolerated, anything else is an error.
func unb64(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.URLEncoding.DecodeString(s)
	}
	return b, err
}

// clientData is what the service checks of clientDataJSON: the ceremony,
// the challenge it answers and the page that asked.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

func parseClientData(raw []byte) (clientData, error) {
	var cd clientData
	if err := json.Unmarshal(raw, &cd); err != nil {
		return cd, fmt.Errorf("clientDataJSON is not JSON: %w", err)
	}
	if cd.Type == "" || cd.Challenge == "" || cd.Origin == "" {
		return cd, errors.New("clientDataJSON lacks type, challenge or origin")
	}
	return cd, nil
}

// The flags of authenticatorData.
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagBE = 0x08 // backup eligible
	flagBS = 0x10 // backed up
	flagAT = 0x40 // attested credential data follows
)

// authData is authenticatorData: the RP id's hash, the flags, the signature
// counter, and at registration (AT) the authenticator's AAGUID and the
// credential's id. What follows those (the COSE key, extensions) is not
// read: the Level 3 JSON gives the key as SPKI.
type authData struct {
	rpIDHash     []byte
	flags        byte
	signCount    uint32
	aaguid       []byte
	credentialID []byte
}

func (a authData) has(flag byte) bool { return a.flags&flag != 0 }

func parseAuthData(b []byte) (authData, error) {
	if len(b) < 37 {
		return authData{}, fmt.Errorf("authenticatorData is %d bytes, shorter than 37", len(b))
	}
	a := authData{rpIDHash: b[:32], flags: b[32], signCount: binary.BigEndian.Uint32(b[33:37])}
	if a.has(flagBS) && !a.has(flagBE) {
		return a, errors.New("authenticatorData says backed up but not backup eligible")
	}
	if !a.has(flagAT) {
		return a, nil
	}
	rest := b[37:]
	if len(rest) < 18 {
		return a, errors.New("authenticatorData's attested credential data is cut short")
	}
	a.aaguid = rest[:16]
	n := int(binary.BigEndian.Uint16(rest[16:18]))
	if n == 0 || n > 1023 || len(rest) < 18+n {
		return a, fmt.Errorf("authenticatorData's credential id of %d bytes does not fit", n)
	}
	a.credentialID = rest[18 : 18+n]
	return a, nil
}

// check is what both ceremonies verify of the browser's answer: the
// ceremony's type, our origin (not inside another site's frame), our RP
// id's hash, and a user present.
func (rp webauthnRP) check(cd clientData, ad authData, ceremony string) error {
	switch {
	case cd.Type != ceremony:
		return fmt.Errorf("clientDataJSON's type is %q, not %q", cd.Type, ceremony)
	case cd.Origin != rp.origin:
		return fmt.Errorf("clientDataJSON's origin %q is not %q", cd.Origin, rp.origin)
	case cd.CrossOrigin:
		return errors.New("the ceremony ran in a cross-origin frame")
	}
	want := sha256.Sum256([]byte(rp.id))
	if !bytes.Equal(ad.rpIDHash, want[:]) {
		return errors.New("authenticatorData's rpIdHash is not our RP id's")
	}
	if !ad.has(flagUP) {
		return errors.New("authenticatorData does not say a user was present")
	}
	return nil
}

// parsePublicKey reads a credential's public key (DER SubjectPublicKeyInfo)
// and checks that it is a key of alg: P-256 for ES256, Ed25519 for EdDSA,
// RSA of 2048 bits or more for RS256.
func parsePublicKey(spki []byte, alg int) (crypto.PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("the public key is not DER SubjectPublicKeyInfo: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if alg == algES256 && k.Curve == elliptic.P256() {
			return k, nil
		}
	case ed25519.PublicKey:
		if alg == algEdDSA {
			return k, nil
		}
	case *rsa.PublicKey:
		if alg == algRS256 && k.N.BitLen() >= 2048 {
			return k, nil
		}
	}
	return nil, fmt.Errorf("the public key (%T) is not one of algorithm %d", key, alg)
}

// verifySignature checks an assertion's signature over authenticatorData
// followed by the SHA-256 of clientDataJSON: ECDSA in ASN.1 over its
// SHA-256, Ed25519 over the message itself (never pre-hashed), RSA PKCS#1
// v1.5 over its SHA-256.
func verifySignature(key crypto.PublicKey, authenticatorData, clientDataJSON, sig []byte) bool {
	cdHash := sha256.Sum256(clientDataJSON)
	msg := append(append([]byte{}, authenticatorData...), cdHash[:]...)
	digest := sha256.Sum256(msg)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

// The browser's answers, as PublicKeyCredential.toJSON() gives them; what
// the service does not read is let through (clientExtensionResults,
// attestationObject with "none" attestation, fields of later levels).
type registrationJSON struct {
	RawID    string `json:"rawId"`
	Type     string `json:"type"`
	Response struct {
		ClientDataJSON     string   `json:"clientDataJSON"`
		AuthenticatorData  string   `json:"authenticatorData"`
		Transports         []string `json:"transports"`
		PublicKey          string   `json:"publicKey"`
		PublicKeyAlgorithm int      `json:"publicKeyAlgorithm"`
	} `json:"response"`
}

type assertionJSON struct {
	RawID    string `json:"rawId"`
	Type     string `json:"type"`
	Response struct {
		ClientDataJSON    string  `json:"clientDataJSON"`
		AuthenticatorData string  `json:"authenticatorData"`
		Signature         string  `json:"signature"`
		UserHandle        *string `json:"userHandle"`
	} `json:"response"`
}

// decoded are an answer's base64url fields as bytes.
type decoded struct {
	rawID, clientDataJSON, authenticatorData []byte
	cd                                       clientData
	ad                                       authData
}

// decodeAnswer reads what both answers share.
func decodeAnswer(rawID, typ, clientDataJSON, authenticatorData string) (decoded, error) {
	var d decoded
	var err error
	if typ != "public-key" {
		return d, fmt.Errorf("the credential's type is %q, not public-key", typ)
	}
	if d.rawID, err = unb64(rawID); err != nil || len(d.rawID) == 0 || len(d.rawID) > 1023 {
		return d, errors.New("rawId is not base64url of 1 to 1,023 bytes")
	}
	if d.clientDataJSON, err = unb64(clientDataJSON); err != nil {
		return d, errors.New("clientDataJSON is not base64url")
	}
	if d.authenticatorData, err = unb64(authenticatorData); err != nil {
		return d, errors.New("authenticatorData is not base64url")
	}
	if d.cd, err = parseClientData(d.clientDataJSON); err != nil {
		return d, err
	}
	if d.ad, err = parseAuthData(d.authenticatorData); err != nil {
		return d, err
	}
	return d, nil
}

// knownAuthenticators names the AAGUIDs of common passkey providers, for
// the owner's list; any other (all zeros included) is shown as unknown.
var knownAuthenticators = map[string]string{
	"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
	"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
	"dd4ec289-e01d-41c9-bb89-70fa845d4bf2": "iCloud Keychain (managed)",
	"08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
	"9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
	"6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
	"adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
	"bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
	"d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
}
