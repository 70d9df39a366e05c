#!/usr/bin/env bash
# make run: hearth-central on SQLite plus an edge hearthd forwarding to it, ready for phones.
# State lives in $1 (default .run/); a home and a child are created on the
# first run and reused after. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath "${1:-.run}")
mkdir -p "$dir/edge"
db="sqlite://$dir/central.db"

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

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
bin/hearth-central serve --config "" --db "$db" --listen :8080 --admin-listen 127.0.0.1:8081 &
pids+=($!)
# The edge forwards to central; its roster of children comes from central.
bin/hearthd --config "" --data-dir "$dir/edge" --listen :8000 --admin-listen 127.0.0.1:8001 \
  --central-url http://127.0.0.1:8080 --central-token-file "$dir/home-token" &
pids+=($!)
sleep 1
cat <<MSG

hearth is running (Ctrl-C stops it):
  edge (phones at home):   ws://<this host>:8000/ws/ingest/$child/   status http://127.0.0.1:8001/status
  central (phones away):   ws://<this host>:8080/ws/ingest/$child/   metrics http://127.0.0.1:8081/metrics
  the edge forwards its outbox to central; see it arrive: bin/hearth-central stats --config "" --db $db
  the home's token is in $dir/home-token, the child's hash in $dir/child
  try: bin/hearth-load --url http://127.0.0.1:8000 --children $child --phones 5 --duration 5s

MSG
wait -n "${pids[@]}"
