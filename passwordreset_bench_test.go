package main

import (
	"net/http"
	"strings"
	"testing"
)

// The recovery answer does the same work whether or not the address has an
// account (one insert; the worker decides later). Compare the two: their
// ns/op should be within noise of each other.
func benchPasswordRecovery(b *testing.B, email string) {
	a := newTestApp(b, map[string]string{"LOG_LEVEL": "warn"})
	a.register("known@example.com", "password-123")
	body := `{"email":"` + email + `"}`
	b.ResetTimer()
	for b.Loop() {
		r, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/auth/password-recovery", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != 202 {
			b.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	}
}

func BenchmarkPasswordRecoveryKnownEmail(b *testing.B) { benchPasswordRecovery(b, "known@example.com") }
func BenchmarkPasswordRecoveryUnknownEmail(b *testing.B) {
	benchPasswordRecovery(b, "unknown@example.com")
}
