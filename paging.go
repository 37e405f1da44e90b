package main

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Lists page by key: every list is ordered by (created_at, id), newest
// first, and a page starts after a position, the cursor's, so a page deep
// in a list costs what the first one does. An offset (at most maxOffset)
// is kept for small collections; it reads the rows it skips.

const (
	defaultLimit = 20
	maxLimit     = 100
	maxOffset    = 10_000
)

// cursors writes and reads the opaque cursors of next pages: a position
// and its list, signed (HMAC-SHA256 under a key derived from SECRET_KEY),
// so a cursor that was edited, or comes from another list, is refused. It
// carries nothing that authorises: used by another user, it positions that
// user's own list.
type cursors struct{ key []byte }

func newCursors(secret []byte) *cursors {
	key, err := hkdf.Key(sha256.New, secret, nil, "backend cursor", 32)
	if err != nil {
		panic(err) // only for a length HKDF cannot make; 32 it always can
	}
	return &cursors{key: key}
}

const cursorVersion = 1

// encode is the cursor of the page after p in list.
func (c *cursors) encode(list string, p position) string {
	id, _ := hex.DecodeString(strings.ReplaceAll(p.id, "-", ""))
	b := []byte{cursorVersion, byte(len(list))}
	b = append(b, list...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.createdAt.UnixMicro()))
	b = append(b, id...)
	return base64.RawURLEncoding.EncodeToString(c.sign(b))
}

func (c *cursors) sign(b []byte) []byte {
	mac := hmac.New(sha256.New, c.key)
	mac.Write(b)
	return mac.Sum(b)[:len(b)+16]
}

// decode reads a cursor of list; ok is false for anything else.
func (c *cursors) decode(list, s string) (p position, ok bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	n := 2 + len(list) + 8 + 16
	if err != nil || len(b) != n+16 || b[0] != cursorVersion || int(b[1]) != len(list) || string(b[2:2+len(list)]) != list {
		return position{}, false
	}
	if !hmac.Equal(c.sign(b[:n]), b) {
		return position{}, false
	}
	rest := b[2+len(list) : n]
	p.createdAt = time.UnixMicro(int64(binary.BigEndian.Uint64(rest[:8]))).UTC()
	u := hex.EncodeToString(rest[8:])
	p.id = u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
	return p, true
}

// query reads a list's query: limit (1..100, default 20), cursor (a next
// page of this list) or offset (0..10,000), each bad one a 422 naming it,
// with the list's own bad parameters (more).
func (c *cursors) query(r *http.Request, list string, more ...fieldError) (pageQuery, error) {
	q := pageQuery{limit: defaultLimit, after: beforeAll, list: list}
	v := r.URL.Query()
	if fields := append(repeatedParams(v, "limit", "offset", "cursor"), more...); len(fields) > 0 {
		return q, validationError(fields)
	}
	var fields []fieldError
	if s, ok := v["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > maxLimit {
			fields = append(fields, fieldError{Field: "limit", Message: "must be a whole number from 1 to 100"})
		}
		q.limit = n
	}
	if s, ok := v["offset"]; ok {
		n, err := strconv.Atoi(s[0])
		switch {
		case err != nil || n < 0:
			fields = append(fields, fieldError{Field: "offset", Message: "must be a whole number of 0 or more"})
		case n > maxOffset:
			fields = append(fields, fieldError{Field: "offset", Message: "must be at most 10000; page further with cursor (each page's next_cursor)"})
		case v.Has("cursor"):
			fields = append(fields, fieldError{Field: "offset", Message: "cannot be combined with cursor"})
		}
		q.offset = n
	}
	if s, ok := v["cursor"]; ok {
		p, valid := c.decode(list, s[0])
		if !valid {
			fields = append(fields, fieldError{Field: "cursor", Message: "is not a cursor of this list; use a next_cursor as it was given"})
		}
		q.after = p
	}
	if len(fields) > 0 {
		return q, validationError(fields)
	}
	return q, nil
}

// pageOf makes the Page of rows, fetched one past the limit: an extra row
// means there is a next page, which starts after the last row shown.
func pageOf[T any](c *cursors, q pageQuery, rows []T, at func(T) position, count int, capped bool) listPage[T] {
	p := listPage[T]{Data: rows, Count: count, CountCapped: capped}
	if len(rows) > q.limit {
		p.Data = rows[:q.limit]
		next := c.encode(q.list, at(p.Data[q.limit-1]))
		p.NextCursor = &next
	}
	if p.Data == nil {
		p.Data = []T{}
	}
	return p
}

// capCount is a count that stopped at countCap+1, as the page says it.
func capCount(n int) (count int, capped bool) {
	if n > countCap {
		return countCap, true
	}
	return n, false
}

// writePage answers a page, with an RFC 8288 Link to the next one.
func writePage[T any](w http.ResponseWriter, r *http.Request, q pageQuery, p listPage[T]) {
	if p.NextCursor != nil {
		next := url.Values{"cursor": {*p.NextCursor}, "limit": {strconv.Itoa(q.limit)}}
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, contentJSON, p)
}
