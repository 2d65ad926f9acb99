# Sourced by the scripts: start Redis and PostgreSQL on 127.0.0.1 when they are not answering.
# A developer machine or CI image may already run them; then this does nothing.

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    return 0
  fi
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting redis-server on 127.0.0.1:6379 (no persistence)"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      >/dev/null 2>&1 || true
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  fi
  echo "warning: Redis is not answering on 127.0.0.1:6379; tests that need it will fail" >&2
}

ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    return 0
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version (pg_ctlcluster)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 0.1; done
  fi
  echo "warning: PostgreSQL is not answering on 127.0.0.1:5432; tests that need it will fail" >&2
}

ensure_services() {
  ensure_redis
  ensure_postgres
}
