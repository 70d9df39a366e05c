#!/bin/sh
# cross-test.sh [ARCH...] — the tests of the code that runs on routers, on
# router CPUs: the domain (root package), ingest, outbox, forwarder, daemon
# and admin suites built for each ARCH (arm64, armv7, mipsle, mips: the
# big-endian MIPS of most cheap routers; default all four)
# and run under qemu-user (go test -exec), then apptest's kill -9 crash test
# against an armv7 hearthd run under qemu-arm, when armv7 is among them.
# "make cross-test" runs it; CI runs "make cross-test CROSS_ARCHES=armv7"
# (the 32-bit case: the outbox file is mapped whole, the quota 256 MiB).
# Needs qemu-user-static (or qemu-user) from Debian; no binfmt setup.
# Emulation is some 5-20 times slower than the host: the go test timeout is
# CROSS_TIMEOUT (default 30m, against make test's 15m).
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
ARCHES=${*:-arm64 armv7 mipsle mips}
CROSS_TIMEOUT=${CROSS_TIMEOUT:-30m}
PKGS=". ./ingest/... ./outbox/... ./forwarder/... ./daemon/... ./internal/admin/..."

qemu() { # qemu QEMU_ARCH: the qemu-user binary for it
	for q in "qemu-$1-static" "qemu-$1"; do
		if command -v "$q" >/dev/null 2>&1; then
			command -v "$q"
			return
		fi
	done
	echo "cross-test: qemu-$1 not found: apt-get install qemu-user-static" >&2
	exit 1
}

for arch in $ARCHES; do
	case $arch in
	arm64) env="GOARCH=arm64" q=$(qemu aarch64) ;;
	armv7) env="GOARCH=arm GOARM=7" q=$(qemu arm) ;;
	mipsle) env="GOARCH=mipsle GOMIPS=softfloat" q=$(qemu mipsel) ;;
	mips) env="GOARCH=mips GOMIPS=softfloat" q=$(qemu mips) ;;
	*)
		echo "cross-test: unknown arch $arch (arm64, armv7, mipsle, mips)" >&2
		exit 1
		;;
	esac
	pkgs=$PKGS
	echo "cross-test: $arch ($env) under ${q##*/}"
	tags=
	case $arch in mips*)
		# The build the OpenWrt packages ship (no Go profiles, text-only
		# /metrics: packaging/package.sh's router_build).
		tags=nopprof,textmetrics
		# forwarder's tests run against a real central, whose SQLite
		# (modernc) has no MIPS32 port; hearthd's forwarder code is compiled
		# for MIPS by make package all the same.
		pkgs=$(echo "$PKGS" | sed 's| ./forwarder/...||')
		echo "cross-test: $arch: forwarder's tests not run (they import central: modernc's SQLite has no MIPS32 port)"
		;;
	esac
	t0=$(date +%s)
	# shellcheck disable=SC2086
	env $env GOOS=linux CGO_ENABLED=0 $GO test -exec "$q" ${tags:+-tags "$tags"} -count=1 -timeout "$CROSS_TIMEOUT" $pkgs
	echo "cross-test: $arch suites passed ($(($(date +%s) - t0))s)"
done

case " $ARCHES " in
*" armv7 "*)
	t0=$(date +%s)
	echo "cross-test: apptest crash test (kill -9 under load) against an armv7 hearthd under qemu-arm"
	log=$(mktemp)
	if ! HEARTH_APPTEST_GOARCH=arm GOARM=7 HEARTH_APPTEST_EXEC=$(qemu arm) \
		$GO test -count=1 -timeout "$CROSS_TIMEOUT" -run '^TestHearthd_Crash_KillUnderLoad$' -v ./apptest/ >"$log" 2>&1; then
		cat "$log"
		rm -f "$log"
		echo "cross-test: armv7 crash test FAILED" >&2
		exit 1
	fi
	grep -E '^(--- |ok|[[:space:]]+crash_test.go)' "$log"
	rm -f "$log"
	echo "cross-test: armv7 crash test done ($(($(date +%s) - t0))s)"
	;;
esac
