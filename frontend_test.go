package main

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// In development the service serves the frontend at every path the API
// does not take: the app for a page path (it routes in the browser), the
// file for an asset, under the pages' own headers.
func TestDevelopmentServesTheFrontend(t *testing.T) {
	a := newTestApp(t, nil)
	index, err := os.ReadFile("nginx/html/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/login", "/reset-password", "/items", "/settings/", "/users/42", "/index.html"} {
		r := a.do(req{method: "GET", path: path})
		expectStatus(t, r, http.StatusOK)
		if string(r.body) != string(index) || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %s, %.80q", path, r.header.Get("Content-Type"), r.body)
		}
		if r.header.Get("Content-Security-Policy") != pageCSP || r.header.Get("Permissions-Policy") != pagePermissions ||
			r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: page headers %v", path, r.header)
		}
	}
	// Every asset index.html and the modules name is served, typed.
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	root := os.DirFS("nginx/html")
	n := 0
	fs.WalkDir(root, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, ok := types[name[strings.LastIndexByte(name, '.'):]]
		if !ok {
			t.Errorf("%s: an asset of a type no test expects", name)
			return nil
		}
		r := a.do(req{method: "GET", path: "/" + name})
		body, _ := fs.ReadFile(root, name)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != want || string(r.body) != string(body) {
			t.Errorf("/%s: %d %s", name, r.status, r.header.Get("Content-Type"))
		}
		n++
		return nil
	})
	if n < 8 {
		t.Fatalf("only %d assets found", n)
	}
	// Each module the pages import exists (a missing one is a blank page).
	imports := regexp.MustCompile(`(?m)^import .* from "(\./[^"]+)";`)
	fs.WalkDir(root, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(name, ".js") {
			return err
		}
		src, _ := fs.ReadFile(root, name)
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			dir := name[:strings.LastIndexByte(name, '/')]
			target := dir + "/" + strings.TrimPrefix(m[1], "./")
			if _, err := fs.Stat(root, target); err != nil {
				t.Errorf("%s imports %s, which does not exist", name, m[1])
			}
		}
		return nil
	})

	// A missing asset is a 404 (not the app), so a broken reference shows;
	// a path that climbs out is cleaned and stays inside.
	for _, path := range []string{"/assets/nope.js", "/assets/pages/"} {
		if r := a.do(req{method: "GET", path: path}); r.status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, r.status)
		}
	}
	if r := a.do(req{method: "GET", path: "/assets/../../go.mod"}); r.status == http.StatusOK && strings.Contains(string(r.body), "module ") {
		t.Fatal("a climbing path read a file outside nginx/html")
	}
	// The API keeps its own answers: an unknown route is a problem, and a
	// page path takes no other method.
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/nope"}), http.StatusNotFound, "not_found")
	expectProblem(t, a.do(req{method: "GET", path: "/api/"}), http.StatusNotFound, "not_found")
	expectProblem(t, a.do(req{method: "POST", path: "/login", body: "{}"}), http.StatusNotFound, "not_found")
	expectStatus(t, a.do(req{method: "GET", path: "/docs"}), http.StatusOK)
	// With the docs off, /docs stays the service's: a 404 problem, not the app.
	off := newTestApp(t, map[string]string{"DOCS_ENABLED": "false"})
	expectProblem(t, off.do(req{method: "GET", path: "/docs"}), http.StatusNotFound, "not_found")
	expectStatus(t, off.do(req{method: "GET", path: "/"}), http.StatusOK)
	if got := a.do(req{method: "GET", path: "/docs"}); got.header.Get("Content-Security-Policy") == pageCSP {
		t.Fatal("/docs got the frontend's page instead of the docs")
	}
}

// Production leaves the pages to nginx: the service answers only its API.
func TestProductionDoesNotServeTheFrontend(t *testing.T) {
	cfg, err := loadConfig(envOf("APP_ENV", "production", "DATABASE_URL", "postgres://app:Xk29-longer-secret@db:5432/app",
		"SMTP_HOST", "smtp.example.com", "MAIL_FROM", "App <noreply@example.com>", "FRONTEND_URL", "https://app.example.com", "SECRET_KEY", testSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServeFrontend {
		t.Fatal("production serves the frontend itself")
	}
	a := newTestApp(t, nil)
	cfg = a.cfg
	cfg.ServeFrontend = false
	srv := newServer(newLogger(a.logs, cfg.LogLevel), cfg, a.deps)
	for _, path := range []string{"/", "/login", "/assets/app.js"} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s: %d %s", path, w.Code, w.Header().Get("Content-Type"))
		}
	}
}

// nginx serves the same pages in production under the same policy.
func TestPageCSPMatchesNginx(t *testing.T) {
	conf, err := os.ReadFile("nginx/snippets/security-headers.conf")
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]string{"Content-Security-Policy": pageCSP, "Permissions-Policy": pagePermissions} {
		m := regexp.MustCompile(`(?m)^add_header ` + header + ` "([^"]*)" always;`).FindSubmatch(conf)
		if m == nil || string(m[1]) != want {
			t.Errorf("%s: nginx has %q, the service %q", header, m, want)
		}
	}
	// No inline script or style can run under it, and no string becomes HTML.
	for _, s := range []string{"'unsafe-inline'", "'unsafe-eval'", "data:", "*"} {
		if strings.Contains(pageCSP, s) {
			t.Errorf("pageCSP allows %s", s)
		}
	}
	for _, s := range []string{"default-src 'none'", "require-trusted-types-for 'script'", "frame-ancestors 'none'"} {
		if !strings.Contains(pageCSP, s) {
			t.Errorf("pageCSP lacks %s", s)
		}
	}
	// The pages obey it: no inline script, style or handler in the HTML.
	index, _ := os.ReadFile("nginx/html/index.html")
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|\son[a-z]+=|style=`).Match(index) {
		t.Fatal("index.html has inline script or style, which the CSP would block")
	}
}

// Development's links point back at the service itself, which serves the
// pages they open; FRONTEND_URL, when set, wins.
func TestDevelopmentFrontendURLIsTheService(t *testing.T) {
	for _, tt := range []struct {
		env  lookupEnv
		want string
	}{
		{envOf(), "http://127.0.0.1:8080"},
		{envOf("PORT", "9000"), "http://127.0.0.1:9000"},
		{envOf("HOST", "", "PORT", "9000"), "http://127.0.0.1:9000"},
		{envOf("HOST", "::1"), "http://[::1]:8080"},
		{envOf("FRONTEND_URL", "http://localhost:5173"), "http://localhost:5173"},
	} {
		cfg, err := loadConfig(tt.env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.FrontendURL != tt.want || !cfg.ServeFrontend {
			t.Errorf("FrontendURL=%q (want %q), serve=%v", cfg.FrontendURL, tt.want, cfg.ServeFrontend)
		}
	}
}

// What the catch-all answers is labelled by what it is, in the access line
// and in the metrics: a wrong method or an unknown route on an API path is
// "unmatched", never the frontend's "/", and a page is "frontend".
func TestCatchAllRouteLabels(t *testing.T) {
	a := newTestApp(t, nil)
	for _, c := range []struct {
		method, path string
		status       int
		route        string
	}{
		{"DELETE", "/api/v1/health", 405, routeUnmatched},
		{"PUT", "/api/v1/items", 405, routeUnmatched},
		{"GET", "/api/v1/nope", 404, routeUnmatched},
		{"POST", "/login", 404, routeUnmatched},
		{"GET", "/login", 200, routeFrontend},
		{"GET", "/api/v1/health/live", 200, "GET /api/v1/health/live"},
	} {
		r := a.do(req{method: c.method, path: c.path})
		expectStatus(t, r, c.status)
		var line map[string]any
		for _, l := range a.logs.linesWith(t, "request_id", r.header.Get("X-Request-ID")) {
			if l["msg"] == "request" {
				line = l
			}
		}
		if line == nil || line["route"] != c.route {
			t.Errorf("%s %s: access line %v, want route %q", c.method, c.path, line, c.route)
		}
	}
	var text strings.Builder
	a.deps.metrics.write(&text)
	for _, want := range []string{
		`http_requests_total{route="unmatched",method="DELETE",status="405"} 1`,
		`http_requests_total{route="unmatched",method="PUT",status="405"} 1`,
		`http_requests_total{route="frontend",method="GET",status="200"} 1`,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text.String(), `route="/"`) {
		t.Error(`a metric is labelled route="/"`)
	}
}
