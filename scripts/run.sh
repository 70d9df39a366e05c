#!/usr/bin/env bash
# make run: hearth-central on SQLite plus an edge hearthd forwarding to it, ready for phones.
# State lives in $1 (default .run/); a home and a child are created on the
# first run and reused after. Ctrl-C stops both.
#
# Ports come from the environment (defaults in brackets):
#   HEARTH_EDGE_PORT [8000]      phones at home          HEARTH_EDGE_ADMIN_PORT [8001]
#   HEARTH_CENTRAL_PORT [8080]   phones away, edges      HEARTH_CENTRAL_ADMIN_PORT [8081]
#   HEARTH_PAGE_PORT [none]      the household page, off unless set (its password
#                                is made on first use in the state directory)
# The banner is printed only once both servers answer /readyz.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath "${1:-.run}")
mkdir -p "$dir/edge"
db="sqlite://$dir/central.db"

edge_port=${HEARTH_EDGE_PORT:-8000}
edge_admin=${HEARTH_EDGE_ADMIN_PORT:-8001}
central_port=${HEARTH_CENTRAL_PORT:-8080}
central_admin=${HEARTH_CENTRAL_ADMIN_PORT:-8081}
page_port=${HEARTH_PAGE_PORT:-}
ready_timeout=${HEARTH_RUN_READY_TIMEOUT:-30}

# port_busy PORT: true when something on this machine already listens on PORT.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for spec in "HEARTH_EDGE_PORT=$edge_port" "HEARTH_EDGE_ADMIN_PORT=$edge_admin" \
  "HEARTH_CENTRAL_PORT=$central_port" "HEARTH_CENTRAL_ADMIN_PORT=$central_admin" \
  ${page_port:+"HEARTH_PAGE_PORT=$page_port"}; do
  if port_busy "${spec#*=}"; then
    echo "make run: port ${spec#*=} is already in use (set ${spec%%=*} to another port)" >&2
    exit 1
  fi
done

bin/hearth-central migrate --config "" --db "$db"
if [ ! -s "$dir/child" ]; then
  home=$(bin/hearth-central home add --config "" --db "$db" --json "my home")
  home_id=$(printf '%s' "$home" | sed -E 's/.*"home_id":"([^"]+)".*/\1/')
  (umask 077 && printf '%s' "$home" | sed -E 's/.*"token":"([^"]+)".*/\1/' >"$dir/home-token")
  bin/hearth-central child add --config "" --db "$db" --json --home "$home_id" |
    sed -E 's/.*"child_hash":"([^"]+)".*/\1/' >"$dir/child"
fi
child=$(cat "$dir/child")
chmod 600 "$dir/home-token" # hearthd refuses a token file every user may read

page_args=() page_line=""
if [ -n "$page_port" ]; then
  [ -s "$dir/page-password" ] || (umask 077 && tr -dc 'a-km-z2-9' </dev/urandom | head -c 16 >"$dir/page-password")
  page_args=(--page-listen ":$page_port" --page-password-file "$dir/page-password")
  page_line="  household page:          http://<this host>:$page_port/   user hearth, password $(cat "$dir/page-password")"
fi

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
bin/hearth-central serve --config "" --db "$db" --listen ":$central_port" \
  --admin-listen "127.0.0.1:$central_admin" &
pids+=($!)
# The edge forwards to central; its roster of children comes from central.
bin/hearthd --config "" --data-dir "$dir/edge" --listen ":$edge_port" \
  --admin-listen "127.0.0.1:$edge_admin" \
  --central-url "http://127.0.0.1:$central_port" --central-token-file "$dir/home-token" "${page_args[@]}" &
pids+=($!)

# wait_ready NAME PID PORT: wait until the server answers /readyz on its
# admin port; fail, naming it, when it exits or does not get ready in time.
wait_ready() {
  local name=$1 pid=$2 port=$3 i
  for ((i = 0; i < ready_timeout * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "make run: $name exited before it was ready (see its log above)" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
      head -n1 <&3 | grep -q ' 200 ') 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "make run: $name did not answer /readyz on 127.0.0.1:$port within ${ready_timeout}s" >&2
  return 1
}
wait_ready hearth-central "${pids[0]}" "$central_admin"
wait_ready hearthd "${pids[1]}" "$edge_admin"

cat <<MSG

hearth is running (Ctrl-C stops it):
  edge (phones at home):   ws://<this host>:$edge_port/ws/ingest/$child/   status http://127.0.0.1:$edge_admin/status
  central (phones away):   ws://<this host>:$central_port/ws/ingest/$child/   metrics http://127.0.0.1:$central_admin/metrics
${page_line:+$page_line
}  the edge forwards its outbox to central; see it arrive: bin/hearth-central stats --config "" --db $db
  the home's token is in $dir/home-token, the child's hash in $dir/child
  try: bin/hearth-load --url http://127.0.0.1:$edge_port --children $child --phones 5 --duration 5s

MSG
wait -n "${pids[@]}"
