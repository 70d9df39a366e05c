#!/bin/sh
# package.sh — build the hearth and hearth-central .deb and .rpm packages for
# amd64, arm64 and armhf, and the OpenWrt .ipk of hearth for mipsel_24kc,
# mips_24kc, arm_cortex-a7_neon-vfpv4, aarch64_cortex-a53 and
# aarch64_generic, into dist/. Run from the repository root; "make
# package" calls it with:
#   GO       the go command
#   NFPM     the nfpm command; default: nfpm built once from tools/go.mod
#            (its own module, so its dependencies stay out of go.mod)
#   VERSION  the version as "git describe" prints it (packaging/version.sh
#            turns it into a deb/rpm version)
#   HOST_BIN directory of the host binaries of "make build", used to check
#            that the shipped configuration files load
# It prints one line per step with the seconds it took; the output of each
# command goes to dist/.build/*.log and is printed only when it fails.
set -eu

GO=${GO:-go}
NFPM=${NFPM:-}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
HOST_BIN=${HOST_BIN:-bin}
DIST=dist
BUILD=$DIST/.build

PKG_VERSION=$(packaging/version.sh "$VERSION")
LDFLAGS="-s -w -X main.version=$VERSION -X github.com/guardianai/hearth/daemon.Version=$VERSION"
# Reproducible packages: file times from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

# step NAME LOG CMD...: run CMD with its output in LOG, print NAME and the
# seconds it took; on failure print LOG and stop.
step() {
	name=$1 log=$2
	shift 2
	t0=$(date +%s)
	# A subshell outside any "if", so that set -e holds inside CMD.
	set +e
	(
		set -e
		"$@"
	) >"$log" 2>&1
	rc=$?
	set -e
	if [ "$rc" != 0 ]; then
		cat "$log" >&2
		echo "package: $name FAILED (log: $log)" >&2
		exit 1
	fi
	echo "package: $name ($(($(date +%s) - t0))s)"
}

echo "package: hearth $VERSION as $PKG_VERSION"
rm -rf "$BUILD"
mkdir -p "$BUILD/man"
rm -f "$DIST"/hearth_*.deb "$DIST"/hearth-central_*.deb "$DIST"/hearth-*.rpm "$DIST"/hearthd_*_linux_mipsle* "$DIST"/hearth_*.ipk

# 1. The shipped configuration files must load as they are, and with every
# key uncommented (so each documented key and default is valid).
check_configs() {
	for f in hearthd central; do
		sed -E 's/^#([a-z_]+:)/\1/' "packaging/$f.yaml" >"$BUILD/$f-uncommented.yaml"
	done
	# The page's password file is made at install: here, a stand-in.
	pw="$BUILD/page-password"
	(umask 077 && echo build-check-password >"$pw")
	"$HOST_BIN/hearthd" --config packaging/hearthd.yaml --check-config --page-password-file "$pw"
	"$HOST_BIN/hearthd" --config "$BUILD/hearthd-uncommented.yaml" --check-config --page-password-file "$pw"
	"$HOST_BIN/hearth-central" serve --config packaging/central.yaml --check-config
	"$HOST_BIN/hearth-central" serve --config "$BUILD/central-uncommented.yaml" --check-config
}
step "shipped configs load" "$BUILD/configs.log" check_configs

# 2. nfpm, built once from its own module (go tool -modfile=tools/go.mod nfpm
# runs the same), in the background: its many small packages fill the core
# that the long single-package compiles (modernc's SQLite) leave idle.
nfpm_pid=
if [ -z "$NFPM" ]; then
	NFPM=$BUILD/nfpm
	t_nfpm=$(date +%s)
	$GO build -modfile=tools/go.mod -o "$NFPM" github.com/goreleaser/nfpm/v2/cmd/nfpm >"$BUILD/nfpm-build.log" 2>&1 &
	nfpm_pid=$!
fi
wait_nfpm() {
	[ -n "$nfpm_pid" ] || return 0
	if ! wait "$nfpm_pid"; then
		cat "$BUILD/nfpm-build.log" >&2
		echo "package: nfpm build from tools/go.mod FAILED" >&2
		exit 1
	fi
	echo "package: nfpm built from tools/go.mod (in the background; done $(($(date +%s) - t_nfpm))s after its start)"
}

# 3. Cross-compile, one target after the other: the machine is CPU-bound
# (arm64 and armv7 side by side took longer than one after the other, and
# every go build already uses all cores). amd64 is quick: "make build"
# compiled it.
build() { # build GOARCH GOARM GOMIPS OUTDIR PACKAGES...
	arch=$1 arm=$2 mips=$3 out=$4
	shift 4
	mkdir -p "$out"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm GOMIPS=$mips \
		$GO build -trimpath ${TAGS:+-tags "$TAGS"} -ldflags "$LDFLAGS" -o "$out/" "$@"
}
# router_build: hearthd for the OpenWrt packages, without Go's profiles
# (-tags nopprof: 0.46 MB less on mipsle; hearthd refuses pprof: true) and
# with a text-only /metrics (-tags textmetrics: 0.39 MB less).
router_build() { TAGS=nopprof,textmetrics build "$@"; }
step "binaries linux/amd64" "$BUILD/build-amd64.log" build amd64 "" "" "$BUILD/linux_amd64" ./cmd/hearthd ./cmd/hearth-central
step "binaries linux/arm64" "$BUILD/build-arm64.log" build arm64 "" "" "$BUILD/linux_arm64" ./cmd/hearthd ./cmd/hearth-central
step "binaries linux/arm (GOARM=7)" "$BUILD/build-arm7.log" build arm 7 "" "$BUILD/linux_arm7" ./cmd/hearthd ./cmd/hearth-central
# Routers' MIPS cores (24Kc) have no FPU: softfloat, as OpenWrt builds.
step "router hearthd linux/mipsle (softfloat, router tags)" "$BUILD/build-mipsle.log" router_build mipsle "" softfloat "$BUILD/router_mipsle" ./cmd/hearthd
step "router hearthd linux/mips (big-endian, softfloat, router tags)" "$BUILD/build-mips.log" router_build mips "" softfloat "$BUILD/router_mips" ./cmd/hearthd
router_arm() {
	router_build arm 7 "" "$BUILD/router_arm7" ./cmd/hearthd
	router_build arm64 "" "" "$BUILD/router_arm64" ./cmd/hearthd
}
step "router hearthd linux/arm (GOARM=7) and linux/arm64 (router tags)" "$BUILD/build-router-arm.log" router_arm

# 4. Man pages, changelogs and maintainer scripts.
for m in hearthd hearth-central; do
	gzip -9n <"packaging/man/$m.8" >"$BUILD/man/$m.8.gz"
done
date=$(date -u -d "@$SOURCE_DATE_EPOCH" -R 2>/dev/null || date -u -R)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
maintainer=$(sed -n 's/^maintainer: //p' nfpm-hearth.yaml)
render() { # render PKG UNIT STATE_DIR CONF
	mkdir -p "$BUILD/$1"
	for s in packaging/scripts/*; do
		sed -e "s|@PKG@|$1|g; s|@UNIT@|$2|g; s|@STATE_DIR@|$3|g; s|@CONF@|$4|g" "$s" >"$BUILD/$1/${s##*/}"
		chmod 0755 "$BUILD/$1/${s##*/}"
	done
	# A native Debian changelog (the version has no revision).
	cat <<EOF | gzip -9n >"$BUILD/$1/changelog.gz"
$1 ($PKG_VERSION) unstable; urgency=medium

  * Build of hearth $VERSION (commit $commit). The changes are in the
    project's git history.

 -- $maintainer  $date
EOF
}
render hearth hearthd.service /var/lib/hearth /etc/hearth/hearthd.yaml
render hearth-central hearth-central.service /var/lib/hearth-central /etc/hearth/central.yaml

# 5. Packages: name_version_debarch.deb, name-version.rpmarch.rpm, two nfpm
# at a time (xz and zstd keep a core busy each).
jobs() {
	for pkg in hearth hearth-central; do
		conf=nfpm-hearth.yaml
		[ "$pkg" = hearth ] || conf=nfpm-central.yaml
		for a in amd64:amd64:x86_64 arm64:arm64:aarch64 arm7:armhf:armv7hl; do
			arch=${a%%:*} rest=${a#*:}
			deb=${rest%%:*} rpm=${rest#*:}
			echo "$conf $arch deb $DIST/${pkg}_${PKG_VERSION}_$deb.deb"
			echo "$conf $arch rpm $DIST/$pkg-$PKG_VERSION.$rpm.rpm"
		done
	done
}
packages() {
	export NFPM PKG_VERSION BUILD
	# shellcheck disable=SC2016
	jobs | xargs -P 2 -L 1 sh -c 'PKG_ARCH=$2 PKG_BIN=$BUILD/linux_$2 $NFPM package --config "$1" --packager "$3" --target "$4"' nfpm
}
# OpenWrt: one .ipk per opkg architecture, the same for 23.05 and 24.10
# (both use opkg and these architecture names), with the router build of
# hearthd; the aarch64 ones share a binary.
ipk_jobs() {
	for a in mipsle:mipsel_24kc mips:mips_24kc arm7:arm_cortex-a7_neon-vfpv4 arm64:aarch64_cortex-a53 arm64:aarch64_generic; do
		echo "${a%%:*} ${a#*:} $DIST/hearth_${PKG_VERSION}_${a#*:}.ipk"
	done
}
ipks() {
	export NFPM PKG_VERSION BUILD
	# shellcheck disable=SC2016
	ipk_jobs | xargs -P 2 -L 1 sh -c 'IPK_ARCH=$2 PKG_BIN=$BUILD/router_$1 $NFPM package --config nfpm-openwrt.yaml --packager ipk --target "$3"' nfpm
}
wait_nfpm
step "12 packages (nfpm)" "$BUILD/nfpm.log" packages
step "5 OpenWrt packages (nfpm)" "$BUILD/nfpm-ipk.log" ipks

ls -l "$DIST"/*.deb "$DIST"/*.rpm "$DIST"/*.ipk
