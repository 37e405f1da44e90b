# Sourced by load.sh, compare.sh, pooler-cost.sh and safewrites-cost.sh:
# waiting for a server, the account and items they measure, one wrk run
# (wrk_rps: DURATION and CONNECTIONS are the caller's), and the median their
# awk summaries take of the rounds' own ratios (AWK_MEDIAN, put before a
# program: awk "$AWK_MEDIAN"'...').
# fixture BASE: registers the measuring account on the server at BASE,
# signs in, creates 50 items, and prints the bearer token; returns 1, saying
# which step failed, when any does (a command substitution does not stop at
# the first error under set -e). The password must pass the new-password
# policy (TestScriptFixturesPassThePolicy).
fixture() {
  local base=$1 token i
  curl -fsS -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"load-test-password"}' >/dev/null ||
    { echo "fixture: register failed" >&2; return 1; }
  token=$(curl -fsS -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"load-test-password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/') &&
    [ ${#token} -eq 43 ] || { echo "fixture: login failed" >&2; return 1; }
  for i in $(seq 1 50); do
    curl -fsS -X POST "$base/api/v1/items" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"title\":\"item $i\",\"description\":\"a description\"}" >/dev/null ||
      { echo "fixture: item $i failed" >&2; return 1; }
  done
  echo "$token"
}

# wait_healthy BASE LOG: waits up to 10 s for the server at BASE to answer
# /api/v1/health; when it does not, prints its LOG and exits.
wait_healthy() {
  local _
  for _ in $(seq 1 100); do
    curl -fs "$1/api/v1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server at $1 did not start:" >&2
  cat "$2" >&2
  exit 1
}

# wrk_rps URL TOKEN [SCRIPT]: requests/s of one run, refusing a run with errors.
wrk_rps() {
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Authorization: Bearer $2" ${3:+-s "$3"} "$1")
  if echo "$out" | grep -q 'Non-2xx'; then echo "non-2xx answers from $1:" >&2; echo "$out" >&2; exit 1; fi
  echo "$out" | awk '/Requests\/sec/ {print $2}'
}

# AWK_MEDIAN: median(a, n) of a[1..n] (sorts a in place).
AWK_MEDIAN='
function median(a, n,    i, j, t) {
  for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
  return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}'
