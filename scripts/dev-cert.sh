#!/usr/bin/env bash
# A self-signed certificate for nginx/certs, for local use of the compose
# stack. Production mounts real certificates there (tls.crt, tls.key).
set -euo pipefail
cd "$(dirname "$0")/../nginx/certs"
if [ -f tls.crt ] && [ -f tls.key ]; then
  echo "nginx/certs/tls.crt exists; remove it first to make a new one" >&2
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=${1:-localhost}" \
  -keyout tls.key -out tls.crt 2>/dev/null
chmod 644 tls.key # nginx's unprivileged user reads it through the read-only mount
echo "wrote nginx/certs/tls.crt and tls.key for ${1:-localhost}, valid 30 days"
