package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nginxInFront runs Debian's nginx with nginx/nginx.conf, changing only the
// upstream address and the listen ports, in front of apiPort, with a
// certificate from a local CA that the test's clients trust.
type nginxInFront struct {
	http, https int
	logs        *logBuffer
	caFile      string
	roots       *x509.CertPool
}

func (n *nginxInFront) httpsURL() string { return fmt.Sprintf("https://localhost:%d", n.https) }
func (n *nginxInFront) httpURL() string  { return fmt.Sprintf("http://127.0.0.1:%d", n.http) }

// client trusts the local CA (no InsecureSkipVerify) and dials from source,
// an address of the loopback range ("" for the default).
func (n *nginxInFront) client(source string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: n.roots},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func startNginx(t *testing.T, apiPorts ...int) *nginxInFront {
	t.Helper()
	return startNginxOn(t, freePort(t), apiPorts...)
}

// startNginxOn is startNginx with its https port chosen by the caller (the
// service's FRONTEND_URL names it before nginx starts).
func startNginxOn(t *testing.T, httpsPort int, apiPorts ...int) *nginxInFront {
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
	n := &nginxInFront{http: freePort(t), https: httpsPort, logs: &logBuffer{}}

	nginxImageLayout(t, prefix)
	conf, err := os.ReadFile(filepath.Join(prefix, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Debian's nginx (1.22) has no "resolve": the test names each replica.
	var servers []string
	for _, p := range apiPorts {
		servers = append(servers, fmt.Sprintf("server 127.0.0.1:%d max_fails=1 fail_timeout=2s;", p))
	}
	replaced := strings.NewReplacer(
		"server api:8080 resolve max_fails=1 fail_timeout=2s;", strings.Join(servers, "\n        "),
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
	certs := filepath.Join(prefix, "certs")
	os.MkdirAll(certs, 0o755)
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	// A local CA, and a server certificate it signs for localhost.
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.crt",
			"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
		{"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "tls.key", "-out", "tls.csr"},
		{"x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-out", "tls.crt",
			"-extfile", "san.ext"},
	} {
		os.WriteFile(filepath.Join(certs, "san.ext"), []byte("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"), 0o644)
		gen := exec.Command(openssl, args...)
		gen.Dir = certs
		if out, err := gen.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	n.caFile = filepath.Join(certs, "ca.crt")
	caPEM, _ := os.ReadFile(n.caFile)
	n.roots = x509.NewCertPool()
	if !n.roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("the test CA did not parse")
	}
	os.Chmod(prefix, 0o755)

	test := exec.Command(bin, "-t", "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"))
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	startDaemon(t, "nginx", exec.Command(bin, "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-g", "daemon off;"), n.logs)
	for i := 0; ; i++ {
		if resp, err := http.Get(n.httpURL() + "/nginx-health"); err == nil {
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

// nginxImageLayout lays out /etc/nginx under prefix as the frontend
// image's COPY lines (nginx/Dockerfile) build it, with Debian's mime.types
// for the base image's; so the tests run the files the image ships.
func nginxImageLayout(t *testing.T, prefix string) {
	t.Helper()
	dockerfile, err := os.ReadFile("nginx/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(dockerfile), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "COPY" {
			continue
		}
		dest := fields[len(fields)-1]
		if !strings.HasPrefix(dest, "/etc/nginx/") {
			t.Fatalf("nginx/Dockerfile copies outside /etc/nginx: %s", line)
		}
		for _, src := range fields[1 : len(fields)-1] {
			from := filepath.Join("nginx", src)
			to := filepath.Join(prefix, strings.TrimPrefix(dest, "/etc/nginx/"))
			if st, err := os.Stat(from); err != nil {
				t.Fatalf("nginx/Dockerfile: COPY %s: %v", src, err)
			} else if st.IsDir() {
				copyTree(t, from, to)
			} else {
				b, _ := os.ReadFile(from)
				os.MkdirAll(to, 0o755)
				os.WriteFile(filepath.Join(to, filepath.Base(src)), b, 0o644)
			}
		}
	}
	mime, err := os.ReadFile("/etc/nginx/mime.types")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(prefix, "mime.types"), mime, 0o644)
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

// rawTLS sends raw bytes over TLS and returns what nginx answered.
func rawTLS(t *testing.T, n *nginxInFront, request string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.https), &tls.Config{RootCAs: n.roots, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, request)
	out, _ := io.ReadAll(conn)
	return string(out)
}

// expectEdgeProblem checks a problem document nginx made itself.
func expectEdgeProblem(t *testing.T, what string, resp *http.Response, body string, status int, code, id string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s: %d %q %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%s: body is not JSON: %s", what, body)
	}
	if doc["status"] != float64(status) || doc["code"] != code || (id != "" && doc["request_id"] != id) || doc["request_id"] == "" {
		t.Fatalf("%s: problem %s", what, body)
	}
	once(t, what, resp.Header, "Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Cache-Control", "X-Request-Id", "Strict-Transport-Security", "Cross-Origin-Resource-Policy")
}

func TestNginxInFrontOfTheService(t *testing.T) {
	_, dsn := migratedDB(t)
	api := startBinary(t, "DATABASE_URL="+dsn, "TRUSTED_PROXIES=127.0.0.1/32", "SHUTDOWN_DELAY=0s", "LOG_LEVEL=debug", "RATE_LIMIT_AUTH_REQUESTS=1000")
	waitReady(t, api.url())
	n := startNginx(t, api.port)
	base := n.httpsURL()
	client := n.client("")

	// Port 80 answers only redirects: 301 for pages, 308 (method and body
	// kept) for the API; nothing of the app or the API in clear.
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The redirect names the configured server name, whatever Host says.
	for path, status := range map[string]int{"/": 301, "/items/42": 301, "/api/v1/health": 308, "/api/v1/auth/login": 308} {
		for _, host := range []string{"", "evil.example"} {
			r, _ := http.NewRequest("GET", n.httpURL()+path, nil)
			if host != "" {
				r.Host = host
			}
			resp, err := plain.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != status || resp.Header.Get("Location") != "https://localhost"+path ||
				strings.Contains(string(body), "<html lang") || strings.Contains(string(body), `"status"`) {
				t.Fatalf("http %s (Host %q): %d Location %q %s", path, host, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
	}
	post, _ := http.NewRequest("POST", n.httpURL()+"/api/v1/auth/login", strings.NewReader(`{}`))
	if resp, err := plain.Do(post); err != nil || resp.StatusCode != 308 {
		t.Fatalf("http POST: %v %v", resp, err)
	}

	// A page: the frontend's headers, once each, HSTS; index.html never cached.
	pageHeaders := []string{"Content-Security-Policy", "Referrer-Policy", "Permissions-Policy", "X-Content-Type-Options", "X-Frame-Options", "Cross-Origin-Opener-Policy", "Cache-Control", "Strict-Transport-Security"}
	resp, body := get(t, client, base+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<html") || resp.ProtoMajor != 2 {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Proto)
	}
	once(t, "page", resp.Header, pageHeaders...)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("page CSP: %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Server") != "nginx" || resp.Header.Get("Strict-Transport-Security") != "max-age=63072000; includeSubDomains" {
		t.Fatalf("page Cache-Control %q, Server %q, HSTS %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Server"), resp.Header.Get("Strict-Transport-Security"))
	}
	// The single-page-app fallback; assets (plain files, no hashed names)
	// revalidated on every load, so a deploy reaches users at once and an
	// unchanged file costs a 304; and a missing asset's 404 that no cache
	// keeps.
	resp, body = get(t, client, base+"/items/42/edit", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("SPA fallback: %d", resp.StatusCode)
	}
	resp, _ = get(t, client, base+"/assets/app.js", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
		t.Fatalf("asset: %d Cache-Control %q ETag %q", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
	}
	once(t, "asset", resp.Header, pageHeaders...)
	resp, _ = get(t, client, base+"/assets/app.js", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != 304 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("unchanged asset: %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	resp, _ = get(t, client, base+"/assets/missing-0123.js", nil)
	if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("missing asset: %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	once(t, "missing asset", resp.Header, pageHeaders...)

	// An API 200, with the caller's request id carried through to the
	// service's log, and a spoofed X-Forwarded-For ignored.
	apiHeaders := []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control", "X-Request-Id", "Vary", "Cross-Origin-Resource-Policy", "Strict-Transport-Security"}
	resp, body = get(t, client, base+"/api/v1/health", map[string]string{"X-Request-ID": "edge-req-1", "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":"pass"`) {
		t.Fatalf("api 200: %d %s", resp.StatusCode, body)
	}
	once(t, "api 200", resp.Header, apiHeaders...)
	if resp.Header.Get("X-Request-ID") != "edge-req-1" || resp.Header.Get("Content-Security-Policy") != apiCSP || resp.Header.Get("Cross-Origin-Resource-Policy") != "same-origin" {
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

	// What nginx refuses itself is a problem document with the request id.
	big, _ := http.NewRequest("POST", base+"/api/v1/items", strings.NewReader(strings.Repeat("x", 2<<20)))
	big.Header.Set("Content-Type", "application/json")
	big.Header.Set("X-Request-ID", "edge-413")
	if r, err := client.Do(big); err != nil {
		t.Fatalf("oversized body: %v", err)
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		expectEdgeProblem(t, "413", r, string(b), 413, "payload_too_large", "edge-413")
	}
	trace, _ := http.NewRequest("TRACE", base+"/api/v1/items", nil)
	trace.Header.Set("X-Request-ID", "edge-405")
	if r, err := client.Do(trace); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		expectEdgeProblem(t, "TRACE", r, string(b), 405, "method_not_allowed", "edge-405")
	}
	for what, raw := range map[string]string{
		"long URI":               "GET /api/v1/items?q=" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"big header":             "GET /api/v1/items HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("b", 10_000) + "\r\n\r\n",
		"many headers":           "GET /api/v1/items HTTP/1.1\r\nHost: localhost\r\n" + strings.Repeat("X-Many: "+strings.Repeat("m", 7000)+"\r\n", 6) + "\r\n",
		"malformed request line": "GARBAGE\r\n\r\n",
		"HTTP/3.0 request line":  "GET /api/v1/items HTTP/3.0\r\nHost: localhost\r\n\r\n",
		"bad header":             "GET /api/v1/items HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n",
	} {
		out := rawTLS(t, n, raw)
		head, body, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.Contains(head, "Content-Type: application/problem+json") || !strings.Contains(body, `"request_id":"`) || !strings.Contains(head, "X-Content-Type-Options: nosniff") ||
			!(strings.HasPrefix(head, "HTTP/1.1 4") || strings.HasPrefix(head, "HTTP/1.1 505")) || strings.Contains(body, "Unauthorized") {
			t.Fatalf("%s: nginx answered %q", what, out)
		}
	}

	// The edge's own rate on sign-in: a burst from one address meets a 429
	// problem from nginx before the service's budget is touched.
	limited := 0
	for range 40 {
		r, _ := http.NewRequest("POST", base+"/api/v1/auth/login", strings.NewReader(`{"email":"x@example.com","password":"password-123"}`))
		r.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 429 {
			expectEdgeProblem(t, "edge 429", resp, string(b), 429, "rate_limited", "")
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("40 sign-ins in a burst: none limited at the edge")
	}

	// TLS: the intermediate profile only, and no session tickets.
	openssl := needTool(t, "openssl")
	sclient := func(args ...string) (string, error) {
		cmd := exec.Command(openssl, append([]string{"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", n.https), "-servername", "localhost", "-CAfile", n.caFile}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, cipher := range []string{"AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"} {
		if out, err := sclient("-tls1_2", "-cipher", cipher); err == nil {
			t.Errorf("TLS 1.2 cipher %s outside the profile was accepted:\n%s", cipher, out)
		}
	}
	out, err := sclient("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
	if err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Fatalf("an intermediate-profile cipher was refused: %v\n%s", err, out)
	}
	if strings.Contains(out, "TLS session ticket:") {
		t.Fatalf("nginx issued a session ticket:\n%s", out)
	}
	if _, err := sclient("-tls1_1"); err == nil {
		t.Error("TLS 1.1 accepted")
	}

	// The service stopped: nginx's own 502, as problem+json with the id.
	api.cmd.Process.Kill()
	api.wait(t)
	resp, body = get(t, client, base+"/api/v1/items?x=\"quoted\"", map[string]string{"X-Request-ID": "edge-502"})
	expectEdgeProblem(t, "502", resp, body, 502, "unavailable", "edge-502")
	var doc map[string]any
	json.Unmarshal([]byte(body), &doc)
	if doc["instance"] != "/api/v1/items" {
		t.Fatalf("502 problem instance: %s", body)
	}
}

// A flood of connections from one address (half-sent requests, and
// requests holding their bodies back) does not stop a client of another
// address from being served.
func TestNginxFloodFromOneAddress(t *testing.T) {
	_, dsn := migratedDB(t)
	api := startBinary(t, "DATABASE_URL="+dsn, "TRUSTED_PROXIES=127.0.0.1/32", "SHUTDOWN_DELAY=0s", "LOG_LEVEL=debug")
	waitReady(t, api.url())
	n := startNginx(t, api.port)
	addr := fmt.Sprintf("127.0.0.1:%d", n.https)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() *tls.Conn {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: n.roots, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		return c
	}
	// 1,200 half-sent requests: more than the old worker table held.
	for range 1200 {
		io.WriteString(dial(), "GET /api/v1/health/live HTTP/1.1\r\nHost: localhost\r\n")
	}
	// 100 requests whose bodies never come: past the per-client cap (64),
	// nginx answers 429 at once instead of holding a slot.
	refused := 0
	var held []*tls.Conn
	for range 100 {
		c := dial()
		io.WriteString(c, "POST /api/v1/items HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
		held = append(held, c)
	}
	// Another address is served, through the whole flood.
	resp, body := get(t, n.client("127.0.0.2"), n.httpsURL()+"/api/v1/health/live", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "pass") {
		t.Fatalf("a client of 127.0.0.2 during the flood: %d %s", resp.StatusCode, body)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		wg.Go(func() {
			buf := make([]byte, 64)
			if k, _ := c.Read(buf); k > 0 && strings.Contains(string(buf[:k]), " 429 ") {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if refused < 30 {
		t.Fatalf("%d of 100 held requests refused; the per-client cap (64) should refuse about 36", refused)
	}
	waitForLog(t, api.logs, `"client_ip":"127.0.0.2"`)
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

// nginx keeps upstream connections alive between requests, and drops one
// that has been idle for a second: a replica that starts draining (it
// waits SHUTDOWN_DELAY before closing idle connections) is never sent a
// request on a connection it is about to close.
func TestNginxUpstreamKeepalive(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	var closedAt []time.Time
	api := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/health+json")
			io.WriteString(w, `{"status":"pass"}`)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch s {
			case http.StateNew:
				opened++
			case http.StateClosed:
				closedAt = append(closedAt, time.Now())
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go api.Serve(ln)
	t.Cleanup(func() { api.Close() })
	n := startNginx(t, ln.Addr().(*net.TCPAddr).Port)
	client := n.client("")

	// Back to back, one at a time: the upstream connection is reused (one,
	// unless a stall of over a second let nginx close it in between).
	const requests = 5
	for range requests {
		if resp, body := get(t, client, n.httpsURL()+"/api/v1/health/live", nil); resp.StatusCode != 200 {
			t.Fatalf("through nginx: %d %s", resp.StatusCode, body)
		}
	}
	idleSince := time.Now()
	mu.Lock()
	open := opened
	if open >= requests {
		t.Fatalf("%d requests in a row opened %d upstream connections: none was kept alive", requests, open)
	}
	mu.Unlock()

	// Idle, each is closed by nginx (this server never closes one) after
	// about a second; nginx's own default would keep it a minute.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		closed := len(closedAt)
		mu.Unlock()
		if closed == open {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(closedAt) != open {
		t.Fatalf("%d of %d idle upstream connections closed within 5 s", len(closedAt), open)
	}
	t.Logf("%d upstream connection(s) for %d requests, the last closed by nginx after %v idle", open, requests, closedAt[open-1].Sub(idleSince).Round(time.Millisecond))
}

// The frontend image as Kubernetes runs it (nginx -c frontend.conf, behind
// the ingress): the pages over plain HTTP with their own headers and
// caching, nginx's liveness path for the probes, and nothing of the API,
// which the ingress routes to the service itself.
func TestFrontendImageAloneServesThePages(t *testing.T) {
	bin := needTool(t, "nginx")
	prefix, err := os.MkdirTemp("", "nginx-frontend-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	nginxImageLayout(t, prefix)
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	os.Chmod(prefix, 0o755)
	port := freePort(t)
	conf, _ := os.ReadFile(filepath.Join(prefix, "frontend.conf"))
	replaced := strings.NewReplacer("listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"pid /tmp/nginx.pid;", "pid "+filepath.Join(prefix, "nginx.pid")+";").Replace(string(conf))
	if !strings.Contains(replaced, fmt.Sprintf(":%d;", port)) {
		t.Fatal("frontend.conf no longer has the listen line the test replaces")
	}
	os.WriteFile(filepath.Join(prefix, "frontend.conf"), []byte(replaced), 0o644)
	logs := &logBuffer{}
	startDaemon(t, "nginx -c frontend.conf", exec.Command(bin, "-p", prefix, "-c", filepath.Join(prefix, "frontend.conf"), "-g", "daemon off;"), logs)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/nginx-health"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("nginx -c frontend.conf did not start:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	get := func(path string, header map[string]string) response {
		hr, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range header {
			hr.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: body}
	}
	if r := get("/nginx-health", nil); r.status != 200 || string(r.body) != "ok\n" {
		t.Fatalf("/nginx-health: %d %q", r.status, r.body)
	}
	index, _ := os.ReadFile("nginx/html/index.html")
	for _, path := range []string{"/", "/login", "/items"} {
		r := get(path, nil)
		if r.status != 200 || string(r.body) != string(index) || r.header.Get("Content-Security-Policy") != pageCSP ||
			r.header.Get("Cache-Control") != "no-cache" || r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Strict-Transport-Security") != "" {
			t.Fatalf("GET %s: %d %v", path, r.status, r.header)
		}
	}
	if r := get("/assets/app.js", nil); r.status != 200 || r.header.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/javascript") && !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("/assets/app.js: %d %v", r.status, r.header)
	}
	if r := get("/assets/nope.js", nil); r.status != 404 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("a missing asset: %d %v", r.status, r.header)
	}
	if r := get("/api/v1/health", nil); r.status != 404 {
		t.Fatalf("the frontend alone answered an API path: %d %.80q", r.status, r.body)
	}
	// Behind the ingress's TLS, the pages carry HSTS.
	if r := get("/", map[string]string{"X-Forwarded-Proto": "https"}); r.header.Get("Strict-Transport-Security") != "max-age=63072000; includeSubDomains" {
		t.Fatalf("HSTS behind TLS: %v", r.header)
	}
}
