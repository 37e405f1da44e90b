package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDocsInDevelopment(t *testing.T) {
	a := newTestApp(t, nil)
	r := a.do(req{method: "GET", path: "/api/v1/openapi.json"})
	expectStatus(t, r, 200)
	if info := r.json["info"].(map[string]any); info["version"] != "test" {
		t.Fatalf("info.version=%v, want the running version", info["version"])
	}
	if r.header.Get("Content-Security-Policy") != apiCSP {
		t.Fatal("the spec is served without the API's CSP")
	}
	page := a.do(req{method: "GET", path: "/docs"})
	expectStatus(t, page, 200)
	csp := page.header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; script-src 'sha256-") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("docs CSP: %q", csp)
	}
	if strings.Contains(string(page.body), "http://") || strings.Contains(string(page.body), "https://") {
		t.Fatal("the docs page references another origin")
	}
	if page.header.Get("X-Frame-Options") != "DENY" || page.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("docs page headers: %v", page.header)
	}
}

func TestDocsHiddenInProduction(t *testing.T) {
	a := newTestApp(t, map[string]string{"DOCS_ENABLED": "false"})
	for _, p := range []string{"/api/v1/openapi.json", "/docs"} {
		expectProblem(t, a.do(req{method: "GET", path: p}), http.StatusNotFound, "not_found")
	}
	// And production's default is off.
	cfg, err := loadConfig(envOf("APP_ENV", "production", "DATABASE_URL", "postgres://app:Real-Secret-123@db/app",
		"SMTP_HOST", "smtp.example.com", "MAIL_FROM", "noreply@example.com", "FRONTEND_URL", "https://app.example.com", "SECRET_KEY", testSecretKey))
	if err != nil || cfg.DocsEnabled {
		t.Fatalf("production docs default: %v %v", cfg.DocsEnabled, err)
	}
}

// TestDocsPageInChromium loads /docs in Debian's headless Chromium, with no
// network but this server: the page renders every operation, and neither the
// page nor Chromium reports a script error or a CSP violation.
// dumpDOM loads url in headless Chromium and returns the rendered DOM and
// what Chromium logged.
func dumpDOM(t *testing.T, url string) (string, string) {
	t.Helper()
	chromium := needTool(t, "chromium")
	profile := t.TempDir()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
		"--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stderr logBuffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(dom), stderr.String()
}

// The control: the same page under a policy that does not allow its script
// fails the checks the real page passes, so those checks can fail.
func TestDocsBrokenCSPIsCaught(t *testing.T) {
	docs := handleDocs()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		docs.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='")
		w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	html, logged := dumpDOM(t, srv.URL+"/docs")
	if strings.Contains(html, `data-rendered="true"`) && !strings.Contains(logged, "Content Security Policy") {
		t.Fatal("a page whose script the policy refuses passed the checks")
	}
}

func TestDocsPageInChromium(t *testing.T) {
	a := newTestApp(t, nil)
	html, logged := dumpDOM(t, a.srv.URL+"/docs")
	var stderr strings.Builder
	stderr.WriteString(logged)
	if !strings.Contains(html, `data-rendered="true"`) {
		t.Fatalf("the page did not render; chromium said:\n%s", stderr.String())
	}
	if m := regexp.MustCompile(`<ul id="errors">(.*?)</ul>`).FindStringSubmatch(html); m == nil || m[1] != "" {
		t.Fatalf("the page reported errors: %v", m)
	}
	for _, bad := range []string{"Content Security Policy", "Refused to", "Uncaught"} {
		if strings.Contains(stderr.String(), bad) {
			t.Fatalf("chromium reported %q:\n%s", bad, stderr.String())
		}
	}
	// Every operation is on the page, by id, with its method and path.
	for path, item := range spec(t)["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			id := op.(map[string]any)["operationId"].(string)
			if !strings.Contains(html, `id="`+id+`"`) || !strings.Contains(html, strings.ToUpper(method)+" "+path) {
				t.Errorf("operation %s (%s %s) is not on the page", id, method, path)
			}
		}
	}
	for _, want := range []string{"Schemas", "Problem", "validation_failed", "Retry-After", `href="/api/v1/openapi.json"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// A frontend developer's session on /docs, driven in headless Chromium
// (playwright-core, which scripts/test-deps.sh installs): authorize as the
// development superuser, try operations, see a problem, log out; at 1280
// and 420 px; no console error and no CSP violation throughout.
func TestDocsTryItOutInChromium(t *testing.T) {
	needTool(t, "chromium")
	node := needTool(t, "node")
	pw := filepath.Join(e2eNodeDir(t), "node_modules", "playwright-core")
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "SHUTDOWN_DELAY": "0s"})
	waitReady(t, rn.url())
	// An account with two-factor sign-in, for the Authorize box's second step.
	const mfaEmail, mfaPassword = "two-factor@example.com", "correct horse battery"
	expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": mfaEmail, "password": mfaPassword}}), 201)
	login := doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": mfaEmail, "password": mfaPassword}})
	start := doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/users/me/mfa/totp", token: login.str("access_token"), body: map[string]any{"current_password": mfaPassword}})
	expectStatus(t, start, 200)
	expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/users/me/mfa/totp/confirm", token: login.str("access_token"),
		body: map[string]any{"code": oathCode(t, start.str("secret"), time.Now())}}), 200)
	cmd := exec.Command(node, "testdata/docs_e2e.mjs", pw, rn.url())
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCS_SCREENSHOT="+os.Getenv("DOCS_SCREENSHOT"),
		"DOCS_MFA_EMAIL="+mfaEmail, "DOCS_MFA_PASSWORD="+mfaPassword, "DOCS_MFA_SECRET="+start.str("secret"))
	runDriver(t, cmd, 10)
}
