#!/usr/bin/env bash
# Sourced by scripts/test-all.sh: a throw-away PostgreSQL for the classifier suites, unless
# CLMAE_TEST_DATABASE_URL already names one. Installs Debian's `postgresql` when no server binaries are
# there (as root, with apt), creates a cluster in a temporary directory (run as the `postgres` user when
# we are root: initdb refuses root), starts it on a free port on 127.0.0.1 and exports its URL as
# CLMAE_TEST_DATABASE_URL. stop_test_postgres (also on EXIT) stops it and removes the directory.
# fsync=off: the cluster lives for one test run; the durability tests kill service processes, not it.

stop_test_postgres() {
  if [ -n "${CLMAE_TEST_PG_DIR:-}" ] && [ -d "$CLMAE_TEST_PG_DIR" ]; then
    $CLMAE_TEST_PG_AS "$CLMAE_TEST_PG_BIN/pg_ctl" -D "$CLMAE_TEST_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$CLMAE_TEST_PG_DIR"
  fi
}

start_test_postgres() {
  if [ -n "${CLMAE_TEST_DATABASE_URL:-}" ]; then
    echo "using CLMAE_TEST_DATABASE_URL from the environment"
    return 0
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Debian's postgresql (apt)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    else
      echo "PostgreSQL server binaries not found: install Debian's postgresql (or set CLMAE_TEST_DATABASE_URL)" >&2
      return 1
    fi
  fi
  CLMAE_TEST_PG_BIN=$bin
  CLMAE_TEST_PG_DIR=$(mktemp -d /tmp/clmae-pg-XXXXXX)
  CLMAE_TEST_PG_AS=""
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$CLMAE_TEST_PG_DIR"
    CLMAE_TEST_PG_AS="runuser -u postgres --"
  fi
  local port
  port=$(node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })")
  $CLMAE_TEST_PG_AS "$bin/initdb" -D "$CLMAE_TEST_PG_DIR/data" -A trust -U postgres -E UTF8 >"$CLMAE_TEST_PG_DIR/initdb.log" 2>&1 \
    || { cat "$CLMAE_TEST_PG_DIR/initdb.log" >&2; return 1; }
  $CLMAE_TEST_PG_AS "$bin/pg_ctl" -D "$CLMAE_TEST_PG_DIR/data" -l "$CLMAE_TEST_PG_DIR/server.log" -w \
    -o "-p $port -k $CLMAE_TEST_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
    || { cat "$CLMAE_TEST_PG_DIR/server.log" >&2; return 1; }
  export CLMAE_TEST_PG_BIN CLMAE_TEST_PG_DIR CLMAE_TEST_PG_AS
  export CLMAE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at 127.0.0.1:$port (cluster in $CLMAE_TEST_PG_DIR)"
}
