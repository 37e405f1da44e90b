package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readEnvFile loads an env file as the README says to, in a shell that
// starts with nothing set: set -a; . ./FILE. The names are the file's KEY=
// lines; the values are what the shell made of them.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(src), "\n") {
		if m := envLine.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		} else if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			t.Fatalf("%s: line %q is neither a comment nor KEY=VALUE", path, line)
		}
	}
	script := `set -a; . "$1"; shift; for n in "$@"; do printf '%s=%s\0' "$n" "${!n}"; done`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash", "./" + path}, names...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("set -a; . ./%s: %v\n%s", path, err, stderr.String())
	}
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// envLine is a KEY=VALUE line of an env file.
var envLine = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=`)

// The example loads both ways the README gives: in a shell (set -a;
// . ./.env.production.example) and as compose's .env, and both read the
// same values, each the line's text less its quotes.
func TestEnvExampleLoadsInAShellAndInCompose(t *testing.T) {
	shell := readEnvFile(t, ".env.production.example")
	src, _ := os.ReadFile(".env.production.example")
	for _, line := range strings.Split(string(src), "\n") {
		if m := envLine.FindStringSubmatch(line); m != nil {
			written := strings.TrimPrefix(line, m[0])
			if unq, err := strconv.Unquote(written); err == nil {
				written = unq
			}
			if shell[m[1]] != written {
				t.Errorf("%s: the shell read %q from %q", m[1], shell[m[1]], line)
			}
		}
	}
	if shell["MAIL_FROM"] != "App <noreply@example.com>" {
		t.Fatalf("MAIL_FROM=%q", shell["MAIL_FROM"])
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "nginx"), 0o755)
	os.WriteFile(filepath.Join(dir, ".env"), src, 0o600)
	compose, _ := os.ReadFile("docker-compose.yml")
	os.WriteFile(filepath.Join(dir, "docker-compose.yml"), compose, 0o644)
	cfg := composeConfigIn(t, dir, nil, "docker-compose.yml")
	passed := regexp.MustCompile(`(?m)^\s+([A-Z][A-Z0-9_]*): \$\{([A-Z][A-Z0-9_]*):?-`)
	n := 0
	for _, m := range passed.FindAllStringSubmatch(string(compose), -1) {
		for name, svc := range cfg["services"].(map[string]any) {
			env, _ := svc.(map[string]any)["environment"].(map[string]any)
			if got, ok := env[m[1]]; ok && m[1] == m[2] {
				if v, inExample := shell[m[2]]; inExample && fmt.Sprint(got) != v {
					t.Errorf("%s %s: compose read %q, the shell %q", name, m[1], got, v)
				}
				n++
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d variables compared", n)
	}
}

// Every variable config.go reads is in the example, with a comment above.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	src := configSources(t)
	read := regexp.MustCompile(`(?:str|integer|duration|boolean|list|set|getenv)\("([A-Z][A-Z0-9_]+)"`).FindAllStringSubmatch(src, -1)
	if len(read) < 20 {
		t.Fatalf("found only %d variables in config.go; has the parser changed?", len(read))
	}
	example, _ := os.ReadFile(".env.production.example")
	env := readEnvFile(t, ".env.production.example")
	lines := strings.Split(string(example), "\n")
	for _, m := range read {
		name := m[1]
		if _, ok := env[name]; !ok {
			t.Errorf("%s is read by config.go but missing from .env.production.example", name)
			continue
		}
		for i, l := range lines {
			if strings.HasPrefix(l, name+"=") {
				j := i - 1
				for j >= 0 && strings.Contains(lines[j], "=") && !strings.HasPrefix(lines[j], "#") {
					j-- // grouped variables share the comment above them
				}
				if j < 0 || !strings.HasPrefix(lines[j], "# ") {
					t.Errorf("%s has no comment", name)
				}
			}
		}
	}
}

// The example, copied unchanged, must not start: it names each placeholder.
func TestEnvExampleRefusesToStart(t *testing.T) {
	env := readEnvFile(t, ".env.production.example")
	err := run(context.Background(), []string{"server"}, envMap(env), strings.NewReader(""), io.Discard, io.Discard)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("the example started (or failed otherwise): %v", err)
	}
	for _, name := range []string{"DATABASE_URL", "FIRST_SUPERUSER_PASSWORD", "SECRET_KEY"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("refusal does not name %s:\n%v", name, err)
		}
	}
	// With the placeholders replaced it is a valid production config.
	env["DATABASE_URL"] = "postgres://app:Real-Db-Secret-42@db:5432/app?sslmode=disable"
	env["FIRST_SUPERUSER_PASSWORD"] = "a-real-long-passphrase"
	env["SECRET_KEY"] = testSecretKey
	if _, err := loadConfig(envMap(env)); err != nil {
		t.Fatalf("the filled-in example is refused: %v", err)
	}
}
