package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// markdownFiles are the documents a reader of the repository follows.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("docs/*.md")
	if err != nil || len(docs) < 5 {
		t.Fatalf("docs/: %v %v", docs, err)
	}
	return append([]string{"README.md", "CLAUDE.md"}, docs...)
}

// anchors are the ids GitHub gives a Markdown file's headings.
func anchors(src string) map[string]bool {
	out := map[string]bool{}
	fence := false
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		id := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				return r
			}
			return -1
		}, h)
		out[id] = true
	}
	return out
}

// README.md is the newcomer's entry, readable in two minutes; every
// relative link of it and of the reference resolves, to a file and a
// heading, and nothing points outside the repository.
func TestReadmeIsShortAndEveryLinkResolves(t *testing.T) {
	readme, _ := os.ReadFile("README.md")
	if n := strings.Count(string(readme), "\n"); n > 250 {
		t.Errorf("README.md is %d lines; keep it at most 250, with the reference in docs/", n)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	n := 0
	for _, file := range markdownFiles(t) {
		src, _ := os.ReadFile(file)
		for _, m := range link.FindAllStringSubmatch(string(src), -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), path)
			}
			if rel, err := filepath.Rel(".", resolved); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links %s, outside the repository", file, target)
				continue
			}
			body, err := os.ReadFile(resolved)
			if err != nil {
				t.Errorf("%s links %s, which does not exist", file, target)
				continue
			}
			if anchor != "" && !anchors(string(body))[anchor] {
				t.Errorf("%s links %s: %s has no heading #%s", file, target, resolved, anchor)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d relative links found", n)
	}
}

// The error codes' table in docs/api.md is exactly the codes the service
// can answer (errors.go's constants), each with its status, and so is
// openapi.json's enum.
func TestErrorCodeListIsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "errorCode" {
					v, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
					codes = append(codes, v)
				}
			}
		}
	}
	if len(codes) < 15 {
		t.Fatalf("found only %d codes in errors.go", len(codes))
	}
	api, _ := os.ReadFile("docs/api.md")
	row := regexp.MustCompile(`(?m)^\s*\| ([a-z_]+) \| (\d{3}) \|`)
	table := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(api), -1) {
		table[m[1]] = m[2]
	}
	for _, c := range codes {
		if got, want := table[c], strconv.Itoa(errorCode(c).status()); got != want {
			t.Errorf("docs/api.md's code table: %s has status %q, want %s", c, got, want)
		}
	}
	for c := range table {
		if !slices.Contains(codes, c) {
			t.Errorf("docs/api.md's code table lists %s, which the service never answers", c)
		}
	}
	var enum []string
	for _, v := range asSlice(asMap(asMap(resolve(t, map[string]any{"$ref": "#/components/schemas/Problem"})["properties"])["code"])["enum"]) {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	slices.Sort(codes)
	if !slices.Equal(enum, codes) {
		t.Errorf("openapi.json's Problem code enum %v, want %v", enum, codes)
	}
}

// The development stack starts from the README's one line, which makes the
// certificate nginx needs before compose starts it.
func TestReadmeDevStackLineMakesItsCertificate(t *testing.T) {
	readme, _ := os.ReadFile("README.md")
	var line string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.Contains(l, "docker-compose.dev.yml up") {
			line = l
		}
	}
	before, _, ok := strings.Cut(line, " && ")
	if !ok || before != "./scripts/dev-cert.sh" || !strings.Contains(line, "-f docker-compose.yml -f docker-compose.dev.yml up") {
		t.Fatalf("the README's dev stack line %q does not make the certificate first", line)
	}
	needTool(t, "openssl")
	dir := t.TempDir()
	for range 2 { // again: the line must work on a second run too
		cmd := exec.Command(before)
		cmd.Env = append(os.Environ(), "CERT_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", before, err, out)
		}
	}
	for _, f := range []string{"tls.crt", "tls.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("the certificate step made no %s", f)
		}
	}
	// The stack mounts that folder into nginx.
	dev := composeConfig(t, "docker-compose.yml", "docker-compose.dev.yml")
	if vols := asSlice(dev["services"].(map[string]any)["nginx"].(map[string]any)["volumes"]); len(vols) != 1 || !strings.Contains(fmt.Sprint(vols[0]), "nginx/certs") {
		t.Fatalf("the dev stack's nginx mounts %v", vols)
	}
}

// Every route of the route table has a row in docs/api.md's table of
// endpoints (a row may name several methods of one path).
func TestEveryRouteIsInTheEndpointTable(t *testing.T) {
	api, _ := os.ReadFile("docs/api.md")
	row := regexp.MustCompile(`(?m)^\| ((?:GET|POST|PATCH|PUT|DELETE)(?:, (?:GET|POST|PATCH|PUT|DELETE))*) (/\S*)`)
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(api), -1) {
		for _, method := range strings.Split(m[1], ", ") {
			documented[method+" "+m[2]] = true
		}
	}
	for _, route := range routes(t) {
		method, path, _ := strings.Cut(route, " ")
		if !documented[method+" "+strings.TrimPrefix(path, "/api/v1")] {
			t.Errorf("route %q has no row in docs/api.md's table of endpoints", route)
		}
	}
}
