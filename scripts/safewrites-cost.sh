#!/usr/bin/env bash
# What safe writes cost, end to end. Two servers, each on a fresh database
# with the same fixture (one user, 50 items): "old" built from REV (by
# default the commit before safe writes: the parent of the commit that
# added migrations/0011_safe_writes.sql, or HEAD when it is not committed
# yet) and "new" from the working tree. wrk runs, the order turned every
# round:
#   - first GET /api/v1/items/{id} on "old" (no ETag) and "new" (an ETag
#     from the row's version), both databases as the fixture left them: the
#     budget is within 3%;
#   - then POST /api/v1/items on "new" without a key, and with a fresh
#     Idempotency-Key on every request (the kept answer, the key's lock and
#     the transaction they share): the budget is 1.15x the time.
# Prints each figure and the ratios: the mean over the rounds and the median
# of the rounds' own ratios.
#
#   ./scripts/safewrites-cost.sh          # ROUNDS=6 DURATION=5 by default
#
# Bounded: DURATION seconds a run, loopback only. Needs wrk and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fixture.sh
added=$(git log --diff-filter=A --format=%H -- migrations/0011_safe_writes.sql | tail -1)
REV=${1:-${added:+$added~1}}
REV=${REV:-HEAD}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-6}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18389}
ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

for tool in wrk psql; do command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
./scripts/ensure-postgres.sh
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for v in old new; do psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS safewrites_${v}_$$ WITH (FORCE)" || true; done
  git worktree remove --force "$work/old" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

git worktree add -q --detach "$work/old" "$REV"
(cd "$work/old" && CGO_ENABLED=0 go build -trimpath -o "$work/server-old" .)
CGO_ENABLED=0 go build -trimpath -o "$work/server-new" .

# start NAME PORT: the server NAME on a fresh database; writes its token
# to $work/NAME.token and one item's path to $work/NAME.item.
start() {
  local db="safewrites_${1}_$$" base="http://127.0.0.1:$2" token
  psql -q "$ADMIN_URL" -c "CREATE DATABASE $db"
  DATABASE_URL="${ADMIN_URL%/*}/$db?sslmode=disable" PORT=$2 RATE_LIMIT_ENABLED=false LOG_LEVEL=warn METRICS_ADDR=off \
    "$work/server-$1" >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_healthy "$base" "$work/$1.log"
  token=$(fixture "$base")
  echo "$token" >"$work/$1.token"
  curl -fsS "$base/api/v1/items?limit=1" -H "Authorization: Bearer $token" |
    sed -E 's/.*"id":"([0-9a-f-]{36})".*/\/api\/v1\/items\/\1/' >"$work/$1.item"
}
start old "$PORT"
start new $((PORT + 1))
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"a write","description":"measured"}'
LUA
# A fresh key on every request: the thread's id and a counter.
cat >"$work/post-keyed.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"a write","description":"measured"}'
local counter, thread_id = 0, 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init() thread_id = tid; math.randomseed(os.time() * 1000 + thread_id) end
function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = string.format("bench-%d-%d-%d-%08d", os.time(), thread_id, math.random(1e9), counter)
  return wrk.format()
end
LUA

old=http://127.0.0.1:$PORT
new=http://127.0.0.1:$((PORT + 1))
echo "wrk: ${DURATION}s a run, ${CONNECTIONS} connections, 2 threads, ${ROUNDS} rounds; old = $(git rev-parse --short "$REV")"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    get_old=$(wrk_rps "$old$(cat "$work/old.item")" "$(cat "$work/old.token")")
    get_new=$(wrk_rps "$new$(cat "$work/new.item")" "$(cat "$work/new.token")")
  else
    get_new=$(wrk_rps "$new$(cat "$work/new.item")" "$(cat "$work/new.token")")
    get_old=$(wrk_rps "$old$(cat "$work/old.item")" "$(cat "$work/old.token")")
  fi
  echo "round $round: GET /items/{id} old $get_old, new $get_new req/s"
  echo "$get_old $get_new" >>"$work/gets"
done
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    plain=$(wrk_rps "$new/api/v1/items" "$(cat "$work/new.token")" "$work/post.lua")
    keyed=$(wrk_rps "$new/api/v1/items" "$(cat "$work/new.token")" "$work/post-keyed.lua")
  else
    keyed=$(wrk_rps "$new/api/v1/items" "$(cat "$work/new.token")" "$work/post-keyed.lua")
    plain=$(wrk_rps "$new/api/v1/items" "$(cat "$work/new.token")" "$work/post.lua")
  fi
  echo "round $round: POST /items without a key $plain, with a key $keyed req/s"
  echo "$plain $keyed" >>"$work/posts"
done
kept=$(psql -tA "${ADMIN_URL%/*}/safewrites_new_$$?sslmode=disable" -c "SELECT count(*) FROM idempotency_keys")
echo "keys kept by the keyed runs: $kept"
# ratio LABEL FILE: the time ratio second/first of the runs' rates, as the
# mean over the rounds and the median of the rounds' own ratios.
ratio() {
  awk -v label="$1" "$AWK_MEDIAN"'
    { n++; a += $1; b += $2; r[n] = $1 / $2 }
    END { printf "%s: mean %.3f, median %.3f\n", label, a / b, median(r, n) }' "$2"
}
ratio "GET /items/{id} time with ETags / before (budget 1.03)" "$work/gets"
ratio "POST /items time with a key / without (budget 1.15)" "$work/posts"
