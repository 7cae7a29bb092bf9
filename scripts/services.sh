# Sourced by scripts/test: private, throwaway PostgreSQL, Redis and RabbitMQ servers for one
# test run, each in a temporary folder on free ports, stopped and deleted when the run ends.
#
# A server whose URL is already set (TENURE_TEST_POSTGRES_URL, TENURE_TEST_REDIS_URL,
# TENURE_TEST_RABBITMQ_URL) is used as it is and not started. A server that is missing is
# installed from Debian's packages when we are root and apt-get exists. A server that cannot be
# installed or started fails the run (exit status 1): nothing is skipped.
#
# Usage: source scripts/services.sh; services_start   (sets the three URLs, traps EXIT)

services_dir=""
services_rabbit_env=()
services_pids=()
services_rabbit_node=""

services_fail() {
  echo "scripts/services.sh: $*" >&2
  exit 1
}

services_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits up to $2 seconds for `$3...` to succeed while process $1 (the server) runs.
services_wait() {
  local pid=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

services_install() {  # Debian packages for what is missing, when we may
  local missing=("$@")
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    services_fail "not installed: ${missing[*]} (install them, or set TENURE_TEST_*_URL to existing servers)"
  fi
  echo "scripts/services.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  # policy-rc.d exit 101: the packages' own system-wide servers are not started on install.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
  fi
  local status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
  [ -z "$made_policy" ] || rm -f "$policy"
  [ "$status" = 0 ] || services_fail "apt-get install ${missing[*]} failed"
}

services_pg_bin() {  # the newest installed PostgreSQL's program $1
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -t/ -k5 -n | tail -n 1)
  [ -n "$found" ] && echo "$found"
}

services_as_postgres() {  # initdb refuses root: PostgreSQL's programs run as `postgres` then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

services_start_postgres() {
  local dir="$services_dir/postgres" port
  port=$(services_free_port)
  mkdir -p "$dir"
  [ "$(id -u)" != 0 ] || chown postgres: "$dir"
  services_as_postgres "$(services_pg_bin initdb)" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --no-sync --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; services_fail "initdb failed"; }
  services_as_postgres "$(services_pg_bin pg_ctl)" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
    || { tail -n 20 "$dir/postgres.log" >&2; services_fail "PostgreSQL did not start"; }
  services_pg_port=$port
  services_as_postgres "$(services_pg_bin createdb)" -h 127.0.0.1 -p "$port" -U postgres test \
    || services_fail "could not create the database test"
  export TENURE_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/test"
}

services_start_redis() {
  local dir="$services_dir/redis" port
  port=$(services_free_port)
  mkdir -p "$dir"
  setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
  services_pids+=($!)
  services_wait "$!" 30 redis-cli -p "$port" ping \
    || { tail -n 20 "$dir/redis.log" >&2; services_fail "Redis did not start"; }
  export TENURE_TEST_REDIS_URL="redis://127.0.0.1:$port/15"
}

services_rabbit_bin() {  # Debian's /usr/sbin wrappers switch to the `rabbitmq` user and its HOME
  if [ -x "/usr/lib/rabbitmq/bin/$1" ]; then echo "/usr/lib/rabbitmq/bin/$1"; else command -v "$1"; fi
}

services_start_rabbitmq() {
  local dir="$services_dir/rabbitmq"
  mkdir -p "$dir/mnesia" "$dir/log"
  services_rabbit_port=$(services_free_port)
  services_rabbit_dist_port=$(services_free_port)
  services_rabbit_node="tenure-test-$$@localhost"
  # The machine's /etc/rabbitmq files name the shared node and its port: these replace them.
  printf 'ERL_EPMD_ADDRESS=127.0.0.1\n' > "$dir/rabbitmq-env.conf"
  printf 'listeners.tcp.local = 127.0.0.1:%s\nloopback_users.guest = true\n' "$services_rabbit_port" \
    > "$dir/rabbitmq.conf"
  printf '[].\n' > "$dir/enabled_plugins"
  # A cookie of its own (rabbitmqctl reads it from HOME): nothing is written to the real HOME.
  head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/.erlang.cookie"
  chmod 400 "$dir/.erlang.cookie"
  # RabbitMQ's programs, pointed at the private node and its own files only.
  services_rabbit_env=(HOME="$dir" RABBITMQ_NODENAME="$services_rabbit_node"
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_MNESIA_BASE="$dir/mnesia"
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_NODE_PORT="$services_rabbit_port"
    RABBITMQ_DIST_PORT="$services_rabbit_dist_port" ERL_CRASH_DUMP="$dir/erl_crash.dump")
  env "${services_rabbit_env[@]}" setsid "$(services_rabbit_bin rabbitmq-server)" >"$dir/server.log" 2>&1 &
  services_rabbit_pid=$!
  services_pids+=($!)
}

services_wait_rabbitmq() {
  local dir="$services_dir/rabbitmq"
  # The node registers a few seconds after it starts: until then await_startup fails at once.
  services_wait "$services_rabbit_pid" 180 env "${services_rabbit_env[@]}" "$(services_rabbit_bin rabbitmqctl)" --timeout 20 await_startup \
    || { tail -n 30 "$dir/server.log" "$dir"/log/*.log >&2; services_fail "RabbitMQ did not start"; }
  export TENURE_TEST_RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$services_rabbit_port/%2F"
}

services_stop() {
  set +e
  if [ -n "$services_rabbit_node" ]; then
    env "${services_rabbit_env[@]}" timeout 30 "$(services_rabbit_bin rabbitmqctl)" shutdown >/dev/null 2>&1
  fi
  if [ -n "${services_pg_port:-}" ]; then
    services_as_postgres "$(services_pg_bin pg_ctl)" stop -D "$services_dir/postgres/data" -m immediate \
      -w -t 30 >/dev/null 2>&1
  fi
  local pid
  for pid in "${services_pids[@]}"; do  # each server runs in a process group of its own
    kill -- "-$pid" 2>/dev/null
  done
  for pid in "${services_pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
  [ -z "$services_dir" ] || rm -rf "$services_dir"
}

services_start() {
  local missing=()
  if [ -z "${TENURE_TEST_POSTGRES_URL:-}" ] && [ -z "$(services_pg_bin initdb)" ]; then missing+=(postgresql); fi
  if [ -z "${TENURE_TEST_REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then missing+=(redis-server); fi
  if [ -z "${TENURE_TEST_RABBITMQ_URL:-}" ] && ! command -v rabbitmq-server >/dev/null; then missing+=(rabbitmq-server); fi
  # The e2e tests start private Redis and PostgreSQL servers of their own: they need them installed.
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -n "$(services_pg_bin initdb)" ] || missing+=(postgresql)
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | grep .)
  services_install "${missing[@]}"

  services_dir=$(mktemp -d /tmp/tenure-services.XXXXXX)
  chmod 755 "$services_dir"
  trap services_stop EXIT
  trap 'exit 130' INT TERM
  local rabbit=""
  if [ -z "${TENURE_TEST_RABBITMQ_URL:-}" ]; then  # the slowest to boot: it starts first
    rabbit=1
    services_start_rabbitmq
  fi
  [ -n "${TENURE_TEST_POSTGRES_URL:-}" ] || services_start_postgres
  [ -n "${TENURE_TEST_REDIS_URL:-}" ] || services_start_redis
  [ -z "$rabbit" ] || services_wait_rabbitmq
  echo "scripts/services.sh: PostgreSQL $TENURE_TEST_POSTGRES_URL, Redis $TENURE_TEST_REDIS_URL," \
       "RabbitMQ $TENURE_TEST_RABBITMQ_URL" >&2
}
