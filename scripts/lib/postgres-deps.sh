#!/usr/bin/env bash
# Installs Debian's `postgresql` package when no PostgreSQL server binaries are found
# (idempotent, no prompts). The tests run their own throwaway servers (scripts/lib/postgres.sh);
# the package's system service is not used.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "postgres-deps: ready ($(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "postgres-deps: no PostgreSQL under /usr/lib/postgresql and no apt-get" >&2
  exit 1
fi
echo "postgres-deps: installing postgresql with apt-get"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null
echo "postgres-deps: ready"
