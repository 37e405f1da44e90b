package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxInFront runs Debian's nginx with nginx/nginx.conf, changing only the
// upstream address and the listen ports, in front of apiPort.
type nginxInFront struct {
	http, https int
	logs        *logBuffer
}

func startNginx(t *testing.T, apiPort int) *nginxInFront {
	t.Helper()
	bin := needTool(t, "nginx")
	openssl := needTool(t, "openssl")
	// Not t.TempDir: its parent is private, and nginx's workers run as
	// nobody when the master is root.
	prefix, perr := os.MkdirTemp("", "nginx-test-")
	if perr != nil {
		t.Fatal(perr)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	n := &nginxInFront{http: freePort(t), https: freePort(t), logs: &logBuffer{}}

	conf, err := os.ReadFile("nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	replaced := strings.NewReplacer(
		"server api:8080;", fmt.Sprintf("server 127.0.0.1:%d;", apiPort),
		"listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", n.http),
		"listen 8443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", n.https),
		"pid /tmp/nginx.pid;", "pid "+filepath.Join(prefix, "nginx.pid")+";",
	).Replace(string(conf))
	for _, want := range []string{"server 127.0.0.1:", fmt.Sprintf("listen 127.0.0.1:%d;", n.http), fmt.Sprintf(":%d ssl", n.https)} {
		if !strings.Contains(replaced, want) {
			t.Fatalf("nginx.conf no longer has the line the test replaces (%s)", want)
		}
	}
	os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(replaced), 0o644)
	copyTree(t, "nginx/snippets", filepath.Join(prefix, "snippets"))
	copyTree(t, "nginx/html", filepath.Join(prefix, "html"))
	mime, err := os.ReadFile("/etc/nginx/mime.types")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(prefix, "mime.types"), mime, 0o644)
	os.MkdirAll(filepath.Join(prefix, "certs"), 0o755)
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	gen := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
		"-keyout", filepath.Join(prefix, "certs/tls.key"), "-out", filepath.Join(prefix, "certs/tls.crt"))
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	os.Chmod(prefix, 0o755)

	test := exec.Command(bin, "-t", "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"))
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	// Workers inherit the log pipe; kill the whole group, and do not let a
	// straggler hold Wait forever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("nginx output:\n%s", n.logs)
		}
	})
	for i := 0; ; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/nginx-health", n.http)); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("nginx did not start:\n%s", n.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// once checks that each named header came exactly once.
func once(t *testing.T, what string, h http.Header, names ...string) {
	t.Helper()
	for _, name := range names {
		if n := len(h.Values(name)); n != 1 {
			t.Errorf("%s: %s sent %d times (%q)", what, name, n, h.Values(name))
		}
	}
}

func get(t *testing.T, client *http.Client, url string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	r, _ := http.NewRequest("GET", url, nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestNginxInFrontOfTheService(t *testing.T) {
	_, dsn := migratedDB(t)
	api := startBinary(t, "DATABASE_URL="+dsn, "TRUSTED_PROXIES=127.0.0.1/32", "SHUTDOWN_DELAY=0s", "LOG_LEVEL=debug")
	waitReady(t, api.url())
	n := startNginx(t, api.port)
	base := fmt.Sprintf("http://127.0.0.1:%d", n.http)
	client := &http.Client{}

	// A page: the frontend's headers, once each; index.html never cached.
	pageHeaders := []string{"Content-Security-Policy", "Referrer-Policy", "Permissions-Policy", "X-Content-Type-Options", "X-Frame-Options", "Cross-Origin-Opener-Policy", "Cache-Control"}
	resp, body := get(t, client, base+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("page: %d", resp.StatusCode)
	}
	once(t, "page", resp.Header, pageHeaders...)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("page CSP: %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Server") != "nginx" {
		t.Fatalf("page Cache-Control %q, Server %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Server"))
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Fatal("HSTS over plain HTTP")
	}
	// The single-page-app fallback, and long caching for hashed assets.
	resp, body = get(t, client, base+"/items/42/edit", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("SPA fallback: %d", resp.StatusCode)
	}
	resp, _ = get(t, client, base+"/assets/app.js", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("asset: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	once(t, "asset", resp.Header, pageHeaders...)

	// An API 200, with the caller's request id carried through to the
	// service's log, and a spoofed X-Forwarded-For ignored.
	apiHeaders := []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control", "X-Request-Id", "Vary"}
	resp, body = get(t, client, base+"/api/v1/health", map[string]string{"X-Request-ID": "edge-req-1", "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":"pass"`) {
		t.Fatalf("api 200: %d %s", resp.StatusCode, body)
	}
	once(t, "api 200", resp.Header, apiHeaders...)
	if resp.Header.Get("X-Request-ID") != "edge-req-1" || resp.Header.Get("Content-Security-Policy") != apiCSP {
		t.Fatalf("api headers: %v", resp.Header)
	}
	waitForLog(t, api.logs, "edge-req-1")
	lines := api.logs.linesWith(t, "request_id", "edge-req-1")
	if len(lines) != 1 || lines[0]["client_ip"] != "127.0.0.1" {
		t.Fatalf("service line for edge-req-1 (client_ip must be nginx's peer, not 6.6.6.6): %v", lines)
	}
	waitForLog(t, n.logs, "edge-req-1")
	if !strings.Contains(n.logs.String(), `"request_id":"edge-req-1"`) {
		t.Fatalf("nginx log lacks the id:\n%s", n.logs)
	}
	// No id from the caller: nginx's own reaches the service and the client.
	resp, _ = get(t, client, base+"/api/v1/health/live", map[string]string{"X-Request-ID": "bad id!"})
	id := resp.Header.Get("X-Request-ID")
	if len(id) != 32 || !isLowerHex(id) {
		t.Fatalf("nginx-made request id %q", id)
	}
	waitForLog(t, api.logs, id)

	// An API 404 is the service's problem document, headers once.
	resp, body = get(t, client, base+"/api/v1/nope", nil)
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("api 404: %d %s", resp.StatusCode, body)
	}
	once(t, "api 404", resp.Header, apiHeaders...)

	// A body over client_max_body_size: nginx's 413, as problem+json.
	big, _ := http.NewRequest("POST", base+"/api/v1/items", strings.NewReader(strings.Repeat("x", 2<<20)))
	big.Header.Set("Content-Type", "application/json")
	big.Header.Set("X-Request-ID", "edge-413")
	if r, err := client.Do(big); err != nil {
		t.Fatalf("oversized body: %v", err)
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 413 || r.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"request_id":"edge-413"`) || !strings.Contains(string(b), `"code":"payload_too_large"`) {
			t.Fatalf("nginx 413: %d %s %s", r.StatusCode, r.Header.Get("Content-Type"), b)
		}
	}

	// TLS: HSTS and the same page headers.
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, _ = get(t, tlsClient, fmt.Sprintf("https://127.0.0.1:%d/", n.https), nil)
	once(t, "tls page", resp.Header, append(pageHeaders, "Strict-Transport-Security")...)
	resp, _ = get(t, tlsClient, fmt.Sprintf("https://127.0.0.1:%d/api/v1/health/live", n.https), nil)
	once(t, "tls api", resp.Header, "Strict-Transport-Security", "X-Content-Type-Options")

	// The service stopped: nginx's own 502, as problem+json with the id.
	api.cmd.Process.Kill()
	api.wait(t)
	resp, body = get(t, client, base+"/api/v1/items?x=\"quoted\"", map[string]string{"X-Request-ID": "edge-502"})
	if resp.StatusCode != 502 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("nginx 502: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var doc map[string]any
	if err := jsonUnmarshal(body, &doc); err != nil {
		t.Fatalf("502 body is not JSON: %s", body)
	}
	if doc["request_id"] != "edge-502" || doc["status"] != float64(502) || doc["code"] != "unavailable" || doc["instance"] != "/api/v1/items" {
		t.Fatalf("502 problem: %s", body)
	}
	once(t, "api 502", resp.Header, "Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Cache-Control", "X-Request-Id")
}

func waitForLog(t *testing.T, logs *logBuffer, s string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if strings.Contains(logs.String(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q never logged:\n%s", s, logs)
}
