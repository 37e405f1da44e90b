package main

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// In development the service serves the frontend (nginx/html) itself, at
// every path the API and the docs do not take, so `make run` and a mailed
// link open working pages without nginx. In production nginx serves the
// same files, under the same headers.

//go:embed nginx/html
var frontendFiles embed.FS

// pageCSP is the frontend's policy, as nginx sends it
// (nginx/snippets/security-headers.conf; a test holds the two equal): its
// own scripts and styles only, no inline code, fetches to its own origin,
// and Trusted Types with no policy, so no string can become HTML.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// pagePermissions is the Permissions-Policy of the pages (nginx's too).
const pagePermissions = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"

// handleFrontend answers a file of the frontend when the path names one,
// and index.html (the app, which routes in the browser) for any other page
// path; a missing asset is a 404, so a broken reference shows.
func handleFrontend() http.Handler {
	root, err := fs.Sub(frontendFiles, "nginx/html")
	if err != nil {
		panic(err)
	}
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		panic("nginx/html has no index.html")
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Permissions-Policy", pagePermissions)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if st, err := fs.Stat(root, name); err == nil && !st.IsDir() && name != "index.html" {
			files.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index)
	})
}
