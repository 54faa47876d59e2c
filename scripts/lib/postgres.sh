#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package: never the
# system service. The one helper both the Rust store tests and the e2e fixtures use.
#
#   postgres.sh serve PORT       initdb into a new directory DIR under $TMPDIR, start on
#                                127.0.0.1:PORT with its unix socket in DIR, print "ready DIR",
#                                then wait until stdin closes (the test process ended, however
#                                it ended), stop it and delete DIR.
#   postgres.sh start DIR PORT   start an initialized DIR again (after `stop`).
#   postgres.sh stop DIR         stop it at once (fast shutdown).
#   postgres.sh createdb DIR NAME  create database NAME on it (over the unix socket).
#   postgres.sh sql URL STATEMENT  run one statement on the database at URL.
#   postgres.sh dump URL           pg_dump of the database at URL.
#
# The superuser is `mlgate` with the password `mlgate`; TCP needs the password (scram), the
# unix socket does not. PostgreSQL refuses to run as root: as root, the server runs as the
# package's `postgres` user. Exits 3 when PostgreSQL is not installed
# (scripts/lib/postgres-deps.sh).
set -euo pipefail

bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  dir="$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"
  [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  echo "postgres.sh: PostgreSQL is not installed (run scripts/lib/postgres-deps.sh)" >&2
  exit 3
}

# as_owner CMD...: runs CMD as the user that owns the server's files.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir="$1" port="$2"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
    start >/dev/null
}

stop() {
  as_owner "$bin/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

bin="$(bindir)"
case "${1:-}" in
  serve)
    port="$2"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/mlgate-pg.XXXXXX")"
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    echo mlgate > "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U mlgate --pwfile="$dir/pwfile" -A trust \
      --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    start "$dir" "$port" || { cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1; }
    echo "ready $dir"
    cat >/dev/null || true
    stop "$dir"
    rm -rf "$dir"
    ;;
  start) start "$2" "$3" ;;
  stop) stop "$2" ;;
  createdb)
    port="$(sed -n 4p "$2/data/postmaster.pid")"
    as_owner "$bin/createdb" -h "$2" -p "$port" -U mlgate "$3"
    ;;
  sql) "$bin/psql" "$2" -v ON_ERROR_STOP=1 -qAt -c "$3" ;;
  dump) "$bin/pg_dump" "$2" ;;
  *) echo "usage: postgres.sh serve PORT | start DIR PORT | stop DIR | createdb DIR NAME | sql URL STATEMENT | dump URL" >&2; exit 2 ;;
esac
