#!/usr/bin/env bash
# A self-signed certificate for nginx/certs, for local use of the compose
# stack. Production mounts real certificates there (tls.crt, tls.key).
# Usage: scripts/dev-cert.sh [hostname]   (CERT_DIR overrides nginx/certs)
# Browsers ignore the CN and match only the subjectAltName, so the name (and
# localhost, 127.0.0.1, ::1) go there; trust tls.crt once and Chromium accepts it.
set -euo pipefail
name=${1:-localhost}
dir=${CERT_DIR:-"$(dirname "$0")/../nginx/certs"}
mkdir -p "$dir"
cd "$dir"
if [ -f tls.crt ] && [ -f tls.key ]; then
  echo "$dir/tls.crt exists; remove it first to make a new one" >&2
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout tls.key -out tls.crt 2>/dev/null
chmod 644 tls.key # nginx's unprivileged user reads it through the read-only mount
echo "wrote $dir/tls.crt and tls.key for $name, valid 30 days"
