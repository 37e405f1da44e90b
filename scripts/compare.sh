#!/usr/bin/env bash
# What a change costs end to end: the server built from REV (default HEAD)
# against the working tree's, each on a fresh database of its own with the
# same fixture (one user, 50 items). In each round, wrk runs
# GET /api/v1/health/live (every request logged at debug, to a file) and an
# authenticated GET /api/v1/items (a page of 20) against both servers, the
# order swapped every round; then BenchmarkItemListHTTP runs in both trees,
# alternating. Prints each figure and the ratio new/old: the mean over the
# rounds and the median of the rounds' own ratios (runs next to each other
# share the machine's phase, which swings by a fifth here).
#
#   ./scripts/compare.sh            # the uncommitted change against HEAD
#   ./scripts/compare.sh abc1234    # the working tree against a revision
#
# A piece of cleverness stays only where this shows 5% or more.
# Bounded: DURATION seconds a run, loopback only. Needs wrk and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fixture.sh
REV=${1:-HEAD}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-4}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18189}
ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
./scripts/ensure-postgres.sh
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in old new; do psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS compare_${db}_$$ WITH (FORCE)" || true; done
  git worktree remove --force "$work/old" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

git worktree add -q --detach "$work/old" "$REV"
(cd "$work/old" && CGO_ENABLED=0 go build -trimpath -o "$work/server-old" .)
CGO_ENABLED=0 go build -trimpath -o "$work/server-new" .

# start NAME PORT: the server NAME on a fresh database; writes its token
# to $work/NAME.token (not in a subshell, so pids keeps the process).
start() {
  local db="compare_${1}_$$" base="http://127.0.0.1:$2" token
  if curl -s -o /dev/null "$base/"; then echo "port $2 is taken; set PORT" >&2; exit 1; fi
  psql -q "$ADMIN_URL" -c "CREATE DATABASE $db"
  DATABASE_URL="${ADMIN_URL%/*}/$db?sslmode=disable" PORT=$2 RATE_LIMIT_ENABLED=false LOG_LEVEL=debug METRICS_ADDR=off \
    "$work/server-$1" >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_healthy "$base" "$work/$1.log"
  token=$(fixture "$base")
  echo "$token" >"$work/$1.token"
}
start old "$PORT"
start new $((PORT + 1))
old_token=$(cat "$work/old.token")
new_token=$(cat "$work/new.token")

declare -A live items bench
rps() { awk '/Requests\/sec/ {print $2}'; }
# wrk_rps URL [TOKEN]: requests/s of one run, refusing a run with errors.
wrk_rps() {
  local out
  if [ -n "${2:-}" ]; then
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Authorization: Bearer $2" "$1")
  else
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$1")
  fi
  if echo "$out" | grep -q 'Non-2xx'; then echo "non-2xx answers from $1:" >&2; echo "$out" >&2; exit 1; fi
  echo "$out" | rps
}
echo "wrk: ${DURATION}s a run, ${CONNECTIONS} connections, 2 threads, ${ROUNDS} rounds; old is $(git rev-parse --short "$REV"), new the working tree"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi

  for v in $order; do
    port=$PORT; token=$old_token
    [ "$v" = new ] && port=$((PORT + 1)) && token=$new_token
    live[$v]=$(wrk_rps "http://127.0.0.1:$port/api/v1/health/live")
  done
  for v in $order; do
    port=$PORT; token=$old_token
    [ "$v" = new ] && port=$((PORT + 1)) && token=$new_token
    items[$v]=$(wrk_rps "http://127.0.0.1:$port/api/v1/items" "$token")
  done
  echo "round $round: live old ${live[old]} new ${live[new]}, items old ${items[old]} new ${items[new]} req/s"
  echo "live ${live[old]} ${live[new]}" >>"$work/rounds"
  echo "items ${items[old]} ${items[new]}" >>"$work/rounds"
done
for round in $(seq 1 "$BENCH_ROUNDS"); do
  for v in old new; do
    dir=.
    [ "$v" = old ] && dir="$work/old"
    r=$(cd "$dir" && go test -run '^$' -bench '^BenchmarkItemListHTTP$' -count 1 . | awk '/^BenchmarkItemListHTTP/ { for (i = 1; i <= NF; i++) if ($i == "req/s") print $(i-1) }')
    bench[$v]=$r
  done
  echo "bench round $round: BenchmarkItemListHTTP old ${bench[old]} new ${bench[new]} req/s"
  echo "list-benchmark ${bench[old]} ${bench[new]}" >>"$work/rounds"
done
awk "$AWK_MEDIAN"'
{ k = $1; n[k]++; o[k] += $2; w[k] += $3; r[k, n[k]] = $3 / $2 }
END {
  split("live items list-benchmark", names, " ")
  for (i = 1; i <= 3; i++) {
    k = names[i]; m = n[k]
    for (j = 1; j <= m; j++) a[j] = r[k, j]
    printf "%-15s old %8.0f  new %8.0f req/s  new/old %.3f (median of rounds %.3f)\n", k, o[k] / m, w[k] / m, w[k] / o[k], median(a, m)
  }
}' "$work/rounds"
