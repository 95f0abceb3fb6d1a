#!/usr/bin/env bash
# Starts (installing with apt-get if absent) what the full test suite needs on
# loopback: PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, and Debian's
# chromium for the browser tests. Then prints, or exports when sourced, the
# test variables. (The fault tests start private servers from the same
# packages' binaries: redis-server, and initdb/pg_ctl from
# /usr/lib/postgresql/*/bin, run as the postgres user under root.)
#
#   eval "$(scripts/test-services.sh)"     # in a developer's shell
#   source scripts/test-services.sh        # from .ci/run
#
# Needs root (or sudo) only for what is missing.
set -euo pipefail

log() { echo "test-services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    as_root apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

wait_for() { # wait_for SECONDS description command…
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$what did not come up within ${secs}s"; return 1
}

# PostgreSQL
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start >&2 || true
fi
wait_for 30 PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
pg_url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
if ! psql "$pg_url" -Atc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for a password on TCP: give the postgres role
  # one, used only by the tests on loopback.
  log "setting a password for the postgres role (loopback test server)"
  as_root su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >&2
  pg_url="postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
  psql "$pg_url" -Atc 'select 1' >/dev/null
fi

# Redis
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
fi
wait_for 15 Redis redis-cli -h 127.0.0.1 -p 6379 ping

# Chromium (Debian's package; tools that download their own browser cannot work here)
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

vars="export SESAME_TEST_POSTGRES_URL='$pg_url'
export SESAME_TEST_REDIS_URL='redis://127.0.0.1:6379/0'
export SESAME_TEST_CHROMIUM='$(command -v chromium)'"
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  eval "$vars"
  set +euo pipefail
else
  echo "$vars"
fi
