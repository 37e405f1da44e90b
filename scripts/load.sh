#!/usr/bin/env bash
# Load test with wrk against a locally built server and a fresh database.
# Prints requests/s, each next to its baselines measured in the same run:
# GET /api/v1/health/live with every request logged (LOG_LEVEL=debug, to a
# file) against a bare net/http handler on the same route, and against that
# bare handler sending the contract's response headers with the service's
# server timeouts (testdata/barelive CONTRACT=1: the cheapest server the
# contract allows); an authenticated GET /api/v1/items (a page of 20)
# against /health/live. This machine's speed swings by a fifth from one
# second to the next, so the runs alternate, ROUNDS times, and each figure
# is the mean of its rounds. Bounded: DURATION seconds per run, loopback
# only. Needs wrk and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
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
  [ -n "${contract_pid:-}" ] && kill "$contract_pid" 2>/dev/null || true
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/server" .
CGO_ENABLED=0 go build -trimpath -o "$work/barelive" ./testdata/barelive
PORT=$((PORT + 1)) "$work/barelive" &
bare_pid=$!
CONTRACT=1 PORT=$((PORT + 2)) "$work/barelive" &
contract_pid=$!
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
run() { wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$@"; }
# cpu PID: the process's user+system CPU so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
# measure PID URL: one wrk run; prints requests/s and the server's CPU
# microseconds per request (steadier than requests/s here: wrk and the
# server share the cores, and the machine's speed swings).
measure() {
  local before after out
  before=$(cpu "$1")
  out=$(run "$2")
  after=$(cpu "$1")
  awk -v rps="$(echo "$out" | rps)" -v n="$(echo "$out" | awk '/requests in/ {print $1}')" -v t="$ticks" -v c=$((after - before)) \
    'BEGIN { printf "%s %.2f\n", rps, c / t * 1e6 / n }'
}
echo "wrk: ${DURATION}s a run, ${CONNECTIONS} connections, 2 threads, ${ROUNDS} rounds"
bare=0 contract=0 live=0 items=0 bare_us=0 contract_us=0 live_us=0
for round in $(seq 1 "$ROUNDS"); do
  read -r b bu < <(measure "$bare_pid" "http://127.0.0.1:$((PORT + 1))/api/v1/health/live")
  read -r c cu < <(measure "$contract_pid" "http://127.0.0.1:$((PORT + 2))/api/v1/health/live")
  read -r l lu < <(measure "$pid" "$base/api/v1/health/live")
  run -H "Authorization: Bearer $token" "$base/api/v1/items" >"$work/items.txt"
  grep -q 'Non-2xx' "$work/items.txt" && { echo "non-2xx answers during the items run:" >&2; cat "$work/items.txt" >&2; exit 1; }
  i=$(rps <"$work/items.txt")
  echo "round $round: bare $b ($bu us CPU/req), bare with the contract's headers $c ($cu), live logged $l ($lu), items $i req/s"
  read -r bare contract live items bare_us contract_us live_us < <(awk -v a="$bare" -v b="$b" -v c="$contract" -v d="$c" -v e="$live" -v f="$l" -v g="$items" -v h="$i" \
    -v p="$bare_us" -v q="$bu" -v r="$contract_us" -v s="$cu" -v t="$live_us" -v u="$lu" \
    'BEGIN { print a + b, c + d, e + f, g + h, p + q, r + s, t + u }')
done
awk -v n="$ROUNDS" -v bare="$bare" -v contract="$contract" -v live="$live" -v items="$items" \
  -v bu="$bare_us" -v cu="$contract_us" -v lu="$live_us" 'BEGIN {
  bare /= n; contract /= n; live /= n; items /= n; bu /= n; cu /= n; lu /= n
  printf "bare net/http GET /api/v1/health/live (baseline): %.0f req/s, server CPU %.1f us/req\n", bare, bu
  printf "the same with the contract'"'"'s headers and timeouts: %.0f req/s, server CPU %.1f us/req\n", contract, cu
  printf "GET /api/v1/health/live, every request logged at debug: %.0f req/s, server CPU %.1f us/req\n", live, lu
  printf "GET /api/v1/items (auth, page of 20): %.0f req/s\n", items
  printf "ratio live/bare: %.2f\n", live / bare
  printf "ratio contract-bare/bare (what the contract costs): %.2f\n", contract / bare
  printf "ratio live/contract-bare (what our code costs): %.2f\n", live / contract
  printf "server CPU per request, live - contract-bare (our code), us: %.1f\n", lu - cu
  printf "ratio items/live: %.2f\n", items / live
}'
