package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunServesMigratesAndStops(t *testing.T) {
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "SHUTDOWN_DELAY": "0s"})
	waitReady(t, rn.url())

	// The development superuser exists and can sign in.
	r := doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": "admin@example.com", "password": "changethis"}})
	expectStatus(t, r, 200)
	me := doRequest(t, rn.url(), req{method: "GET", path: "/api/v1/users/me", token: r.str("access_token")})
	if me.json["is_superuser"] != true {
		t.Fatalf("first superuser: %s", me.body)
	}

	// -healthcheck against the live server exits 0.
	env := envMap(map[string]string{"PORT": strconv.Itoa(rn.port)})
	if err := run(context.Background(), []string{"server", "-healthcheck"}, env, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatalf("healthcheck against a live server: %v", err)
	}

	rn.cancel()
	if err := <-rn.done; err != nil {
		t.Fatalf("run returned %v after a clean shutdown", err)
	}
	rn.done <- nil // for the cleanup

	// And against the stopped one exits 1, saying why.
	err := run(context.Background(), []string{"server", "-healthcheck"}, env, strings.NewReader(""), io.Discard, io.Discard)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "healthcheck") {
		t.Fatalf("healthcheck against a dead server: %v", err)
	}

	// Every line is JSON; the start line carries the masked config.
	lines := rn.logs.lines(t)
	if len(lines) < 3 || lines[0]["msg"] != "starting" {
		t.Fatalf("log lines: %v", lines)
	}
	for _, l := range lines {
		if l["time"] == nil || l["level"] == nil || l["msg"] == nil {
			t.Fatalf("line lacks time/level/msg: %v", l)
		}
	}
	if got := rn.logs.linesWith(t, "msg", "migrations applied"); len(got) != 1 {
		t.Fatalf("migration lines: %v", got)
	}
	files, _ := migrationFiles.ReadDir("migrations")
	ready := rn.logs.linesWith(t, "msg", "database ready")
	if want := strings.TrimSuffix(files[len(files)-1].Name(), ".sql"); len(ready) != 1 || ready[0]["schema_version"] != want {
		t.Fatalf("database ready lines %v, want one with schema_version %s", ready, want)
	}
	if docs := rn.logs.linesWith(t, "msg", "API reference"); len(docs) != 1 || docs[0]["url"] != rn.url()[:len("http://")]+"127.0.0.1:"+strconv.Itoa(rn.port)+"/docs" {
		t.Fatalf("the docs line: %v", docs)
	}
	if page := rn.logs.linesWith(t, "msg", "frontend"); len(page) != 1 || page[0]["url"] != rn.url()+"/" {
		t.Fatalf("the frontend line: %v", page)
	}
	// Its exact address, used, is TestFrontendInDevelopment's (PORT is 0 here).
	if keys := rn.logs.linesWith(t, "msg", "passkeys need a domain name: use this address for them"); len(keys) != 1 || !strings.HasPrefix(keys[0]["url"].(string), "http://localhost:") {
		t.Fatalf("the passkeys line: %v", keys)
	}
	if strings.Contains(rn.logs.String(), "changethis") || strings.Contains(rn.logs.String(), r.str("access_token")) {
		t.Fatal("a secret reached the log")
	}
}

func TestRunStartsWithDatabaseDown(t *testing.T) {
	rn := startRun(t, map[string]string{"DATABASE_URL": "postgres://postgres:pw-hunter22@127.0.0.1:1/app?sslmode=disable&connect_timeout=1", "SHUTDOWN_DELAY": "0s"})
	live := doRequest(t, rn.url(), req{method: "GET", path: "/api/v1/health/live"})
	expectStatus(t, live, 200)
	h := doRequest(t, rn.url(), req{method: "GET", path: "/api/v1/health"})
	expectStatus(t, h, 503)
	if strings.Contains(rn.logs.String(), "pw-hunter22") {
		t.Fatal("the DSN password reached the log")
	}
}

func TestRunRefusesBadConfigWithExitCode2(t *testing.T) {
	err := run(context.Background(), []string{"server"}, envOf("APP_ENV", "production", "PORT", "abc"), strings.NewReader(""), io.Discard, io.Discard)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("err=%v, want exit code 2", err)
	}
	for _, want := range []string{"DATABASE_URL", "PORT"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error does not list %s: %v", want, err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtPath != "" {
		os.RemoveAll(filepath.Dir(builtPath))
	}
	os.Exit(code)
}

// slowRequest sends the headers and half the body of a login, leaving the
// request in flight until finish is called.
// waitInFlight waits until the process's metrics count a request in
// flight: a connection still in the accept queue would be dropped by the
// shutdown, not drained.
func waitInFlight(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range p.logs.linesWith(t, "msg", "metrics listening") {
			if resp, err := http.Get("http://" + l["addr"].(string) + "/metrics"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "\nhttp_requests_in_flight 1\n") {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the slow request never reached a handler; logs:\n%s", p.logs)
}

func slowRequest(t *testing.T, port int) (finish func() (int, error)) {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	// The cleanup also keeps conn reachable: a caller that drops finish
	// would otherwise let the collector close the socket mid-test, and the
	// server would see a client that left (499) instead of a stuck one.
	t.Cleanup(func() { conn.Close() })
	body := `{"email":"slow@example.com","password":"password-123"}`
	fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	return func() (int, error) {
		defer conn.Close()
		if _, err := io.WriteString(conn, body[10:]); err != nil {
			return 0, err
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

func TestSIGTERMDrainsInFlightRequestsAndExits0(t *testing.T) {
	_, dsn := migratedDB(t)
	p := startBinary(t, "DATABASE_URL="+dsn, "SHUTDOWN_DELAY=1s", "SHUTDOWN_TIMEOUT=5s")
	waitReady(t, p.url())
	finish := slowRequest(t, p.port)
	waitInFlight(t, p) // the server is reading it
	p.cmd.Process.Signal(syscall.SIGTERM)

	// During the delay the server still serves, but readiness fails.
	var h response
	for i := 0; i < 50; i++ {
		h = doRequest(t, p.url(), req{method: "GET", path: "/api/v1/health"})
		if h.status == 503 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.status != 503 || h.str("output") != "shutting down" {
		t.Fatalf("health while draining: %d %s", h.status, h.body)
	}
	time.Sleep(1200 * time.Millisecond) // past the delay: no longer accepting
	status, err := finish()
	if err != nil || status != http.StatusUnauthorized {
		t.Fatalf("in-flight request: status %d, err %v", status, err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0; logs:\n%s", code, p.logs)
	}
	if _, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port)); err == nil {
		t.Fatal("still accepting after exit")
	}
}

func TestSIGTERMCutsOffStuckRequestsAndExits1(t *testing.T) {
	_, dsn := migratedDB(t)
	p := startBinary(t, "DATABASE_URL="+dsn, "SHUTDOWN_DELAY=0s", "SHUTDOWN_TIMEOUT=300ms")
	waitReady(t, p.url())
	slowRequest(t, p.port) // never finished
	waitInFlight(t, p)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 1 {
		t.Fatalf("exit code %d, want 1; logs:\n%s", code, p.logs)
	}
	// Every line the process wrote is JSON, the last one included; the
	// error line counts the cut-off requests, and the cut request's access
	// line says what happened to it.
	lines := p.logs.lines(t)
	last := lines[len(lines)-1]
	if last["level"] != "ERROR" || last["cut_off"] != float64(1) || !strings.Contains(toJSON(last["msg"]), "cut off") {
		t.Fatalf("last line %v, want the error counting 1 cut-off request", last)
	}
	var access map[string]any
	for _, l := range lines {
		if l["msg"] == "request" && l["path"] == "/api/v1/auth/login" {
			access = l
		}
	}
	if access == nil || access["status"] != float64(503) || access["cut_off"] != true {
		t.Fatalf("access line of the cut request: %v\n%s", access, p.logs)
	}
}

// -create-superuser bootstraps production without a password in a flag or
// the environment; settings come from NAME_FILE as from NAME.
func TestCreateSuperuserAndFileSecrets(t *testing.T) {
	_, dsn := newTestDB(t)
	// Trust auth ignores the password; production insists there is a real one.
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword("postgres", "Xk7-db-credential-42")
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "database_url")
	os.WriteFile(dsnFile, []byte(u.String()+"\n"), 0o600)
	keyFile := filepath.Join(dir, "secret_key")
	os.WriteFile(keyFile, []byte(testSecretKey+"\n"), 0o600)
	env := []string{"APP_ENV=production", "DATABASE_URL_FILE=" + dsnFile, "SECRET_KEY_FILE=" + keyFile, "METRICS_ADDR=off", "PATH=/usr/bin:/bin",
		"SMTP_HOST=127.0.0.1", "SMTP_PORT=1", "MAIL_FROM=noreply@example.com", "FRONTEND_URL=https://app.example.com"}
	bootstrap := func(password string, extra ...string) (string, int) {
		cmd := exec.Command(serverBinary(t), "-create-superuser", "Root@Example.com")
		cmd.Env = append(env, extra...)
		cmd.Stdin = strings.NewReader(password)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := bootstrap("Str0ng-bootstrap-pw\n"); code != 0 || !strings.Contains(out, `"msg":"superuser created"`) {
		t.Fatalf("first bootstrap: exit %d\n%s", code, out)
	}
	if out, code := bootstrap("Str0ng-bootstrap-pw\n"); code != 0 || !strings.Contains(out, `"msg":"superuser already exists with this password; nothing changed"`) {
		t.Fatalf("second bootstrap (idempotent): exit %d\n%s", code, out)
	}
	for _, pw := range []string{"An0ther-bootstrap-pw", "Str0ng-bootstrap-pw"} { // a new password is set, then the first again
		if out, code := bootstrap(pw + "\n"); code != 0 || !strings.Contains(out, `"msg":"superuser promoted"`) || !strings.Contains(out, `"password_changed":true`) {
			t.Fatalf("bootstrap with a new password: exit %d\n%s", code, out)
		}
	}
	for _, bad := range []struct{ password, want string }{{"", "standard input"}, {"short-pw\n", "at least 12"}, {"changethis-changethis\n", "placeholder"},
		{"1q2w3e4r5t6y\n", "most common passwords"}, {"Root-is-the-boss-42\n", "email"}} {
		if out, code := bootstrap(bad.password); code != 2 || !strings.Contains(out, bad.want) {
			t.Fatalf("bootstrap with %q: exit %d, want 2 saying %q\n%s", bad.password, code, bad.want, out)
		}
	}
	if out, code := bootstrap("Str0ng-bootstrap-pw\n", "DATABASE_URL="+u.String()); code != 2 || !strings.Contains(out, "DATABASE_URL_FILE: and DATABASE_URL are both set") {
		t.Fatalf("both DATABASE_URL and its _FILE: exit %d\n%s", code, out)
	}

	// The server, configured the same way, lets the superuser in (the
	// file's trailing newline was not part of the value).
	p := startBinary(t, env...)
	waitReady(t, p.url())
	r := doRequest(t, p.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "root@example.com", "password": "Str0ng-bootstrap-pw"}})
	expectStatus(t, r, 200)
	me := doRequest(t, p.url(), req{method: "GET", path: "/api/v1/users/me", token: r.str("access_token")})
	if me.json["is_superuser"] != true {
		t.Fatalf("bootstrapped user: %s", me.body)
	}
	if strings.Contains(p.logs.String(), "Xk7-db-credential-42") || strings.Contains(p.logs.String(), "Str0ng-bootstrap-pw") || strings.Contains(p.logs.String(), testSecretKey) {
		t.Fatalf("a secret reached the log:\n%s", p.logs)
	}
}

// panicReader stands in for any bug that panics in run's own goroutine.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("a panic that reaches run") }

// Lines still in the log's buffer when a panic unwinds run are written
// before the process dies. Writing to a file, run buffers its log (flushed
// every 100 ms); the panic comes microseconds after the line that says
// what the command waits for.
func TestRunFlushesTheLogWhenItPanics(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	func() {
		defer func() {
			if v := recover(); v != "a panic that reaches run" {
				t.Fatalf("run ended with %v, not the panic", v)
			}
		}()
		run(context.Background(), []string{"server", "-create-superuser", "root@example.com"}, envOf(), panicReader{}, f, io.Discard)
	}()
	logged, _ := os.ReadFile(f.Name())
	if !strings.Contains(string(logged), `"msg":"reading the superuser's password from standard input (one line)"`) {
		t.Fatalf("the line before the panic was lost: %q", logged)
	}
}

// -help is a question, not a failure: the usage on stdout, exit 0; an
// unknown flag is one error, said once; -version without a stamped version
// says dev, and the commit it knows.
func TestHelpAndUnstampedVersion(t *testing.T) {
	var stdout, stderr strings.Builder
	if err := run(context.Background(), []string{"server", "-help"}, envOf(), strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("-help returned %v", err)
	}
	if !strings.Contains(stdout.String(), "-healthcheck") || stderr.Len() != 0 {
		t.Fatalf("-help printed %q on stdout, %q on stderr", stdout.String(), stderr.String())
	}
	out, err := exec.Command(serverBinary(t), "-nonsense").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Count(string(out), "flag provided but not defined") != 1 || strings.Contains(string(out), "Usage") {
		t.Fatalf("an unknown flag: %v\n%s", err, out)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"server", "-version"}, envOf(), strings.NewReader(""), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); !strings.HasPrefix(got, "dev (commit ") {
		t.Fatalf("-version of an unstamped build printed %q, want dev (commit …)", got)
	}
}

// A port that is taken stops the start at once (exit 2) with a message
// naming the variable to change, before any database work is tried.
func TestBusyPortNamesTheVariable(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	for _, c := range []struct {
		env      map[string]string
		variable string
	}{
		{map[string]string{"PORT": port}, "PORT"},
		{map[string]string{"PORT": "0", "METRICS_ADDR": "127.0.0.1:" + port}, "METRICS_ADDR"},
		{map[string]string{"PORT": "0", "PPROF_ENABLED": "true", "PPROF_ADDR": "127.0.0.1:" + port}, "PPROF_ADDR"},
	} {
		var logs logBuffer
		c.env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
		err := run(context.Background(), []string{"server"}, envMap(c.env), strings.NewReader(""), &logs, io.Discard)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "set "+c.variable) {
			t.Fatalf("%s taken: %v", c.variable, err)
		}
		if strings.Contains(logs.String(), "not ready") || strings.Contains(logs.String(), "development database") {
			t.Fatalf("%s taken: database work was tried first:\n%s", c.variable, logs.String())
		}
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(serverBinary(t), "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); !strings.Contains(got, testVersion) || !strings.Contains(got, "c0ffee1") {
		t.Fatalf("-version printed %q", got)
	}
	var ee *exec.ExitError
	cmd := exec.Command(serverBinary(t))
	cmd.Env = []string{"APP_ENV=production"}
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "DATABASE_URL") {
		t.Fatalf("production without config: exit %v, output %s", err, out)
	}
}
