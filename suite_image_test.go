package main

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryIsStatic: the distroless static image has no libc, so the
// binary the Dockerfile builds must need none.
func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(serverBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary asks for a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary links %v", libs)
	}
}

// TestBinaryInAnEmptyRoot runs the binary as the image does: alone in its
// root, as uid 65532, against the real database; -healthcheck from the same
// root exits 0 while it serves and 1 once it is gone.
func TestBinaryInAnEmptyRoot(t *testing.T) {
	needRoot(t)
	_, dsn := migratedDB(t)
	root, err := os.MkdirTemp("", "distroless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.Chmod(root, 0o755)
	bin, _ := os.ReadFile(serverBinary(t))
	if err := os.WriteFile(filepath.Join(root, "server"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	jail := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/server", args...)
		cmd.Path = "/server"
		cmd.Dir = "/"
		cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "APP_ENV=development", "DATABASE_URL=" + dsn, "SHUTDOWN_DELAY=0s", "METRICS_ADDR=off"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		return cmd
	}
	logs := &logBuffer{}
	srv := jail()
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))

	if out, err := jail("-healthcheck").CombinedOutput(); err != nil {
		t.Fatalf("healthcheck against the live server: %v %s\nserver:\n%s", err, out, logs)
	}
	// Development serves the frontend from the binary alone: the pages are
	// embedded, so the context must have carried them.
	index, _ := os.ReadFile("nginx/html/index.html")
	for path, want := range map[string]string{"/": string(index), "/login": string(index), "/assets/app.js": ""} {
		r := doRequest(t, fmt.Sprintf("http://127.0.0.1:%d", port), req{method: "GET", path: path})
		if r.status != 200 || (want != "" && string(r.body) != want) || r.header.Get("Content-Security-Policy") != pageCSP {
			t.Fatalf("GET %s from the chrooted binary: %d %.80q", path, r.status, r.body)
		}
	}
	srv.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exited with %v:\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
	}
	out, err := jail("-healthcheck").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "healthcheck") {
		t.Fatalf("healthcheck against no server: %v %s", err, out)
	}
}

func TestDockerfile(t *testing.T) {
	src, _ := os.ReadFile("Dockerfile")
	d := string(src)
	for _, want := range []string{
		"FROM golang:1.26",
		"COPY go.mod go.sum ./\nRUN go mod download",
		"CGO_ENABLED=0 go build -trimpath",
		"-X main.version=${VERSION} -X main.commit=${COMMIT}",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER 65532:65532",
		"EXPOSE 8080",
		`ENTRYPOINT ["/server"]`,
		`CMD ["/server", "-healthcheck"]`,
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	hc := regexp.MustCompile(`HEALTHCHECK (.*) CMD`).FindStringSubmatch(d)
	if hc == nil || !strings.Contains(hc[1], "--interval=") || !strings.Contains(hc[1], "--timeout=") || !strings.Contains(hc[1], "--start-period=") || !strings.Contains(hc[1], "--retries=") {
		t.Errorf("HEALTHCHECK lacks interval/timeout/start-period/retries: %v", hc)
	}
}

// composeConfig is what docker-compose makes of the files, as JSON, in a
// fresh clone with no variables set.
func composeConfig(t *testing.T, files ...string) map[string]any {
	t.Helper()
	return composeConfigWith(t, nil, files...)
}

// composeConfigWith is composeConfig with the variables env set.
func composeConfigWith(t *testing.T, env []string, files ...string) map[string]any {
	t.Helper()
	// A fresh clone: a copy of the files with no .env, and no variables set
	// (and the build contexts, which compose checks exist).
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "nginx"), 0o755)
	os.MkdirAll(filepath.Join(dir, "deploy", "pgbouncer"), 0o755)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), src, 0o644)
	}
	return composeConfigIn(t, dir, env, files...)
}

// composeConfigIn is what docker-compose makes of the files in dir (with
// the .env there, if any) and the variables env.
func composeConfigIn(t *testing.T, dir string, env []string, files ...string) map[string]any {
	t.Helper()
	bin := needTool(t, "docker-compose")
	args := []string{}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd := exec.Command(bin, append(args, "config")...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config %v: %v", files, err)
	}
	// Debian's docker-compose depends on python3-yaml: use it to read YAML.
	conv := exec.Command("/usr/bin/python3", "-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	conv.Stdin = strings.NewReader(string(out))
	js, err := conv.Output()
	if err != nil {
		t.Fatalf("yaml to json: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestComposeFiles(t *testing.T) {
	prod := composeConfig(t, "docker-compose.yml")
	services := prod["services"].(map[string]any)
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "api,db,nginx" {
		t.Fatalf("services %v", names)
	}
	for name, s := range services {
		svc := s.(map[string]any)
		if svc["healthcheck"] == nil || svc["restart"] == nil || svc["logging"] == nil {
			t.Errorf("%s lacks a healthcheck, restart policy or log rotation", name)
		}
		if name != "nginx" && svc["ports"] != nil {
			t.Errorf("%s publishes ports in production", name)
		}
	}
	api := services["api"].(map[string]any)
	test := api["healthcheck"].(map[string]any)["test"].([]any)
	if len(test) < 2 || test[0] != "CMD" || test[1] != "/server" {
		t.Fatalf("api healthcheck is not exec form through the binary: %v", test)
	}
	if api["read_only"] != true || fmt.Sprint(api["cap_drop"]) != "[ALL]" || !strings.Contains(fmt.Sprint(api["security_opt"]), "no-new-privileges") || api["mem_limit"] == nil {
		t.Fatalf("api hardening: %v", api)
	}
	if dep := api["depends_on"].(map[string]any)["db"].(map[string]any); dep["condition"] != "service_healthy" {
		t.Fatalf("api depends_on: %v", dep)
	}
	if dep := services["nginx"].(map[string]any)["depends_on"].(map[string]any)["api"].(map[string]any); dep["condition"] != "service_healthy" {
		t.Fatalf("nginx depends_on: %v", dep)
	}
	ngx := services["nginx"].(map[string]any)
	// nginx is the frontend's image, built from nginx/ (its Dockerfile
	// non-root): read-only, no capabilities, only the certificates mounted.
	build, _ := ngx["build"].(map[string]any)
	if ctx, _ := build["context"].(string); !strings.HasSuffix(ctx, "/nginx") || !strings.Contains(fmt.Sprint(ngx["image"]), "backend-frontend") {
		t.Fatalf("nginx is not built from ./nginx as the frontend image: %v %v", ngx["build"], ngx["image"])
	}
	if ngx["read_only"] != true || fmt.Sprint(ngx["cap_drop"]) != "[ALL]" || !strings.Contains(fmt.Sprint(ngx["security_opt"]), "no-new-privileges") {
		t.Fatalf("nginx hardening: %v", ngx)
	}
	if vols := asSlice(ngx["volumes"]); len(vols) != 1 || !strings.Contains(fmt.Sprint(vols[0]), "/etc/nginx/certs") {
		t.Fatalf("nginx mounts %v; the image carries everything but the certificates", vols)
	}
	if ports := fmt.Sprint(ngx["ports"]); !strings.Contains(ports, "127.0.0.1:80:8080") || !strings.Contains(ports, "127.0.0.1:443:8443") || !strings.Contains(fmt.Sprint(ngx["volumes"]), "nginx/certs") {
		t.Fatalf("with no .env, nginx must publish 80 and 443 on this machine only, and mount the certificates: %v", ngx)
	}
	published := composeConfigWith(t, []string{"PUBLISH_ADDR=0.0.0.0"}, "docker-compose.yml")
	if ports := fmt.Sprint(published["services"].(map[string]any)["nginx"].(map[string]any)["ports"]); !strings.Contains(ports, "0.0.0.0:80:8080") || !strings.Contains(ports, "0.0.0.0:443:8443") {
		t.Fatalf("production's PUBLISH_ADDR does not publish nginx: %s", ports)
	}

	// Secrets reach the api and the database as files, never as values.
	penv := api["environment"].(map[string]any)
	for _, name := range []string{"DATABASE_URL", "SECRET_KEY", "SMTP_PASSWORD", "FIRST_SUPERUSER_PASSWORD"} {
		file := "/run/secrets/" + strings.ToLower(name)
		if _, plain := penv[name]; plain || penv[name+"_FILE"] != file || !strings.Contains(fmt.Sprint(api["secrets"]), strings.ToLower(name)) {
			t.Errorf("%s: plain value %v, %s_FILE %v, mounted %v", name, plain, name, penv[name+"_FILE"], api["secrets"])
		}
	}
	denv := services["db"].(map[string]any)["environment"].(map[string]any)
	if _, plain := denv["POSTGRES_PASSWORD"]; plain || denv["POSTGRES_PASSWORD_FILE"] != "/run/secrets/postgres_password" {
		t.Errorf("the database's password: %v", denv)
	}
	for name, sec := range prod["secrets"].(map[string]any) {
		if file, _ := sec.(map[string]any)["file"].(string); !strings.HasSuffix(file, "/secrets/"+name) {
			t.Errorf("secret %s comes from %q, want ./secrets/%s", name, file, name)
		}
	}
	if !strings.Contains(fmt.Sprint(ngx["ulimits"]), "65536") {
		t.Fatalf("nginx's open-file limit: %v", ngx["ulimits"])
	}
	if !strings.Contains(fmt.Sprint(services["db"].(map[string]any)["healthcheck"]), "pg_isready") {
		t.Fatal("db healthcheck is not pg_isready")
	}

	dev := composeConfig(t, "docker-compose.yml", "docker-compose.dev.yml")
	dapi := dev["services"].(map[string]any)["api"].(map[string]any)
	env := dapi["environment"].(map[string]any)
	if env["APP_ENV"] != "development" || env["DOCS_ENABLED"] != "true" || dapi["ports"] == nil || dev["services"].(map[string]any)["db"].(map[string]any)["ports"] == nil {
		t.Fatalf("dev override: %v", dapi)
	}
	// The dev stack sets its own CORS and superuser, whatever production's are.
	if env["CORS_ALLOWED_ORIGINS"] != "http://localhost:5173,http://127.0.0.1:5173,http://localhost:3000,http://127.0.0.1:3000" || env["FIRST_SUPERUSER_EMAIL"] != "" {
		t.Fatalf("dev override inherits production settings: %v", env)
	}
	// It needs no secret file, and reads none.
	for _, name := range []string{"DATABASE_URL_FILE", "SECRET_KEY_FILE", "SMTP_PASSWORD_FILE", "FIRST_SUPERUSER_PASSWORD_FILE"} {
		if env[name] != "" {
			t.Errorf("the dev stack reads %s=%v", name, env[name])
		}
	}
	for name, sec := range dev["secrets"].(map[string]any) {
		if file := sec.(map[string]any)["file"]; file != "/dev/null" {
			t.Errorf("the dev stack's secret %s comes from %v", name, file)
		}
	}
	// Everything the dev stack publishes (the development superuser is
	// behind it) is on this machine only, and one api holds 8080.
	for name, s := range dev["services"].(map[string]any) {
		for _, p := range asSlice(s.(map[string]any)["ports"]) {
			if !strings.HasPrefix(fmt.Sprint(p), "127.0.0.1:") {
				t.Errorf("the dev stack's %s publishes %v beyond this machine", name, p)
			}
		}
	}
	if deploy, _ := dapi["deploy"].(map[string]any); deploy == nil || deploy["replicas"] != float64(1) {
		t.Errorf("the dev stack runs %v api replicas behind one published port", dapi["deploy"])
	}
	if penv["APP_ENV"] != "production" || penv["TRUSTED_PROXIES"] != "172.28.0.10/32" || penv["RATE_LIMIT_STORE"] != "postgres" {
		t.Fatalf("production api environment: %v", penv)
	}
	if deploy, _ := api["deploy"].(map[string]any); deploy == nil || deploy["replicas"] == nil || deploy["replicas"].(float64) < 2 {
		t.Fatalf("production runs one api replica: %v", api["deploy"])
	}
}

// Every variable the compose files read is documented: the service's in
// .env.production.example, the build's in the README.
func TestComposeVariablesAreDocumented(t *testing.T) {
	example := readEnvFile(t, ".env.production.example")
	var readme []byte
	docs, _ := filepath.Glob("docs/*.md")
	for _, f := range append([]string{"README.md"}, docs...) {
		b, _ := os.ReadFile(f)
		readme = append(readme, b...)
	}
	for _, f := range []string{"docker-compose.yml", "docker-compose.dev.yml", "docker-compose.pooler.yml"} {
		src, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(string(src), -1) {
			if _, ok := example[m[1]]; !ok && !strings.Contains(string(readme), "`"+m[1]+"`") {
				t.Errorf("%s reads %s, which neither .env.production.example nor README.md and docs/ document", f, m[1])
			}
		}
	}
}

// Build outputs stay out of the repository and the image's build context;
// the development certificate names its host where browsers look for it.
func TestRepositoryHygiene(t *testing.T) {
	for _, out := range []string{"backend", "bin/server", "server", "backend.test", ".env", ".env.production", "secrets/database_url"} {
		if err := exec.Command("git", "check-ignore", "-q", out).Run(); err != nil {
			t.Errorf("git does not ignore %s", out)
		}
	}
	ignore, _ := os.ReadFile(".dockerignore")
	for _, out := range []string{"bin", "backend", "server", "*_test.go", ".env*", "secrets"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), out) {
			t.Errorf(".dockerignore lacks %s", out)
		}
	}

	needTool(t, "openssl")
	dir := t.TempDir()
	cmd := exec.Command("./scripts/dev-cert.sh", "app.localhost")
	cmd.Env = append(os.Environ(), "CERT_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dev-cert.sh: %v\n%s", err, out)
	}
	out, err := exec.Command("openssl", "x509", "-in", filepath.Join(dir, "tls.crt"), "-noout", "-ext", "subjectAltName").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DNS:app.localhost", "DNS:localhost", "IP Address:127.0.0.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the certificate's subjectAltName lacks %s: %s", want, out)
		}
	}
}
