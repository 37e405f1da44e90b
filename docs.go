package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
)

//go:embed openapi.json
var openapiSpec []byte

//go:embed docs.html
var docsPage []byte

// handleOpenAPI serves the embedded spec with info.version set to the
// running build's version.
func handleOpenAPI(ver string) http.Handler {
	var spec map[string]any
	if err := json.Unmarshal(openapiSpec, &spec); err != nil {
		panic("openapi.json is not valid JSON: " + err.Error()) // caught by the tests, never at run time
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

// handleDocs serves the API reference page under its own policy: its one
// inline script and one inline style are allowed by hash, it may fetch the
// spec from this origin, and nothing else loads.
func handleDocs() http.Handler {
	csp := "default-src 'none'; script-src " + inlineHash(docsPage, "script") +
		"; style-src " + inlineHash(docsPage, "style") +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	length := strconv.Itoa(len(docsPage))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", length)
		w.Write(docsPage)
	})
}

// inlineHash is the CSP source for the first <tag>…</tag> of page, computed
// from the embedded page so an edit cannot leave the policy stale.
func inlineHash(page []byte, tag string) string {
	open := []byte("<" + tag + ">")
	start := bytes.Index(page, open)
	end := bytes.Index(page, []byte("</"+tag+">"))
	if start < 0 || end < start {
		panic("docs.html has no <" + tag + "> block")
	}
	sum := sha256.Sum256(page[start+len(open) : end])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
