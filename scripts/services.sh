#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1. Start them if they are installed
# but stopped; if one is missing, say exactly what is missing and how to get it.
set -u
PG_HOST=${PGHOST:-127.0.0.1}
PG_PORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
status=0

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 0.5; done; return 1; }

if ! command -v pg_isready >/dev/null 2>&1; then
  echo "PostgreSQL client tools are missing. Install PostgreSQL: apt-get install postgresql postgresql-client" >&2
  status=1
elif ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    echo "PostgreSQL is installed but not running; starting it..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    wait_for pg_up || { echo "PostgreSQL did not start; see /var/log/postgresql/." >&2; status=1; }
  else
    echo "PostgreSQL is not answering on $PG_HOST:$PG_PORT and no local cluster was found." >&2
    echo "Install it (apt-get install postgresql) or set DATABASE_URL to a server you run." >&2
    status=1
  fi
fi

if ! command -v redis-cli >/dev/null 2>&1; then
  echo "Redis is missing. Install it: apt-get install redis-server" >&2
  status=1
elif ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is installed but not running; starting it..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    wait_for redis_up || { echo "Redis did not start; see /var/log/redis/ci.log." >&2; status=1; }
  else
    echo "Redis is not answering on 127.0.0.1:$REDIS_PORT and redis-server is not installed." >&2
    echo "Install it: apt-get install redis-server" >&2
    status=1
  fi
fi

[ $status -eq 0 ] && echo "PostgreSQL and Redis are up."
exit $status
