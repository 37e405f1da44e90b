#!/usr/bin/env bash
# The Go benchmarks, then the ratios that matter, each against a baseline
# measured in the same run (absolute numbers swing with the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-postgres.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count 1 . | tee "$out"
awk '
  /^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name); ns[name] = $3
                 for (i = 4; i <= NF; i++) {
                   if ($(i) == "req/s") rps[name] = $(i-1)
                   if ($(i) == "allocs/op") allocs[name] = $(i-1)
                 } }
  function ratio(label, a, b) { if (a != "" && b != "" && b > 0) printf "%-58s %6.2fx\n", label, a / b }
  END {
    print ""
    print "ratios (same run):"
    ratio("middleware chain time / bare handler time", ns["BenchmarkMiddlewareChain"], ns["BenchmarkBareHandler"])
    ratio("middleware chain per request, all cores / one core", ns["BenchmarkMiddlewareChainParallel"], ns["BenchmarkMiddlewareChain"])
    ratio("our log handler time / slog.NewJSONHandler time", ns["BenchmarkLogAccessLine"], ns["BenchmarkLogAccessLineStdlib"])
    ratio("HTTP item list req/s / naive 3-statement SQL req/s", rps["BenchmarkItemListHTTP"], rps["BenchmarkItemListNaiveSQL"])
    ratio("HTTP item list req/s / store (1 statement) req/s", rps["BenchmarkItemListHTTP"], rps["BenchmarkItemListSQL"])
    ratio("200,000 items, first page / 20 items, first page (>= 0.5)", rps["BenchmarkItemListDepth/BigFirst"], rps["BenchmarkItemListDepth/SmallFirst"])
    ratio("200,000 items, cursor 190,000 deep / 20 items (>= 0.5)", rps["BenchmarkItemListDepth/BigCursorDeep"], rps["BenchmarkItemListDepth/SmallFirst"])
    ratio("200,000 items, offset 9,980 / 20 items (>= 0.2)", rps["BenchmarkItemListDepth/BigOffset9980"], rps["BenchmarkItemListDepth/SmallFirst"])
    ratio("passkey sign-in time / password sign-in time (full PBKDF2)", ns["BenchmarkSignInPasskey"], ns["BenchmarkSignInPassword"])
    ratio("TOTP check, a wrong code / a right code (~1: constant)", ns["BenchmarkMatchTOTP/wrong"], ns["BenchmarkMatchTOTP/right"])
    printf "%-58s %6s ns, %s allocs\n", "our log handler, access line of ten attributes", ns["BenchmarkLogAccessLine"], allocs["BenchmarkLogAccessLine"]
    printf "%-58s %6s ns\n", "limiter check, 100k keys (memory store)", ns["BenchmarkAllowManyKeys"]
  }' "$out"
