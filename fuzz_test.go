package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for every decoder an attacker reaches. Their seed corpora
// run as ordinary tests in `make test`; `make fuzz` runs each for longer.

// decodeIs4xx asserts a decode result is either a value that passes its
// own checks or a client error, never a panic or a 5xx.
func decodeIs4xx(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code.status() < 400 || ae.Code.status() > 499 {
		t.Fatalf("decode answered %v, want a 4xx problem", err)
	}
}

func FuzzDecodeBodies(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com","password":"password-123"}`, `{"email":null}`, `{"title":"x","description":null}`,
		`{"full_name":"\u0000"}`, `[]`, `"x"`, `{"a":1}`, `{"email":"A@B.CO"} {}`, `{"is_active":"yes"}`,
		`{"current_password":"p","new_password":"q"}`, `{"token":"abc","new_password":"password-123"}`, `{"title":` + strings.Repeat("[", 1000), "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := func() *http.Request {
			r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			return r
		}
		if v, err := decode[registerRequest](r()); err == nil {
			if emailProblem(v.Email.V) != "" || passwordProblem(v.Password.V) != "" {
				t.Fatalf("register accepted %q / %q", v.Email.V, v.Password.V)
			}
		} else {
			decodeIs4xx(t, err)
		}
		if v, err := decode[itemCreate](r()); err == nil {
			if !utf8.ValidString(v.Title.V) || strings.IndexByte(v.Title.V, 0) >= 0 || utf8.RuneCountInString(v.Title.V) > 255 {
				t.Fatalf("item accepted title %q", v.Title.V)
			}
		} else {
			decodeIs4xx(t, err)
		}
		_, err := decode[loginRequest](r())
		decodeIs4xx(t, err)
		_, err = decode[selfPatch](r())
		decodeIs4xx(t, err)
		_, err = decode[userPatch](r())
		decodeIs4xx(t, err)
		_, err = decode[userCreate](r())
		decodeIs4xx(t, err)
		_, err = decode[passwordChange](r())
		decodeIs4xx(t, err)
		_, err = decode[itemWrite](r())
		decodeIs4xx(t, err)
		if v, err := decode[emailRequest](r()); err == nil && emailProblem(v.Email.V) != "" {
			t.Fatalf("recovery accepted %q", v.Email.V)
		} else {
			decodeIs4xx(t, err)
		}
		if v, err := decode[resetRequest](r()); err == nil && passwordProblem(v.NewPassword.V) != "" {
			t.Fatalf("reset accepted %q", v.NewPassword.V)
		} else {
			decodeIs4xx(t, err)
		}
		_, err = decode[verifyRequest](r())
		decodeIs4xx(t, err)
	})
}

func FuzzLoginForm(f *testing.F) {
	for _, seed := range []string{"username=a%40example.com&password=password-123", "grant_type=client&username=x", "%zz", "username=&password=", "a=b&a=c", "username=a@b.co&password=%00%00%00%00%00%00%00%00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		v, err := decodeLogin(r)
		if err == nil && (emailProblem(v.Email.V) != "" || passwordProblem(v.Password.V) != "") {
			t.Fatalf("login form accepted %q / %q", v.Email.V, v.Password.V)
		}
		decodeIs4xx(t, err)
	})
}

func FuzzClientIP(f *testing.F) {
	for _, seed := range []struct{ peer, xff string }{
		{"10.0.0.1:5000", "203.0.113.9"}, {"10.0.0.1:5000", "1.2.3.4, 10.0.0.2"}, {"[::1]:80", "2001:db8::1"},
		{"198.51.100.1:1", "evil"}, {"10.0.0.1:5000", "[2001:db8::1]:443, ,"}, {"garbage", "1.1.1.1"}, {"10.0.0.1:1", "fe80::1%eth0"},
	} {
		f.Add(seed.peer, seed.xff)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		ip := clientIP(r, trusted)
		if _, ok := parseHop(peer); !ok {
			// Not a peer net/http would give: passed through as it came.
			if ip != peer {
				t.Fatalf("clientIP(%q, %q)=%q: an unreadable peer, yet not passed through", peer, xff, ip)
			}
			return
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			t.Fatalf("clientIP(%q, %q)=%q: not an address", peer, xff, ip)
		}
		if ip != a.String() {
			t.Fatalf("clientIP(%q, %q)=%q: not the canonical form %q", peer, xff, ip, a)
		}
		if a.Zone() != "" || a.Is4In6() {
			t.Fatalf("clientIP(%q, %q)=%q: zone or mapped form left in", peer, xff, ip)
		}
		if p, ok := parseHop(peer); ok && !isTrusted(p, trusted) && a != p {
			t.Fatalf("an untrusted peer %q chose its bucket %q through X-Forwarded-For", peer, ip)
		}
		if k := clientNetwork(ip); k == "" {
			t.Fatal("empty limit key")
		}
	})
}

func FuzzRequestIDAndTraceparent(f *testing.F) {
	for _, seed := range []string{"abc-123", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "ff-" + strings.Repeat("0", 52), "\n\r", strings.Repeat("a", 200), "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validRequestID(s) {
			if len(s) > 128 || strings.ContainsAny(s, " \"\\\r\n\x00") {
				t.Fatalf("request id %q accepted", s)
			}
		}
		if id := traceIDFrom(s); id != "" && (len(id) != 32 || !isLowerHex(id) || strings.Trim(id, "0") == "") {
			t.Fatalf("trace id %q from %q", id, s)
		}
	})
}

func FuzzEmailNormalisation(f *testing.F) {
	for _, seed := range []string{" A@Example.COM ", "jose\u0301@example.com", "ｍe@example.com", "a@b", "\"quoted\"@example.com", "a@xn--mnchen-3ya.de", "a@-.com"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := normalizeEmail(s)
		if normalizeEmail(n) != n {
			t.Fatalf("normalizeEmail is not idempotent on %q", s)
		}
		if emailProblem(n) != "" {
			return
		}
		for i := 0; i < len(n); i++ {
			if n[i] < 0x21 || n[i] > 0x7e || (n[i] >= 'A' && n[i] <= 'Z') {
				t.Fatalf("accepted %q, which has %q", n, n[i])
			}
		}
		if len(n) > 254 || !strings.Contains(n[strings.LastIndexByte(n, '@')+1:], ".") {
			t.Fatalf("accepted %q", n)
		}
	})
}

// FuzzWebAuthnReaders feeds the readers of what a browser (or anyone) sends
// as a passkey's answer: authenticatorData and clientDataJSON. Whatever
// the bytes, they answer a value or an error, never a panic; a value they
// accept keeps to its bounds (a credential id of 1 to 1,023 bytes that lies
// inside the data, backed up only when backup eligible).
func FuzzWebAuthnReaders(f *testing.F) {
	rpHash := make([]byte, 32)
	attested := append(append(append(append([]byte{}, rpHash...), flagUP|flagUV|flagAT, 0, 0, 0, 1), make([]byte, 16)...), 0, 4, 1, 2, 3, 4, 0xa0)
	for _, seed := range [][]byte{
		nil, make([]byte, 36), make([]byte, 37), append(append([]byte{}, rpHash...), flagUP, 0, 0, 0, 9), attested,
		attested[:50], append(append([]byte{}, rpHash...), flagAT, 0, 0, 0, 0, 0xff, 0xff), append(append([]byte{}, rpHash...), flagBS, 0, 0, 0, 0),
		[]byte(`{"type":"webauthn.get","challenge":"AAAA","origin":"https://app.example.com"}`), []byte(`{"type":1}`), []byte(`{`), []byte("\xff"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if ad, err := parseAuthData(b); err == nil {
			if len(ad.rpIDHash) != 32 || (ad.has(flagBS) && !ad.has(flagBE)) {
				t.Fatalf("accepted %x as %+v", b, ad)
			}
			if ad.has(flagAT) && (len(ad.credentialID) == 0 || len(ad.credentialID) > 1023 || len(ad.aaguid) != 16 || len(b) < 55+len(ad.credentialID)) {
				t.Fatalf("accepted attested data %x as %+v", b, ad)
			}
		}
		if cd, err := parseClientData(b); err == nil && (cd.Type == "" || cd.Challenge == "" || cd.Origin == "") {
			t.Fatalf("accepted %q as %+v", b, cd)
		}
	})
}
