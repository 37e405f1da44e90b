// Command barelive is the baseline of scripts/load.sh: a bare net/http
// server answering GET /api/v1/health/live as the service does, with no
// middleware and no logging.
package main

import (
	"net/http"
	"os"
)

func main() {
	body := []byte(`{"status":"pass"}` + "\n")
	http.HandleFunc("GET /api/v1/health/live", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		w.Write(body)
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		panic(err)
	}
}
