#!/usr/bin/env bash
# Load test with wrk against a locally built server and a fresh database.
# Prints requests/s, each next to its baselines measured in the same run:
# GET /api/v1/health/live with every request logged (LOG_LEVEL=debug, to a
# file) against a bare net/http handler on the same route, and against that
# bare handler sending the contract's response headers with the service's
# server timeouts (testdata/barelive CONTRACT=1: the cheapest server the
# contract allows), and against that server also giving every request a
# fresh id and one JSON access line, buffered, to a file (LOG=1: the
# cheapest server that does what ours does on this route); an
# authenticated GET /api/v1/items (a page of 20) against /health/live.
# This machine's speed swings by a fifth from one second to the next, so
# the runs alternate, ROUNDS times; each figure is the mean of its rounds,
# and each ratio also the median of the rounds' own ratios. Bounded:
# DURATION seconds per run, loopback only. Needs wrk and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fixture.sh
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
  [ -n "${floor_pid:-}" ] && kill "$floor_pid" 2>/dev/null || true
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
CONTRACT=1 LOG=1 PORT=$((PORT + 3)) "$work/barelive" >"$work/floor.log" &
floor_pid=$!
DATABASE_URL="${ADMIN_URL%/*}/$DB?sslmode=disable" PORT=$PORT RATE_LIMIT_ENABLED=false LOG_LEVEL=debug METRICS_ADDR=off \
  "$work/server" >"$work/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$PORT"
wait_healthy "$base" "$work/server.log"

token=$(fixture "$base")

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
for round in $(seq 1 "$ROUNDS"); do
  read -r b bu < <(measure "$bare_pid" "http://127.0.0.1:$((PORT + 1))/api/v1/health/live")
  read -r c cu < <(measure "$contract_pid" "http://127.0.0.1:$((PORT + 2))/api/v1/health/live")
  read -r f fu < <(measure "$floor_pid" "http://127.0.0.1:$((PORT + 3))/api/v1/health/live")
  read -r l lu < <(measure "$pid" "$base/api/v1/health/live")
  run -H "Authorization: Bearer $token" "$base/api/v1/items" >"$work/items.txt"
  grep -q 'Non-2xx' "$work/items.txt" && { echo "non-2xx answers during the items run:" >&2; cat "$work/items.txt" >&2; exit 1; }
  i=$(rps <"$work/items.txt")
  echo "round $round: bare $b ($bu us CPU/req), bare with the contract's headers $c ($cu), and logged $f ($fu), live logged $l ($lu), items $i req/s"
  echo "$b $bu $c $cu $f $fu $l $lu $i" >>"$work/rounds"
done
# The logged baseline must have done its work, or its figure means nothing.
sleep 0.2 # its last flush
[ "$(wc -l <"$work/floor.log")" -gt 0 ] || { echo "the logged baseline wrote no access line" >&2; exit 1; }
# Means over the rounds, and for the ratios also the median of each
# round's own ratio: runs next to each other share the machine's phase.
awk "$AWK_MEDIAN"'
{ n++; bare += $1; bu += $2; contract += $3; cu += $4; floor += $5; fu += $6; live += $7; lu += $8; items += $9
  rl[n] = $7 / $1; rc[n] = $3 / $1; rf[n] = $5 / $1; ro[n] = $7 / $5; rd[n] = $8 - $6 }
END {
  bare /= n; contract /= n; floor /= n; live /= n; items /= n; bu /= n; cu /= n; fu /= n; lu /= n
  printf "bare net/http GET /api/v1/health/live (baseline): %.0f req/s, server CPU %.1f us/req\n", bare, bu
  printf "the same with the contract'"'"'s headers and timeouts: %.0f req/s, server CPU %.1f us/req\n", contract, cu
  printf "the same, with a fresh request id and an access line per request: %.0f req/s, server CPU %.1f us/req\n", floor, fu
  printf "GET /api/v1/health/live, every request logged at debug: %.0f req/s, server CPU %.1f us/req\n", live, lu
  printf "GET /api/v1/items (auth, page of 20): %.0f req/s\n", items
  printf "ratio live/bare: %.2f (median of rounds %.2f)\n", live / bare, median(rl, n)
  printf "ratio contract-bare/bare (what the contract costs): %.2f (median %.2f)\n", contract / bare, median(rc, n)
  printf "ratio logged-bare/bare (what the contract and a log line cost): %.2f (median %.2f)\n", floor / bare, median(rf, n)
  printf "ratio live/logged-bare (what our code costs): %.2f (median %.2f)\n", live / floor, median(ro, n)
  printf "server CPU per request, live - logged-bare (our code), us: %.1f (median %.1f)\n", lu - fu, median(rd, n)
  printf "ratio items/live: %.2f\n", items / live
}' "$work/rounds"
