package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// RFC 6238 Appendix B: the SHA-1 vectors (8 digits, the 20-byte ASCII seed).
func TestTOTPMatchesRFC6238Vectors(t *testing.T) {
	seed := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		if got := hotp(seed, uint64(totpStep(time.Unix(v.unix, 0))), 8); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.code)
		}
	}
}

// The drift allowance is one step either way: a clock 30 s off works, one
// 60 s off does not; matchTOTP names the step it matched.
func TestTOTPDriftAllowance(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	for _, c := range []struct {
		offset time.Duration
		ok     bool
	}{{0, true}, {-30 * time.Second, true}, {30 * time.Second, true}, {-60 * time.Second, false}, {60 * time.Second, false}} {
		at := now.Add(c.offset)
		step, ok := matchTOTP(secret, now, hotp(secret, uint64(totpStep(at)), totpDigits))
		if ok != c.ok || (ok && step != totpStep(at)) {
			t.Errorf("a code of %v off: ok=%v step=%d, want ok=%v step=%d", c.offset, ok, step, c.ok, totpStep(at))
		}
	}
}

func TestSecondFactorCodeShapes(t *testing.T) {
	codes, hashes := newRecoveryCodes()
	if len(codes) != recoveryCodeCount || len(hashes) != recoveryCodeCount {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	c := codes[0]
	for _, typed := range []string{c, strings.ToUpper(c), strings.ReplaceAll(c, "-", ""), strings.ReplaceAll(c, "-", " ")} {
		if k := recoveryCodeKey(typed); !bytes.Equal(hashToken(k), hashes[0]) {
			t.Errorf("%q does not find its hash", typed)
		}
	}
	for _, bad := range []string{"", "123456", "abcd", c + "a", strings.Replace(c, c[:1], "1", 1), "../../etc/passwd"} {
		if recoveryCodeKey(bad) != "" && bad != c {
			t.Errorf("%q passes for a recovery code", bad)
		}
	}
	for code, want := range map[string]bool{"123456": true, "012345": true, "12345": false, "1234567": false, "12345a": false, "١٢٣٤٥٦": false} {
		if isTOTPCode(code) != want {
			t.Errorf("isTOTPCode(%q) = %v", code, !want)
		}
	}
}

// A wrong code and a right one cost the same work: every step in the
// window is computed and compared in constant time. This guards the shape,
// the timing is BenchmarkMatchTOTP's business.
func BenchmarkMatchTOTP(b *testing.B) {
	secret := []byte("12345678901234567890")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	right := hotp(secret, uint64(totpStep(now)), totpDigits)
	for _, c := range []struct{ name, code string }{{"right", right}, {"wrong", "000000"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				matchTOTP(secret, now, c.code)
			}
		})
	}
}
