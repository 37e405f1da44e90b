package main

import (
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
	return env
}

// Every variable config.go reads is in the example, with a comment above.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	src, _ := os.ReadFile("config.go")
	read := regexp.MustCompile(`(?:str|integer|duration|boolean|list|set|getenv)\("([A-Z][A-Z0-9_]+)"`).FindAllStringSubmatch(string(src), -1)
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
