#!/usr/bin/env bash
# The Mozilla HTTP Observatory's grade for the edge, page and API: the real
# service behind the project's nginx/nginx.conf on 127.0.0.1 ports 80 and 443
# (the scanner checks the http -> https redirect on the standard ports), with
# a certificate from a local CA that Node trusts through NODE_EXTRA_CA_CERTS.
# Exits 0 only when every path grades A+.
#
# Needs root (ports 80 and 443), nginx, openssl, node and npm, and the local
# PostgreSQL. Not part of `make test`, which must not need those ports.
# Usage: scripts/observatory.sh [PATH ...]   (default: / /api/v1/health)
set -euo pipefail
cd "$(dirname "$0")/.."
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(/ /api/v1/health)

# The scanner, installed once. Its install script fetches the HSTS preload
# and TLD lists from the internet: skip it and give it empty ones.
cache=${OBSERVATORY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backend-observatory}
pkg="$cache/node_modules/@mdn/mdn-http-observatory"
if [ ! -d "$pkg" ]; then
  mkdir -p "$cache"
  (cd "$cache" && npm init -y >/dev/null && npm install --ignore-scripts --no-audit --no-fund @mdn/mdn-http-observatory@1.4.8 >/dev/null)
fi
[ -f "$pkg/conf/hsts-preload.json" ] || echo '{}' >"$pkg/conf/hsts-preload.json"
[ -f "$pkg/conf/tld-list.json" ] || echo '[]' >"$pkg/conf/tld-list.json"

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  psql -q -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS observatory_scan WITH (FORCE)' >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The service on a scratch database (development mode: production would
# refuse a local database without a password; the headers are the same).
./scripts/ensure-postgres.sh
psql -q -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS observatory_scan WITH (FORCE)' -c 'CREATE DATABASE observatory_scan' >/dev/null
CGO_ENABLED=0 go build -o "$work/server" .
APP_ENV=development HOST=127.0.0.1 PORT=18080 METRICS_ADDR=off SHUTDOWN_DELAY=0s TRUSTED_PROXIES=127.0.0.1/32 DOCS_ENABLED=false \
  DATABASE_URL='postgres://postgres@127.0.0.1:5432/observatory_scan?sslmode=disable' \
  "$work/server" >"$work/api.log" 2>&1 &
pids+=($!)

# nginx with the project's configuration, only the upstream and the listen
# addresses changed; a local CA and a certificate for localhost.
mkdir -p "$work/nginx/certs" "$work/nginx/logs"
cp -r nginx/snippets nginx/html "$work/nginx/"
cp /etc/nginx/mime.types "$work/nginx/"
sed -e 's/server api:8080[^;]*;/server 127.0.0.1:18080;/' \
    -e 's/listen 8080;/listen 127.0.0.1:80;/' \
    -e 's/listen 8443 ssl http2;/listen 127.0.0.1:443 ssl http2;/' \
    -e "s|pid /tmp/nginx.pid;|pid $work/nginx/nginx.pid;|" \
    nginx/nginx.conf >"$work/nginx/nginx.conf"
(
  cd "$work/nginx/certs"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=Observatory scan CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout tls.key -out tls.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >san.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out tls.crt 2>/dev/null
)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
pids+=($!)

up=""
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null http://127.0.0.1:18080/api/v1/health 2>/dev/null && curl -fsS -o /dev/null http://127.0.0.1/nginx-health 2>/dev/null && up=1 && break
  sleep 0.2
done
if [ -z "$up" ]; then
  echo "the service or nginx did not start:" >&2
  tail -5 "$work/api.log" "$work/nginx.log" >&2
  exit 1
fi

status=0
for p in "${paths[@]}"; do
  NODE_EXTRA_CA_CERTS="$work/nginx/certs/ca.crt" node scripts/observatory-scan.mjs "$pkg" localhost "$p" || status=1
done
exit $status
