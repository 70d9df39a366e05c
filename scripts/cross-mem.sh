#!/bin/sh
# cross-mem.sh [N] — hearthd's Go memory on armv7, read from inside the
# process: an armv7 hearthd runs under qemu-arm (CROSS_MEM_ARCH=host: a
# native one, for comparison), a host hearth-load holds N
# idle WebSockets (default 500), and /metrics is read after a forced GC
# (/debug/pprof/heap?gc=1) with none and with N connections. The RSS is
# printed too but under qemu says little: it is qemu's, translation cache
# included.
# Needs qemu-user-static and curl. Ports 127.0.0.1:18700-18701.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
N=${1:-500}
ADMIN=127.0.0.1:18701
dir=$(mktemp -d)
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

ARCH=${CROSS_MEM_ARCH:-armv7}
run=qemu-arm-static
if [ "$ARCH" = host ]; then
	echo "cross-mem: building hearthd (host) and hearth-load"
	CGO_ENABLED=0 $GO build -trimpath -ldflags '-s -w' -o "$dir/hearthd" ./cmd/hearthd
	run=
else
	echo "cross-mem: building hearthd (linux/arm, GOARM=7) and hearth-load"
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $GO build -trimpath -ldflags '-s -w' -o "$dir/hearthd" ./cmd/hearthd
fi
$GO build -o "$dir/hearth-load" ./cmd/hearth-load

$run "$dir/hearthd" --config "" --listen 127.0.0.1:18700 --admin-listen $ADMIN \
	--data-dir "$dir/data" --max-conns $((N + 100)) --max-conns-per-ip $((N + 100)) \
	--pprof --log-level warn --allow-volatile-data-dir >"$dir/hearthd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -fs "http://$ADMIN/healthz" >/dev/null 2>&1 && break
	sleep 0.2
done

metric() { # metric NAME: its value, after a GC
	curl -fs "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m {printf "%d\n", $2 + 0}'
}
snapshot() { # snapshot: heap_inuse stack_inuse sys goroutines rss_kib
	curl -fs -o /dev/null "http://$ADMIN/debug/pprof/heap?gc=1"
	echo "$(metric go_memstats_heap_inuse_bytes) $(metric go_memstats_stack_inuse_bytes) $(metric go_memstats_sys_bytes) $(metric go_goroutines) $(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
}
connections() {
	curl -fs "http://$ADMIN/status" | sed -n 's/.*"connections":\([0-9]*\).*/\1/p'
}

set -- $(snapshot)
h0=$1 s0=$2 sys0=$3 g0=$4 r0=$5
echo "cross-mem: idle: heap_inuse $((h0 / 1024)) KiB, stack_inuse $((s0 / 1024)) KiB, sys $((sys0 / 1024)) KiB, $g0 goroutines (RSS $r0 KiB)"

"$dir/hearth-load" --url http://127.0.0.1:18700 --phones 0 --idle "$N" --duration 120s >"$dir/load.log" 2>&1 &
load=$!
for _ in $(seq 600); do
	[ "$(connections)" = "$N" ] && break
	sleep 0.2
done
c=$(connections)
[ "$c" = "$N" ] || {
	echo "cross-mem: only $c of $N connections open" >&2
	cat "$dir/load.log" >&2
	exit 1
}
sleep 2
set -- $(snapshot)
h1=$1 s1=$2 sys1=$3 g1=$4 r1=$5
echo "cross-mem: $N idle WebSockets: heap_inuse $((h1 / 1024)) KiB, stack_inuse $((s1 / 1024)) KiB, sys $((sys1 / 1024)) KiB, $g1 goroutines (RSS $r1 KiB)"
printf 'cross-mem: per connection: heap %d B, stack %d B, heap+stack %d B, %d.%02d goroutines\n' \
	$(((h1 - h0) / N)) $(((s1 - s0) / N)) $(((h1 - h0 + s1 - s0) / N)) $(((g1 - g0) / N)) $(((g1 - g0) * 100 / N % 100))
kill "$load" 2>/dev/null || true
