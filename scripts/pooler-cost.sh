#!/usr/bin/env bash
# What a transaction pooler costs, end to end: the same build three ways,
# each on a fresh database of its own with the same fixture (one user, 50
# items): "direct" straight to PostgreSQL with cached, generically planned
# statements (DB_POOLER=off, the default); "unnamed" straight to PostgreSQL
# in the pooler-safe mode (DB_POOLER=transaction: every statement parsed,
# bound and run unnamed), its database set to plan generically as a
# pooler's connect_query would; "pgbouncer" through Debian's pgbouncer in
# pool_mode = transaction (default_pool_size 5) with the shipped
# configuration's connect_query. In each round wrk runs an
# authenticated GET /api/v1/items (a page of 20) and POST /api/v1/items (a
# write) against the three, the order turned every round. Prints each
# figure and its ratio to "direct": the mean over the rounds and the median
# of the rounds' own ratios.
#
#   ./scripts/pooler-cost.sh          # ROUNDS=6 DURATION=5 by default
#
# Bounded: DURATION seconds a run, loopback only. Needs wrk, psql and
# pgbouncer (apt-get install wrk pgbouncer); pgbouncer drops root for the
# postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fixture.sh
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-6}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18289}
ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

for tool in wrk psql pgbouncer; do command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }; done
./scripts/ensure-postgres.sh
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for v in direct unnamed pgbouncer; do psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS pooler_${v}_$$ WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -o "$work/server" .
pg_host=$(echo "$ADMIN_URL" | sed -E 's|.*@([^:/]+):?([0-9]*)/.*|\1|')
pg_port=$(echo "$ADMIN_URL" | sed -E 's|.*@[^:/]+:([0-9]+)/.*|\1|')
pgb_port=$((PORT + 10))
cat >"$work/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=${pg_port:-5432} connect_query='SET plan_cache_mode = force_generic_plan'
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
default_pool_size = 5
max_client_conn = 500
logfile =
pidfile =
INI
echo '"postgres" ""' >"$work/userlist.txt"
chmod 644 "$work/pgbouncer.ini" "$work/userlist.txt"
user=()
[ "$(id -u)" -eq 0 ] && user=(-u postgres)
pgbouncer "${user[@]}" "$work/pgbouncer.ini" >"$work/pgbouncer.log" 2>&1 &
pids+=($!)

# start NAME PORT DB_POOLER VIA: the server NAME on a fresh database,
# reached at VIA (a host:port), migrating straight to PostgreSQL.
start() {
  local db="pooler_${1}_$$" base="http://127.0.0.1:$2" token
  psql -q "$ADMIN_URL" -c "CREATE DATABASE $db"
  [ "$1" = unnamed ] && psql -q "$ADMIN_URL" -c "ALTER DATABASE $db SET plan_cache_mode = force_generic_plan"
  DATABASE_URL="postgres://postgres@$4/$db?sslmode=disable" MIGRATION_DATABASE_URL="${ADMIN_URL%/*}/$db?sslmode=disable" \
    DB_POOLER=$3 PORT=$2 RATE_LIMIT_ENABLED=false LOG_LEVEL=warn METRICS_ADDR=off "$work/server" >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_healthy "$base" "$work/$1.log"
  token=$(fixture "$base")
  echo "$token" >"$work/$1.token"
}
start direct "$PORT" off "127.0.0.1:${pg_port:-5432}"
start unnamed $((PORT + 1)) transaction "127.0.0.1:${pg_port:-5432}"
start pgbouncer $((PORT + 2)) transaction "127.0.0.1:$pgb_port"
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"a write","description":"measured"}'
LUA

names=(direct unnamed pgbouncer)
echo "wrk: ${DURATION}s a run, ${CONNECTIONS} connections, 2 threads, ${ROUNDS} rounds"
for round in $(seq 1 "$ROUNDS"); do
  shift_by=$(((round - 1) % 3))
  order=("${names[@]:$shift_by}" "${names[@]:0:$shift_by}")
  declare -A list write
  for kind in list write; do
    for v in "${order[@]}"; do
      i=0
      for n in "${names[@]}"; do [ "$n" = "$v" ] && break; i=$((i + 1)); done
      port=$((PORT + i))
      if [ "$kind" = list ]; then
        list[$v]=$(wrk_rps "http://127.0.0.1:$port/api/v1/items" "$(cat "$work/$v.token")")
      else
        write[$v]=$(wrk_rps "http://127.0.0.1:$port/api/v1/items" "$(cat "$work/$v.token")" "$work/post.lua")
      fi
    done
  done
  echo "round $round: GET /items direct ${list[direct]} unnamed ${list[unnamed]} pgbouncer ${list[pgbouncer]}; POST /items direct ${write[direct]} unnamed ${write[unnamed]} pgbouncer ${write[pgbouncer]} req/s"
  echo "list ${list[direct]} ${list[unnamed]} ${list[pgbouncer]}" >>"$work/rounds"
  echo "write ${write[direct]} ${write[unnamed]} ${write[pgbouncer]}" >>"$work/rounds"
done
awk "$AWK_MEDIAN"'
{ k = $1; n[k]++; d[k] += $2; u[k] += $3; p[k] += $4; ru[k, n[k]] = $3 / $2; rp[k, n[k]] = $4 / $2 }
END {
  split("list write", names, " ")
  for (i = 1; i <= 2; i++) {
    k = names[i]; m = n[k]
    for (j = 1; j <= m; j++) { a[j] = ru[k, j]; b[j] = rp[k, j] }
    printf "%-6s direct %7.0f  unnamed %7.0f (%.3f, median %.3f)  pgbouncer %7.0f (%.3f, median %.3f) req/s\n", \
      k, d[k] / m, u[k] / m, u[k] / d[k], median(a, m), p[k] / m, p[k] / d[k], median(b, m)
  }
}' "$work/rounds"
