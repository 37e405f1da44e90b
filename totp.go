package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The second factor's secrets (ASVS 6.3.3, 6.5): TOTP per RFC 6238 (SHA-1,
// 6 digits, 30 s steps, one step of drift either way) and single-use
// recovery codes. The secret is sealed at rest with SECRET_KEY; a recovery
// code is kept as its SHA-256.

const (
	totpDigits  = 6
	totpPeriod  = 30 * time.Second
	totpDrift   = 1 // steps accepted on either side of now: a clock 30 s off still works
	secretBytes = 20

	recoveryCodeCount = 10
	// recoveryCodeBytes is 120 random bits: past 112, a SHA-256 of the code
	// is enough at rest (ASVS 6.5.2), and a code is found by its hash.
	recoveryCodeBytes = 15
)

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// hotp is RFC 4226's code of secret at counter, digits long.
func hotp(secret []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(binary.BigEndian.AppendUint64(nil, counter))
	sum := mac.Sum(nil)
	offset := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[offset:]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	code := strconv.FormatUint(uint64(n%mod), 10)
	return strings.Repeat("0", digits-len(code)) + code
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / int64(totpPeriod/time.Second) }

// matchTOTP is the step, within the drift allowance around now, whose code
// is code. Every candidate is computed and compared in constant time, so a
// wrong code takes as long as a right one.
func matchTOTP(secret []byte, now time.Time, code string) (int64, bool) {
	var found int64
	ok := 0
	for d := -totpDrift; d <= totpDrift; d++ {
		step := totpStep(now) + int64(d)
		eq := subtle.ConstantTimeCompare([]byte(hotp(secret, uint64(step), totpDigits)), []byte(code))
		if eq == 1 {
			found = step
		}
		ok |= eq
	}
	return found, ok == 1
}

// authenticator seals TOTP secrets and names the service in the
// authenticator app (the otpauth URI's issuer: FRONTEND_URL's host).
type authenticator struct {
	sealer *sealer
	issuer string
	now    func() time.Time
}

// newAuthenticator seals with secretKey (SECRET_KEY) and names the host of
// frontendURL as the issuer.
func newAuthenticator(secretKey []byte, frontendURL string, now func() time.Time) *authenticator {
	issuer := "Backend"
	if u, err := url.Parse(frontendURL); err == nil && u.Hostname() != "" {
		issuer = u.Hostname()
	}
	return &authenticator{sealer: newSealer(secretKey, "totp"), issuer: issuer, now: now}
}

// otpauthURI is the Key Uri Format of an enrolment, for the app's QR code
// (drawn by the frontend) or to be typed.
func (a *authenticator) otpauthURI(email string, secret []byte) string {
	label := url.PathEscape(a.issuer) + ":" + url.PathEscape(email)
	q := url.Values{"secret": {base32NoPad.EncodeToString(secret)}, "issuer": {a.issuer}, "algorithm": {"SHA1"},
		"digits": {strconv.Itoa(totpDigits)}, "period": {strconv.Itoa(int(totpPeriod / time.Second))}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// newRecoveryCodes are ten codes to show once, grouped for reading
// ("abcd-efgh-…"), and their hashes to keep.
func newRecoveryCodes() (codes []string, hashes [][]byte) {
	for range recoveryCodeCount {
		b := make([]byte, recoveryCodeBytes)
		rand.Read(b)
		raw := strings.ToLower(base32NoPad.EncodeToString(b)) // 24 characters
		var groups []string
		for i := 0; i < len(raw); i += 4 {
			groups = append(groups, raw[i:i+4])
		}
		codes = append(codes, strings.Join(groups, "-"))
		hashes = append(hashes, hashToken(raw))
	}
	return codes, hashes
}

// recoveryCodeKey is a recovery code as it is hashed: lower case, without
// the spaces and dashes a person may type; "" when it cannot be one.
func recoveryCodeKey(code string) string {
	k := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(k) != base32NoPad.EncodedLen(recoveryCodeBytes) {
		return ""
	}
	if _, err := base32NoPad.DecodeString(strings.ToUpper(k)); err != nil {
		return ""
	}
	return k
}

// isTOTPCode is six digits.
func isTOTPCode(code string) bool {
	if len(code) != totpDigits {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
