package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
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

// TestFrontendJourney walks the whole frontend as a person would, in two
// engines (Chromium through playwright-core, Firefox ESR through
// puppeteer-core over WebDriver BiDi, one journey for both:
// testdata/browser.mjs), through the project's nginx over TLS, against the
// real service with a real SMTP server: sign up and verify from the mailed
// link, sign in on the cookie session, every page's loading state, items
// created, edited, deleted and paged (page 3 kept by reload, Back and
// Forward), a 5xx's request id, a cross-site POST refused, the sessions
// list after the changes that end sessions, a password change, the
// appearance, recovery and reset from the mailed link, two-factor sign-in
// (its QR code decoded by zbarimg to the setup link; codes from oathtool;
// a recovery code), an email change, a 429's countdown, a superuser's
// items and users; then every page at 1280x800 and 390x844 in the light
// and the dark theme, screenshotted and checked by axe-core (colour
// contrast included). No script error, no CSP violation, no console error
// but the API's own answers, and no token anywhere script can read.
func TestFrontendJourney(t *testing.T) {
	needTool(t, "chromium")
	needTool(t, "firefox-esr")
	needTool(t, "oathtool")
	needTool(t, "zbarimg")
	node := needTool(t, "node")
	nodeDir := e2eNodeDir(t)
	shots := os.Getenv("FRONTEND_SCREENSHOTS") // to keep them; by default the test's temp folder
	if shots == "" {
		shots = t.TempDir()
	}
	for _, engine := range []string{"chromium", "firefox"} {
		t.Run(engine, func(t *testing.T) {
			_, dsn := newTestDB(t)
			mailDir := t.TempDir()
			smtp := startSMTP(t, freePort(t), mailDir)
			httpsPort := freePort(t)
			env := mailEnv(dsn, smtp.port)
			env["FRONTEND_URL"] = fmt.Sprintf("https://localhost:%d", httpsPort)
			env["TRUSTED_PROXIES"] = "127.0.0.1/32"
			env["RATE_LIMIT_LOGIN_FAILURES"] = "3"   // the countdown step spends it on an address of its own
			env["RATE_LIMIT_AUTH_REQUESTS"] = "1000" // the journey signs in a few dozen times from one address
			rn := startRun(t, env)
			waitReady(t, rn.url())
			n := startNginxOn(t, httpsPort, rn.port)
			cmd := exec.Command(node, "testdata/frontend_e2e.mjs")
			cmd.Env = append(os.Environ(),
				"ENGINE="+engine,
				"HOME="+t.TempDir(),
				"E2E_NODE_DIR="+nodeDir,
				"BASE_URL="+n.httpsURL(),
				"SPKI_PIN="+spkiPin(t, filepath.Join(filepath.Dir(n.caFile), "tls.crt")),
				"NODE_EXTRA_CA_CERTS="+n.caFile, // the script's own requests trust the test CA
				"MAILDIR="+filepath.Join(mailDir, "maildir"),
				"SCREENSHOTS="+shots,
				"ADMIN_EMAIL="+env["FIRST_SUPERUSER_EMAIL"], "ADMIN_PASSWORD="+env["FIRST_SUPERUSER_PASSWORD"])
			steps := runDriver(t, cmd, 100)
			t.Logf("%s: %d steps passed; screenshots in %s", engine, steps, shots)
			// The token never reached a log line.
			if strings.Contains(rn.logs.String(), "__Host-session=") {
				t.Fatal("the session cookie reached the service's log")
			}
		})
	}
}

// TestFrontendInDevelopment opens the app as `make run` serves it, the
// service alone over http on 127.0.0.1, in both engines, and signs in as
// the development superuser: the cookie session works there too. In
// Chromium, at the localhost address the log gives, it adds a passkey and
// signs in with it.
func TestFrontendInDevelopment(t *testing.T) {
	needTool(t, "chromium")
	needTool(t, "firefox-esr")
	node := needTool(t, "node")
	nodeDir := e2eNodeDir(t)
	for _, engine := range []string{"chromium", "firefox"} {
		t.Run(engine, func(t *testing.T) {
			_, dsn := newTestDB(t)
			rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "PORT": strconv.Itoa(freePort(t))})
			waitReady(t, rn.url())
			// The address its log gives for passkeys: localhost, same port.
			keys := rn.logs.linesWith(t, "msg", "passkeys need a domain name: use this address for them")
			if want := "http://localhost:" + strconv.Itoa(rn.port) + "/"; len(keys) != 1 || keys[0]["url"] != want {
				t.Fatalf("the passkeys line: %v, want one with url %s", keys, want)
			}
			cmd := exec.Command(node, "testdata/frontend_dev.mjs")
			cmd.Env = append(os.Environ(), "ENGINE="+engine, "HOME="+t.TempDir(), "E2E_NODE_DIR="+nodeDir, "BASE_URL="+rn.url(),
				"PASSKEY_URL="+strings.TrimSuffix(keys[0]["url"].(string), "/"), "ADMIN_EMAIL=admin@example.com", "ADMIN_PASSWORD=changethis")
			runDriver(t, cmd, 5)
		})
	}
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

// TestQRCodeDecodes draws otpauth URIs with the frontend's own QR encoder
// in both engines, as the enrolment page does, and decodes the pixels with
// zbarimg, an independent decoder: each must read back exactly. The URIs
// are of the lengths the service makes (a short address, a usual one, the
// longest address the service accepts) and one whose label and issuer
// need percent-encoding; together they take the encoder through versions
// from 4 to 23 and several masks.
func TestQRCodeDecodes(t *testing.T) {
	zbarimg := needTool(t, "zbarimg")
	needTool(t, "chromium")
	needTool(t, "firefox-esr")
	node := needTool(t, "node")
	nodeDir := e2eNodeDir(t)
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "PORT": strconv.Itoa(freePort(t))})
	waitReady(t, rn.url())
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	uri := func(issuer, account string) string {
		return "otpauth://totp/" + url.PathEscape(issuer) + ":" + url.PathEscape(account) + "?" +
			url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}.Encode()
	}
	longest := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 60) + "." + strings.Repeat("e", 60) + "." + strings.Repeat("f", 59) + ".example"
	texts := []string{
		"otpauth://totp/A:b%40c.de?secret=JBSWY3DPEHPK3PXP&issuer=A",
		uri("app.example.com", "alice@example.com"),
		uri("Café & Co", "jürgen+tag@example.com"),
		uri("app.example.com", longest),
		uri("a very long issuer name, as an operator might choose", longest+"+"+strings.Repeat("%", 100)),
	}
	raw, _ := json.Marshal(texts)
	for _, engine := range []string{"chromium", "firefox"} {
		t.Run(engine, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(node, "testdata/qr_e2e.mjs")
			cmd.Env = append(os.Environ(), "ENGINE="+engine, "HOME="+t.TempDir(), "E2E_NODE_DIR="+nodeDir, "BASE_URL="+rn.url(), "OUT="+out, "TEXTS="+string(raw))
			stdout, err := cmd.Output()
			if err != nil {
				t.Fatalf("the QR driver: %v\n%s", err, stdout)
			}
			var res struct {
				Codes []struct {
					Text, File    string
					Version, Mask int
				}
				Problems []string
			}
			if err := json.Unmarshal(stdout, &res); err != nil {
				t.Fatalf("driver output %q: %v", stdout, err)
			}
			if len(res.Problems) > 0 || len(res.Codes) != len(texts) {
				t.Fatalf("%d codes drawn of %d; problems: %v", len(res.Codes), len(texts), res.Problems)
			}
			for _, c := range res.Codes {
				got, err := exec.Command(zbarimg, "-q", "--raw", c.File).Output()
				t.Logf("%d bytes: version %d, mask %d", len(c.Text), c.Version, c.Mask)
				if err != nil || strings.TrimSuffix(string(got), "\n") != c.Text {
					t.Errorf("version %d, mask %d: zbarimg read %q (%v), want %q", c.Version, c.Mask, got, err, c.Text)
				}
			}
		})
	}
}
