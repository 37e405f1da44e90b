// Command barelive is the baseline of scripts/load.sh: a bare net/http
// server answering GET /api/v1/health/live as the service does, with no
// middleware and no logging.
//
// With CONTRACT=1 it also sends the response headers the contract asks of
// every answer (the security headers, Vary, X-Request-ID) and uses the
// service's server timeouts: the cheapest server the contract allows, so
// the load script can say what the contract costs and what our code costs.
//
// With LOG=1 as well, every request also gets a fresh random id and one
// JSON access line with the service's fields, appended by hand into a
// buffer that is written to standard output when full and every 100 ms:
// the cheapest server that does what the service does for this route.
// It has no middleware, no router beyond net/http's, no metrics and no
// slog; what the service spends beyond it is what our code costs.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

func main() {
	body := []byte(`{"status":"pass"}` + "\n")
	contract := os.Getenv("CONTRACT") == "1"
	var log *accessLog
	if contract && os.Getenv("LOG") == "1" {
		log = newAccessLog()
	}
	http.HandleFunc("GET /api/v1/health/live", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		id := "3f2a9c0d1b7e4f6a8c5d2e1f0a9b8c7d"
		if log != nil {
			id = newID()
		}
		if contract {
			h["Cache-Control"] = []string{"no-store"}
			h["X-Content-Type-Options"] = []string{"nosniff"}
			h["Content-Security-Policy"] = []string{"default-src 'none'; frame-ancestors 'none'"}
			h["Referrer-Policy"] = []string{"no-referrer"}
			h["X-Frame-Options"] = []string{"DENY"}
			h["Cross-Origin-Resource-Policy"] = []string{"same-origin"}
			h["Vary"] = []string{"Origin"}
			h["X-Request-Id"] = []string{id}
			h["Content-Length"] = []string{"18"}
		}
		h.Set("Content-Type", "application/health+json")
		n, _ := w.Write(body)
		if log != nil {
			log.write(start, id, r, n)
		}
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT")}
	if contract {
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 15 * time.Second
		srv.WriteTimeout = 30 * time.Second
		srv.IdleTimeout = 120 * time.Second
	}
	if err := srv.ListenAndServe(); err != nil {
		panic(err)
	}
}

func newID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// accessLog is one buffered writer behind a mutex, flushed every 100 ms.
type accessLog struct {
	mu   sync.Mutex
	out  *bufio.Writer
	line []byte
}

func newAccessLog() *accessLog {
	l := &accessLog{out: bufio.NewWriterSize(os.Stdout, 64<<10)}
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			l.mu.Lock()
			l.out.Flush()
			l.mu.Unlock()
		}
	}()
	return l
}

// write appends the line the service writes for this route, with the same
// fields, as valid JSON.
func (l *accessLog) write(start time.Time, id string, r *http.Request, n int) {
	took := time.Since(start)
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := append(l.line[:0], `{"time":"`...)
	b = start.Add(took).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"DEBUG","msg":"request","request_id":"`...)
	b = append(b, id...)
	b = append(b, `","method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"route":"GET /api/v1/health/live","path":`...)
	b = appendString(b, r.URL.Path)
	b = append(b, `,"status":200,"bytes":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(took.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"client_ip":`...)
	b = appendString(b, ip)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, r.Header.Get("User-Agent"))
	b = append(b, "}\n"...)
	l.out.Write(b)
	l.line = b
}

// appendString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}
