#!/usr/bin/env bash
# Installs what the OIDC end-to-end tests need besides Python and Rust (idempotent, no prompts):
#   * Debian's `chromium` (apt) when no browser is found at $CHROMIUM (default /usr/bin/chromium);
#   * `npm ci` in tests/idp (node-oidc-provider, the local OpenID provider) and tests/browser
#     (playwright-core, which drives the system chromium; no browser download).
# Exits non-zero when Node/npm are missing or an install fails. Everything stays on this machine:
# the tests run the provider and the browser on 127.0.0.1 only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "browser-deps: installing chromium with apt-get"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  else
    echo "browser-deps: no chromium at $chromium and no apt-get; set CHROMIUM to a Chromium binary" >&2
    exit 1
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "browser-deps: npm (Node.js >= 20) is required" >&2
  exit 1
fi

for dir in tests/idp tests/browser; do
  if [ -f "$root/$dir/package-lock.json" ]; then
    (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$root/$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
done
echo "browser-deps: ready (chromium: $chromium)"
