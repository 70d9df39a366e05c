#!/usr/bin/env bash
# make bench: the Go benchmarks, then load scenarios against a real hearthd and
# against a build that acks without storing (the ceiling), side by side.
# Prints a table; copy the figures into bench/RESULTS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${BENCH_DURATION:-10s}
OUT=$(mktemp -d /tmp/hearth-bench.XXXXXX)
trap 'pkill -f "$OUT/" 2>/dev/null || true; rm -rf "$OUT"' EXIT

echo "== machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%F)"
echo "== Go benchmarks"
go test -run '^$' -bench . -benchtime "${BENCH_GOTIME:-2s}" ./outbox/ ./central/store/... 2>&1 | grep -E '^(Benchmark|ok|---|\s+.*skip)' | tee "$OUT/gobench" || true

# Issue 8: the GuardianAI schema on PostgreSQL, hearth's batch beside the
# seed's way (one update_or_create per row); and hearth's longest write
# transaction beside Django on SQLite (Django's busy timeout is 5 s).
python3 - "$OUT/gobench" <<'PY'
import re, sys
v = {}
for l in open(sys.argv[1]):
    m = re.match(r'(BenchmarkApplyGuardianAI_\S+?)-\d+\s.*?([\d.]+) (msgs/s|max-ms)', l)
    if m: v[m.group(1)] = float(m.group(2))
h, s = v.get("BenchmarkApplyGuardianAI_Postgres_500Mixed"), v.get("BenchmarkApplyGuardianAI_Postgres_500Mixed_SeedWay")
if h and s:
    p = v.get("BenchmarkApplyGuardianAI_Postgres_500Mixed_Parallel", 0)
    print(f"\n== GuardianAI schema, PostgreSQL: hearth {h:.0f} msgs/s (4 edges at once: {p:.0f}), seed way {s:.0f} msgs/s, x{h/s:.0f}")
if "BenchmarkApplyGuardianAI_SQLite_LongestTx" in v:
    print(f"== GuardianAI schema, SQLite: longest write transaction (a 10000-message batch) {v['BenchmarkApplyGuardianAI_SQLite_LongestTx']:.0f} ms")
PY

go build -o "$OUT/hearthd" ./cmd/hearthd
go build -tags nostore -o "$OUT/hearthd-nostore" ./cmd/hearthd
go build -o "$OUT/hearth-load" ./cmd/hearth-load
go build -o "$OUT/hearth-central" ./cmd/hearth-central

port=18600
# start BIN: runs a daemon with limits opened for load, sets PID and URL.
start() {
  port=$((port + 2))
  rm -rf "$OUT/data"
  "$OUT/$1" --config "" --data-dir "$OUT/data" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
    --max-conns 5000 --max-conns-per-ip 5000 --rate-per-second 1000000 --log-level warn 2>"$OUT/$1.log" &
  PID=$!
  URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((port + 1))/readyz" >/dev/null && return; sleep 0.05; done
  echo "daemon did not start"; cat "$OUT/$1.log"; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

# load BIN MODE PHONES: one scenario, one JSON line.
load() {
  start "$1"
  "$OUT/hearth-load" --url "$URL" --mode "$2" --phones "$3" --duration "$DUR" --mix location --json
  stop
}

ROUNDS=${BENCH_ROUNDS:-3}
printf '\n== load (%s per run, median of %s interleaved runs; phones wait for each ack)\n' "$DUR" "$ROUNDS"
printf '%-8s %-7s %12s %9s %9s %12s %7s\n' mode phones "hearthd/s" "p50 ms" "p99 ms" "ceiling/s" ratio
for sc in "ws 1" "ws 10" "ws 50" "ws 200" "http 1" "http 10"; do
  set -- $sc
  : >"$OUT/real" && : >"$OUT/ceil"
  # Interleave the two builds so drift on a shared machine hits both alike.
  for _ in $(seq "$ROUNDS"); do
    load hearthd "$1" "$2" >>"$OUT/real"
    load hearthd-nostore "$1" "$2" >>"$OUT/ceil"
  done
  python3 - "$1" "$2" "$OUT/real" "$OUT/ceil" <<'PY'
import json, statistics, sys
mode, phones = sys.argv[1], sys.argv[2]
real = [json.loads(l) for l in open(sys.argv[3])]
ceil = [json.loads(l) for l in open(sys.argv[4])]
med = lambda runs, k: statistics.median(r[k] for r in runs)
r, c = med(real, "msgs_per_sec"), med(ceil, "msgs_per_sec")
print(f"{mode:<8} {phones:<7} {r:12.0f} {med(real,'p50_ms'):9.3f} {med(real,'p99_ms'):9.3f} {c:12.0f} {r/c:7.2f}")
PY
done

printf '\n== memory\n'
start hearthd
sleep 1
idle=$(rss_kib "$PID")
"$OUT/hearth-load" --url "$URL" --idle 1000 --phones 1 --messages 1 --duration 6s --json >"$OUT/idle.json" &
LPID=$!
sleep 4
busy=$(rss_kib "$PID")
conns=$(curl -s "http://127.0.0.1:$((port + 1))/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])')
wait $LPID || true
stop
echo "idle RSS: $((idle / 1024)) MiB ($idle KiB)"
echo "RSS with $conns idle WebSockets: $((busy / 1024)) MiB; per WebSocket: $(( (busy - idle) * 1024 / (conns > 0 ? conns : 1) )) bytes"

# central DB: phones away from home, straight to hearth-central on DB.
central() {
  local db=$1 hc="$OUT/hearth-central" kids="" home
  "$hc" migrate --config "" --db "$db" >/dev/null
  home=$("$hc" home add --config "" --db "$db" --json bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["home_id"])')
  for i in $(seq 50); do
    kids="$kids,$("$hc" child add --config "" --db "$db" --json --home "$home" | python3 -c 'import json,sys; print(json.load(sys.stdin)["child_hash"])')"
  done
  port=$((port + 2))
  "$hc" serve --config "" --db "$db" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
    --max-conns-per-ip 5000 --rate-per-second 1000000 --log-level warn 2>"$OUT/central.log" &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((port + 1))/readyz" >/dev/null && break; sleep 0.05; done
  for phones in 1 10 50; do
    "$OUT/hearth-load" --url "http://127.0.0.1:$port" --phones "$phones" --children "${kids#,}" --duration "$DUR" --mix mixed --json |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print("%-10s %-7s %12.0f %9.3f %9.3f" % (sys.argv[1], sys.argv[2], d["msgs_per_sec"], d["p50_ms"], d["p99_ms"]))' "${db%%:*}" "$phones"
  done
  stop
}

printf '\n== central, phones away from home (%s per run, mixed messages)\n' "$DUR"
printf '%-10s %-7s %12s %9s %9s\n' store phones "acked/s" "p50 ms" "p99 ms"
central "sqlite://$OUT/central.db"
if [ -n "${HEARTH_BENCH_PG:-}" ]; then central "$HEARTH_BENCH_PG"; else echo "(set HEARTH_BENCH_PG=postgres://… to add PostgreSQL)"; fi
printf '\n== central drains a backlog into PostgreSQL (issue 10; bench/central_drain.sh)\n'; bench/central_drain.sh || echo "central drain benchmark failed"
