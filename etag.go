package main

import (
	"net/http"
	"strconv"
	"strings"
)

// Conditional requests (RFC 9110, 13) on items and users: a strong ETag
// from the row's version (the quoted number), 304 for an If-None-Match
// that names it, and If-Match on PATCH and DELETE read into the store's
// precondition (store_versions.go), checked in the write: 412 with the
// current ETag when it names another version, and with IF_MATCH_REQUIRED
// 428 when it is missing (errors.go answers staleError). A write without
// If-Match behaves as before.

// etag is a version's strong entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// notModified answers 304 with the tag and no body when If-None-Match
// names tag (weak comparison: W/ is ignored) or is *.
func notModified(w http.ResponseWriter, r *http.Request, tag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			w.Header().Set("ETag", tag)
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// preconditionOf reads If-Match. required is IF_MATCH_REQUIRED.
func preconditionOf(r *http.Request, required bool) precondition {
	im, sent := r.Header["If-Match"]
	if !sent {
		if required {
			return precondition{versions: []int64{}, missing: true}
		}
		return precondition{}
	}
	versions := []int64{}
	for _, t := range strings.Split(strings.Join(im, ","), ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return precondition{}
		}
		if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
			if v, err := strconv.ParseInt(t[1:len(t)-1], 10, 64); err == nil {
				versions = append(versions, v)
			}
		}
	}
	return precondition{versions: versions}
}
