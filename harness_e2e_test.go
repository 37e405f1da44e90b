package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end helpers: the whole program run in-process or as the
// binary the image builds, requests over real connections, the tools the
// suites drive (nginx, chromium, oathtool...), ports and the root the
// image tests need. The app harness (harness_test.go) is an httptest
// server over the real handler.

func doRequest(t testing.TB, base string, r req) response {
	t.Helper()
	return doRequestWith(t, http.DefaultClient, base, r)
}

// doRequestWith is doRequest through client (nginx's TLS, say).
func doRequestWith(t testing.TB, client *http.Client, base string, r req) response {
	t.Helper()
	var body io.Reader
	ct := r.contentType
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
		if ct == "" {
			ct = "application/json"
		}
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(buf)
		if ct == "" {
			ct = "application/json"
		}
	}
	hr, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" && ct != "-" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	out.body, _ = io.ReadAll(resp.Body)
	if len(out.body) > 0 && out.body[0] == '{' {
		if err := json.Unmarshal(out.body, &out.json); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", r.method, r.path, out.body)
		}
	}
	checkAgainstSpec(t, r, out)
	return out
}

// doRequestNoSpec is doRequest for goroutines: it reports through t.Error.
func doRequestNoSpec(t testing.TB, base string, r req) response {
	buf, _ := json.Marshal(r.body)
	hr, _ := http.NewRequest(r.method, base+r.path, bytes.NewReader(buf))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Error(err)
		return response{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// needTool finds a program an end-to-end test drives. `make test` installs
// them and sets E2E_REQUIRED, so there a missing tool fails the run instead
// of skipping silently; a bare `go test` skips, saying why.
func needTool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/bin/", "/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	if os.Getenv("E2E_REQUIRED") != "" {
		t.Fatalf("%s is not installed (scripts/test-deps.sh installs it)", name)
	}
	t.Skipf("%s is not installed; run make test to install it", name)
	return ""
}

// needRoot is for the tests that chroot and change user, as the image does.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("E2E_REQUIRED") != "" {
		t.Fatal("this test runs as root (chroot, setuid), as CI does")
	}
	t.Skip("needs root for chroot and setuid")
}

// send is one request from a goroutine, where t may not fail: it returns
// the status and the "id" of the answer's body, if it names one.
func send(base, method, path, token, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	hr, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var v struct {
		ID string `json:"id"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v.ID, nil
}

// e2eNodeDir is where scripts/test-deps.sh installs playwright-core and
// axe-core; a test that needs them fails under make test without them, and
// skips under a bare go test.
func e2eNodeDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_NODE_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "backend-e2e")
	}
	for _, f := range []string{"playwright-core/index.mjs", "puppeteer-core/lib/puppeteer/puppeteer-core.js", "axe-core/axe.min.js"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", f)); err != nil {
			if os.Getenv("E2E_REQUIRED") != "" {
				t.Fatalf("%s is not installed in %s (scripts/test-deps.sh installs it)", f, dir)
			}
			t.Skipf("%s is not installed; run make test", f)
		}
	}
	return dir
}

// running is the whole program started in-process by run().
type running struct {
	addr   string
	port   int
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error
}

func startRun(t *testing.T, env map[string]string) *running {
	t.Helper()
	for k, v := range map[string]string{"PORT": "0", "METRICS_ADDR": "127.0.0.1:0"} {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{logs: &logBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		rn.done <- run(ctx, []string{"server"}, envMap(env), strings.NewReader(""), rn.logs, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for rn.addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; logs:\n%s", rn.logs)
		}
		for _, l := range rn.logs.linesWith(t, "msg", "listening") {
			rn.addr = l["addr"].(string)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, p, _ := net.SplitHostPort(rn.addr)
	rn.port, _ = strconv.Atoi(p)
	t.Cleanup(func() {
		cancel()
		select {
		case <-rn.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	return rn
}

func (rn *running) url() string { return fmt.Sprintf("http://127.0.0.1:%d", rn.port) }

// waitReady polls /health until it passes (migrations done).
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server never became ready")
}

// The binary as the image builds it, built once for the package: in a copy
// of the build context exactly as .dockerignore leaves it (Docker's own
// pattern matcher, in deploy/image/check), with the Dockerfile's own build
// line.
var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

const testVersion = "9.8.7-test"

func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "server-bin-")
		if err != nil {
			buildErr = err
			return
		}
		root, _ := os.Getwd()
		builtPath = filepath.Join(dir, "server")
		cmd := exec.Command("go", "run", ".", "-context", root, "-out", filepath.Join(dir, "context"),
			"-build", builtPath, "-version", testVersion, "-commit", "c0ffee1")
		cmd.Dir = "deploy/image/check"
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building from the image's context: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// startDaemon starts a tool the suites drive (nginx, pgbouncer) in a
// process group of its own, its output in logs, and kills the whole group
// when the test ends: workers inherit the log pipe, and WaitDelay keeps a
// straggler from holding Wait. A failed test shows what it logged.
func startDaemon(t *testing.T, what string, cmd *exec.Cmd, logs *logBuffer) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s's output:\n%s", what, logs)
		}
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is the built binary running as a child process.
type proc struct {
	cmd  *exec.Cmd
	logs *logBuffer
	port int
	done chan error
}

func startBinary(t *testing.T, env ...string) *proc {
	t.Helper()
	p := &proc{logs: &logBuffer{}, port: freePort(t), done: make(chan error, 1)}
	p.cmd = exec.Command(serverBinary(t))
	p.cmd.Env = append([]string{"PORT=" + strconv.Itoa(p.port), "PATH=/usr/bin:/bin", "METRICS_ADDR=127.0.0.1:0"}, env...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) url() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not exit; logs:\n%s", p.logs)
		return -1
	}
}
