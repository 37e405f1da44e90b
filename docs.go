package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

//go:embed openapi.json
var openapiSpec []byte

//go:embed docs.html
var docsPage []byte

// docsCSP lets the docs page run its own inline script and style (pinned by
// hash would break on every edit; the page has no third-party content and
// fetches only the spec from this origin).
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// handleOpenAPI serves the embedded spec with info.version set to the
// running build's version.
func handleOpenAPI(ver string) http.Handler {
	var spec map[string]any
	if err := json.Unmarshal(openapiSpec, &spec); err != nil {
		panic("openapi.json is not valid JSON: " + err.Error())
	}
	if info, ok := spec["info"].(map[string]any); ok {
		info["version"] = ver
	}
	body, _ := json.MarshalIndent(spec, "", "  ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

// handleDocs serves the API reference page, under its own policy.
func handleDocs() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "docs.html", time.Time{}, bytes.NewReader(docsPage))
	})
}
