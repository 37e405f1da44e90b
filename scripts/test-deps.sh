#!/usr/bin/env bash
# Installs what the end-to-end tests drive from Debian's packages when
# missing (nginx, chromium and firefox-esr, docker-compose, openssl,
# oathtool as an independent TOTP, zbarimg from zbar-tools as an
# independent QR decoder; promtool from prometheus, a real SMTP server from
# python3-aiosmtpd and a transaction pooler from pgbouncer, all three
# without recommends, so no daemon of theirs starts), playwright-core,
# puppeteer-core and axe-core from npm, and starts PostgreSQL.
set -euo pipefail
here=$(dirname "$0")
"$here/ensure-postgres.sh"

missing=()
{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || missing+=(nginx-light)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v oathtool >/dev/null 2>&1 || missing+=(oathtool)
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
bare=()
command -v promtool >/dev/null 2>&1 || bare+=(prometheus)
/usr/bin/python3 -c "import aiosmtpd" >/dev/null 2>&1 || bare+=(python3-aiosmtpd)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || bare+=(pgbouncer)
if [ $((${#missing[@]} + ${#bare[@]})) -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the end-to-end tests need: ${missing[*]} ${bare[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing ${missing[*]} ${bare[*]} ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq "${missing[@]}" >/dev/null
  [ ${#bare[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
fi

# playwright-core (it drives Debian's chromium) and puppeteer-core (Debian's
# firefox-esr, over WebDriver BiDi), neither downloading a browser, for the
# docs and frontend tests, and axe-core for the frontend's accessibility
# check, installed once into a cache outside the repository.
pw="${E2E_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backend-e2e}"
if [ ! -f "$pw/node_modules/playwright-core/index.mjs" ] || [ ! -f "$pw/node_modules/axe-core/axe.min.js" ] ||
  [ ! -f "$pw/node_modules/puppeteer-core/lib/puppeteer/puppeteer-core.js" ]; then
  command -v npm >/dev/null 2>&1 || { echo "the browser tests need node and npm" >&2; exit 1; }
  mkdir -p "$pw"
  [ -f "$pw/package.json" ] || (cd "$pw" && npm init -y >/dev/null)
  (cd "$pw" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund \
    playwright-core@1.65.1 puppeteer-core@25.19.0 axe-core@4.14.1 >/dev/null)
fi

