package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// spkiPin is the base64 SHA-256 of the certificate's public key: Chromium
// accepts that one key for the test's localhost (and no other certificate
// error), so the browser checks whom it talks to without a CA installed.
func spkiPin(t *testing.T, certFile string) string {
	t.Helper()
	raw, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestFrontendJourneyInChromium walks the whole frontend as a person would,
// in headless Chromium through the project's nginx over TLS, against the
// real service with a real SMTP server: sign up and verify from the mailed
// link, sign in on the cookie session, items, sessions, a cross-site POST
// refused, sign out, recover and reset from the mailed link, two-factor
// sign-in with oathtool's codes and a recovery code, a 429's countdown, the
// users page as a superuser; at 1280x800 and 390x844, with axe-core on the
// main pages, no console error but the API's own 4xx answers, no CSP
// violation, and no token anywhere script can read.
func TestFrontendJourneyInChromium(t *testing.T) {
	needTool(t, "chromium")
	needTool(t, "oathtool")
	node := needTool(t, "node")
	nodeDir := e2eNodeDir(t)
	_, dsn := newTestDB(t)
	mailDir := t.TempDir()
	smtp := startSMTP(t, freePort(t), mailDir)
	httpsPort := freePort(t)
	env := mailEnv(dsn, smtp.port)
	env["FRONTEND_URL"] = fmt.Sprintf("https://localhost:%d", httpsPort)
	env["TRUSTED_PROXIES"] = "127.0.0.1/32"
	env["RATE_LIMIT_LOGIN_FAILURES"] = "3" // the countdown step spends it on an address of its own
	rn := startRun(t, env)
	waitReady(t, rn.url())
	n := startNginxOn(t, httpsPort, rn.port)

	shots := os.Getenv("FRONTEND_SCREENSHOTS") // to keep them; by default the test's temp folder
	if shots == "" {
		shots = t.TempDir()
	}
	cmd := exec.Command(node, "testdata/frontend_e2e.mjs")
	cmd.Env = append(os.Environ(),
		"HOME="+t.TempDir(),
		"E2E_NODE_DIR="+nodeDir,
		"BASE_URL="+n.httpsURL(),
		"SPKI_PIN="+spkiPin(t, filepath.Join(filepath.Dir(n.caFile), "tls.crt")),
		"NODE_EXTRA_CA_CERTS="+n.caFile, // the script's own requests trust the test CA
		"MAILDIR="+filepath.Join(mailDir, "maildir"),
		"SCREENSHOTS="+shots,
		"ADMIN_EMAIL="+env["FIRST_SUPERUSER_EMAIL"], "ADMIN_PASSWORD="+env["FIRST_SUPERUSER_PASSWORD"])
	steps := runDriver(t, cmd, 30)
	t.Logf("%d steps passed; screenshots in %s", steps, shots)
	// The token never reached a log line.
	if strings.Contains(rn.logs.String(), "__Host-session=") {
		t.Fatal("the session cookie reached the service's log")
	}
}

// TestFrontendInDevelopmentInChromium opens the app as `make run` serves it,
// the service alone over http on 127.0.0.1, and signs in as the development
// superuser: the cookie session works there too.
func TestFrontendInDevelopmentInChromium(t *testing.T) {
	needTool(t, "chromium")
	node := needTool(t, "node")
	nodeDir := e2eNodeDir(t)
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "PORT": strconv.Itoa(freePort(t))})
	waitReady(t, rn.url())
	cmd := exec.Command(node, "testdata/frontend_dev.mjs")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "E2E_NODE_DIR="+nodeDir, "BASE_URL="+rn.url(),
		"ADMIN_EMAIL=admin@example.com", "ADMIN_PASSWORD=changethis")
	runDriver(t, cmd, 5)
}

// runDriver runs a browser driver script, which prints its steps and the
// problems it saw as JSON; every step must pass, with no problem, and at
// least minSteps must have run. It answers how many did.
func runDriver(t *testing.T, cmd *exec.Cmd, minSteps int) int {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the browser driver: %v\n%s", err, out)
	}
	var res struct {
		Steps []struct {
			Step   string
			Width  int
			OK     bool
			Detail any
		}
		Problems []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("driver output %q: %v", out, err)
	}
	for _, s := range res.Steps {
		t.Logf("%v %s (width %d) %v", s.OK, s.Step, s.Width, s.Detail)
		if !s.OK {
			t.Errorf("%s (width %d): %v", s.Step, s.Width, s.Detail)
		}
	}
	if len(res.Problems) > 0 {
		last := "none"
		if len(res.Steps) > 0 {
			last = res.Steps[len(res.Steps)-1].Step
		}
		t.Fatalf("problems on the pages (after %d steps, the last %q): %v", len(res.Steps), last, res.Problems)
	}
	if len(res.Steps) < minSteps {
		t.Fatalf("only %d steps ran: %+v", len(res.Steps), res.Steps)
	}
	return len(res.Steps)
}
