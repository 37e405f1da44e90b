package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The two images and their build contexts, as docker compose builds them.
var images = []struct {
	name, context string
}{
	{"api", "../../.."},
	{"frontend", "../../../nginx"},
	{"pgbouncer", "../../pgbouncer"},
}

// contextOf copies image's context as Docker leaves it, with the ignore
// file given (its own .dockerignore when ""), and returns the copy.
func contextOf(t *testing.T, context, ignore string) (string, int64) {
	t.Helper()
	if ignore == "" {
		ignore = filepath.Join(context, ".dockerignore")
	}
	patterns, err := readIgnore(ignore)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	size, err := copyContext(context, patterns, out)
	if err != nil {
		t.Fatal(err)
	}
	return out, size
}

// copySources are the sources of the Dockerfile's COPY lines that read the
// context (not another stage's files).
func copySources(t *testing.T, dockerfile string) []string {
	t.Helper()
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, line := range strings.Split(string(src), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--from=") {
			continue
		}
		for _, f := range fields[1 : len(fields)-1] {
			if !strings.HasPrefix(f, "--") {
				sources = append(sources, f)
			}
		}
	}
	if len(sources) == 0 {
		t.Fatalf("%s copies nothing from its context", dockerfile)
	}
	return sources
}

// Every COPY source of both Dockerfiles is in the context Docker sends,
// and neither context carries a secret, a certificate or a build output.
func TestEveryCopySourceIsInItsContext(t *testing.T) {
	for _, img := range images {
		t.Run(img.name, func(t *testing.T) {
			dir, size := contextOf(t, img.context, "")
			t.Logf("%s context: %d bytes", img.name, size)
			for _, src := range copySources(t, filepath.Join(img.context, "Dockerfile")) {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("COPY %s: not in the context its .dockerignore leaves", src)
				}
			}
			filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				rel, _ := filepath.Rel(dir, path)
				for _, never := range []string{".git", ".env", "secrets", "certs", "bin", "testdata"} {
					if rel == never || strings.HasPrefix(rel, never+"/") || strings.HasSuffix(rel, "_test.go") || strings.HasSuffix(rel, ".pem") || strings.HasSuffix(rel, ".key") {
						t.Errorf("the %s context holds %s", img.name, rel)
						return filepath.SkipDir
					}
				}
				return nil
			})
		})
	}
}

// The API's binary builds from its context with the Dockerfile's own build
// line, and answers as the image's entrypoint would.
func TestAPIBuildsFromItsContext(t *testing.T) {
	dir, _ := contextOf(t, "../../..", "")
	bin := filepath.Join(t.TempDir(), "server")
	if err := buildInContext("../../../Dockerfile", dir, "1.2.3", "abc1234", bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1.2.3 (commit abc1234)" {
		t.Fatalf("-version: %q %v", out, err)
	}
}

// The check can fail: leaving the frontend out of the API's context, as
// .dockerignore once did with the line "nginx", breaks the build at the
// embed of nginx/html.
func TestIgnoringTheFrontendBreaksTheBuild(t *testing.T) {
	ignore, err := os.ReadFile("../../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	mutated := filepath.Join(t.TempDir(), ".dockerignore")
	os.WriteFile(mutated, append(ignore, "nginx\n"...), 0o644)
	dir, _ := contextOf(t, "../../..", mutated)
	err = buildInContext("../../../Dockerfile", dir, "dev", "unknown", filepath.Join(t.TempDir(), "server"))
	if err == nil || !strings.Contains(err.Error(), "pattern nginx/html: no matching files found") {
		t.Fatalf("with nginx ignored, the build gave %v", err)
	}
}
