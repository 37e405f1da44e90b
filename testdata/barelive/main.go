// Command barelive is the baseline of scripts/load.sh: a bare net/http
// server answering GET /api/v1/health/live as the service does, with no
// middleware and no logging.
//
// With CONTRACT=1 it also sends the response headers the contract asks of
// every answer (the security headers, Vary, X-Request-ID) and uses the
// service's server timeouts: the cheapest server the contract allows, so
// the load script can say what the contract costs and what our code costs.
package main

import (
	"net/http"
	"os"
	"time"
)

func main() {
	body := []byte(`{"status":"pass"}` + "\n")
	contract := os.Getenv("CONTRACT") == "1"
	http.HandleFunc("GET /api/v1/health/live", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if contract {
			h["Cache-Control"] = []string{"no-store"}
			h["X-Content-Type-Options"] = []string{"nosniff"}
			h["Content-Security-Policy"] = []string{"default-src 'none'; frame-ancestors 'none'"}
			h["Referrer-Policy"] = []string{"no-referrer"}
			h["X-Frame-Options"] = []string{"DENY"}
			h["Cross-Origin-Resource-Policy"] = []string{"same-origin"}
			h["Vary"] = []string{"Origin"}
			h["X-Request-Id"] = []string{"3f2a9c0d1b7e4f6a8c5d2e1f0a9b8c7d"}
			h["Content-Length"] = []string{"18"}
		}
		h.Set("Content-Type", "application/health+json")
		w.Write(body)
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
