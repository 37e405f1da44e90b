#!/usr/bin/env bash
# Load test with wrk against a locally built server and a fresh database.
# Prints requests/s, each next to its baseline measured in the same run:
# GET /api/v1/health/live with every request logged (LOG_LEVEL=debug, to a
# file) against a bare net/http handler on the same route, and an
# authenticated GET /api/v1/items (a page of 20) against /health/live.
# Bounded: DURATION seconds per run, loopback only. Needs wrk and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18089}
ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
DB="load_$$"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
./scripts/ensure-postgres.sh
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
work=$(mktemp -d)
cleanup() {
  [ -n "${bare_pid:-}" ] && kill "$bare_pid" 2>/dev/null || true
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/server" .
CGO_ENABLED=0 go build -trimpath -o "$work/barelive" ./testdata/barelive
PORT=$((PORT + 1)) "$work/barelive" &
bare_pid=$!
DATABASE_URL="${ADMIN_URL%/*}/$DB?sslmode=disable" PORT=$PORT RATE_LIMIT_ENABLED=false LOG_LEVEL=debug METRICS_ADDR=off \
  "$work/server" >"$work/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fs "$base/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

curl -fs -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"load@example.com","password":"load-test-password"}' >/dev/null
token=$(curl -fs -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"email":"load@example.com","password":"load-test-password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
for i in $(seq 1 50); do
  curl -fs -X POST "$base/api/v1/items" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"title\":\"item $i\",\"description\":\"a description\"}" >/dev/null
done

rps() { awk '/Requests\/sec/ {print $2}'; }
echo "wrk: ${DURATION}s, ${CONNECTIONS} connections, 2 threads"
bare=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$((PORT + 1))/api/v1/health/live" | rps)
live=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$base/api/v1/health/live" | tee "$work/live.txt" | rps)
items=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Authorization: Bearer $token" "$base/api/v1/items" | tee "$work/items.txt" | rps)
grep -q 'Non-2xx' "$work/items.txt" && { echo "non-2xx answers during the items run:" >&2; cat "$work/items.txt" >&2; exit 1; }
echo "bare net/http GET /api/v1/health/live (baseline): $bare req/s"
echo "GET /api/v1/health/live, every request logged at debug: $live req/s"
echo "GET /api/v1/items (auth, page of 20): $items req/s"
awk -v a="$live" -v b="$bare" 'BEGIN { printf "ratio live/bare: %.2f\n", a / b }'
awk -v a="$items" -v b="$live" 'BEGIN { printf "ratio items/live: %.2f\n", a / b }'
