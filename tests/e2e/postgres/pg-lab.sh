#!/bin/bash
# pg-lab.sh - a private PostgreSQL server for the accounting tests (Debian 12's postgresql package, 15): its own data
# directory, port and unix socket, started and stopped by pid, so it never touches a site's server or the OAR lab's.
# Needs root (runs the server as the postgres user). Idempotent.
#
#   pg-lab.sh start    install (apt, first time only), initdb, start; create role alumet (the writer, password in a
#                      0600 root file), database alumet, and the report's read-only role alumet_report (password in a
#                      0640 root:alumet file; SELECT only, as README's "the report's read-only role" tells admins).
#                      Writes $PG_LAB/env.sh (ALUMET_TEST_PG_URL, ALUMET_TEST_PG_PASSWORD_FILE, ALUMET_TEST_PG_REPORT_*).
#   pg-lab.sh stop [--purge]   stop the server started here (pid file only); --purge deletes its data.
#   pg-lab.sh status   exit 0 when the server answers.
# Knobs: PG_LAB [/var/lib/alumet-hpc-e2e/postgres], PG_PORT [55432]
set -euo pipefail
PG_LAB=${PG_LAB:-/var/lib/alumet-hpc-e2e/postgres}
PG_PORT=${PG_PORT:-55432}
export DEBIAN_FRONTEND=noninteractive
log() { echo "[pg-lab] $*"; }
die() { echo "[pg-lab] ERROR: $*" >&2; exit 1; }
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() { runuser -u postgres -- "$@"; }
alive() { local p; p=$(head -1 "$PG_LAB/data/postmaster.pid" 2>/dev/null) || return 1; [[ "$p" =~ ^[0-9]+$ ]] && [ -r /proc/$p/stat ] \
  && [ "$(awk '{print $3}' /proc/$p/stat)" != Z ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = postgres ]; }

start() {
  [ "$(id -u)" = 0 ] || die "needs root"
  if [ -z "$(pgbin)" ]; then
    log "installing postgresql"
    for _ in 1 2 3; do apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 && break; sleep 5; done
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 || die "apt-get install postgresql failed"
  fi
  local B; B=$(pgbin)
  mkdir -p "$PG_LAB"/{run,log}; chown postgres:postgres "$PG_LAB" "$PG_LAB"/run "$PG_LAB"/log; chmod 755 "$PG_LAB" "$PG_LAB"/run
  if [ ! -s "$PG_LAB/data/PG_VERSION" ]; then
    as_pg "$B/initdb" -D "$PG_LAB/data" -A trust -U postgres >"$PG_LAB/log/initdb.log" 2>&1 || { tail -5 "$PG_LAB/log/initdb.log"; die "initdb failed"; }
    # password authentication for the alumet role over the socket and TCP, as a cluster would (trust for postgres only)
    cat > "$PG_LAB/data/pg_hba.conf" <<HBA
local all postgres trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
HBA
    log "initdb in $PG_LAB/data"
  fi
  if ! alive; then
    as_pg "$B/pg_ctl" -D "$PG_LAB/data" -l "$PG_LAB/log/postgres.log" -w -t 30 \
      -o "-p $PG_PORT -k $PG_LAB/run -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null \
      || { tail -20 "$PG_LAB/log/postgres.log"; die "the server did not start"; }
    log "server started (pid $(head -1 "$PG_LAB/data/postmaster.pid"), port $PG_PORT, socket $PG_LAB/run)"
  fi
  local PW="$PG_LAB/alumet.password"
  if [ ! -s "$PW" ]; then (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$PW"); fi
  chmod 600 "$PW"
  local psql=("$B/psql" -h "$PG_LAB/run" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$(as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'alumet'")" != 1 ]; then
    as_pg "${psql[@]}" -d postgres -c "CREATE ROLE alumet LOGIN PASSWORD '$(cat "$PW")'"
  else
    as_pg "${psql[@]}" -d postgres -c "ALTER ROLE alumet PASSWORD '$(cat "$PW")'"
  fi
  [ "$(as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'alumet'")" = 1 ] \
    || as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE alumet OWNER alumet"
  # The report's read-only role: its password is readable by root and the group alumet only (alumet-report is setgid
  # alumet), the writer's stays root-only. The grants are README's (PostgreSQL: the report's read-only role); the
  # default privileges also cover the schemas and tables the writer creates later (migrations, the tests' schemas).
  getent group alumet >/dev/null || groupadd --system alumet
  local RPW="$PG_LAB/report.password"
  if [ ! -s "$RPW" ]; then (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$RPW"); fi
  chown root:alumet "$RPW"; chmod 640 "$RPW"
  if [ "$(as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'alumet_report'")" != 1 ]; then
    as_pg "${psql[@]}" -d postgres -c "CREATE ROLE alumet_report LOGIN PASSWORD '$(cat "$RPW")'"
  else
    as_pg "${psql[@]}" -d postgres -c "ALTER ROLE alumet_report PASSWORD '$(cat "$RPW")'"
  fi
  as_pg "${psql[@]}" -d alumet <<'SQL'
GRANT CONNECT ON DATABASE alumet TO alumet_report;
GRANT USAGE ON SCHEMA public TO alumet_report;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO alumet_report;
ALTER DEFAULT PRIVILEGES FOR ROLE alumet GRANT SELECT ON TABLES TO alumet_report;
ALTER DEFAULT PRIVILEGES FOR ROLE alumet GRANT USAGE ON SCHEMAS TO alumet_report;
SQL
  cat > "$PG_LAB/env.sh" <<ENV
export ALUMET_TEST_PG_URL='postgresql://alumet@127.0.0.1:$PG_PORT/alumet'
export ALUMET_TEST_PG_SOCKET_URL='postgresql://alumet@/alumet?host=$PG_LAB/run&port=$PG_PORT'
export ALUMET_TEST_PG_PASSWORD_FILE='$PW'
export ALUMET_TEST_PG_REPORT_URL='postgresql://alumet_report@127.0.0.1:$PG_PORT/alumet'
export ALUMET_TEST_PG_REPORT_PASSWORD_FILE='$RPW'
export ALUMET_TEST_PG_LAB='$PG_LAB'
ENV
  log "ready: source $PG_LAB/env.sh"
}

stop() {
  local B; B=$(pgbin)
  if alive; then as_pg "$B/pg_ctl" -D "$PG_LAB/data" -m fast -w -t 30 stop >/dev/null && log "server stopped"; fi
  if [ "${1:-}" = --purge ]; then rm -rf "$PG_LAB"; log "purged $PG_LAB"; fi
}

status() { alive && runuser -u postgres -- "$(pgbin)/pg_isready" -q -h "$PG_LAB/run" -p "$PG_PORT"; }

case "${1:-}" in
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  status) status ;;
  *) echo "usage: $0 start|stop [--purge]|status" >&2; exit 2 ;;
esac
