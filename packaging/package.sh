#!/bin/sh
# package.sh — build the hearth and hearth-central .deb and .rpm packages for
# amd64, arm64 and armhf into dist/, plus mipsle hearthd binaries (built to
# prove they build, not packaged). Run from the repository root; "make
# package" calls it with:
#   GO       the go command
#   NFPM     the nfpm command
#   VERSION  the version as "git describe" prints it (packaging/version.sh
#            turns it into a deb/rpm version)
#   HOST_BIN directory of the host binaries of "make build", used to check
#            that the shipped configuration files load
set -eu

GO=${GO:-go}
NFPM=${NFPM:-"$GO run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
HOST_BIN=${HOST_BIN:-bin}
DIST=dist
BUILD=$DIST/.build

PKG_VERSION=$(packaging/version.sh "$VERSION")
LDFLAGS="-s -w -X main.version=$VERSION -X github.com/guardianai/hearth/daemon.Version=$VERSION"
# Reproducible packages: file times from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

echo "packaging hearth $VERSION as $PKG_VERSION"
rm -rf "$BUILD"
mkdir -p "$BUILD/man"
rm -f "$DIST"/hearth_*.deb "$DIST"/hearth-central_*.deb "$DIST"/hearth-*.rpm "$DIST"/hearthd_*_linux_mipsle*

# 1. The shipped configuration files must load as they are, and with every
# key uncommented (so each documented key and default is valid).
for f in hearthd central; do
	sed -E 's/^#([a-z_]+:)/\1/' "packaging/$f.yaml" >"$BUILD/$f-uncommented.yaml"
done
"$HOST_BIN/hearthd" --config packaging/hearthd.yaml --check-config >/dev/null
"$HOST_BIN/hearthd" --config "$BUILD/hearthd-uncommented.yaml" --check-config >/dev/null
"$HOST_BIN/hearth-central" serve --config packaging/central.yaml --check-config >/dev/null
"$HOST_BIN/hearth-central" serve --config "$BUILD/central-uncommented.yaml" --check-config >/dev/null

# 2. Cross-compile, all targets in parallel.
build() { # build GOARCH GOARM GOMIPS OUTDIR PACKAGES...
	arch=$1 arm=$2 mips=$3 out=$4
	shift 4
	mkdir -p "$out"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm GOMIPS=$mips \
		$GO build -trimpath -ldflags "$LDFLAGS" -o "$out/" "$@"
}
pids=
build amd64 "" "" "$BUILD/linux_amd64" ./cmd/hearthd ./cmd/hearth-central & pids="$pids $!"
build arm64 "" "" "$BUILD/linux_arm64" ./cmd/hearthd ./cmd/hearth-central & pids="$pids $!"
build arm 7 "" "$BUILD/linux_arm7" ./cmd/hearthd ./cmd/hearth-central & pids="$pids $!"
build mipsle "" softfloat "$BUILD/linux_mipsle" ./cmd/hearthd & pids="$pids $!"
fail=0
for p in $pids; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { echo "package.sh: a cross-compilation failed" >&2; exit 1; }
cp "$BUILD/linux_mipsle/hearthd" "$DIST/hearthd_${PKG_VERSION}_linux_mipsle"

# 3. Man pages, changelogs and maintainer scripts.
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

# 4. Packages, in parallel: name_version_debarch.deb, name-version.rpmarch.rpm.
pids=
for pkg in hearth hearth-central; do
	conf=nfpm-hearth.yaml
	[ "$pkg" = hearth ] || conf=nfpm-central.yaml
	for a in amd64:amd64:x86_64 arm64:arm64:aarch64 arm7:armhf:armv7hl; do
		arch=${a%%:*} rest=${a#*:}
		deb=${rest%%:*} rpm=${rest#*:}
		PKG_ARCH=$arch PKG_VERSION=$PKG_VERSION PKG_BIN=$BUILD/linux_$arch \
			$NFPM package --config "$conf" --packager deb --target "$DIST/${pkg}_${PKG_VERSION}_$deb.deb" >"$BUILD/nfpm-$pkg-$arch.deb.log" 2>&1 &
		pids="$pids $!"
		PKG_ARCH=$arch PKG_VERSION=$PKG_VERSION PKG_BIN=$BUILD/linux_$arch \
			$NFPM package --config "$conf" --packager rpm --target "$DIST/$pkg-$PKG_VERSION.$rpm.rpm" >"$BUILD/nfpm-$pkg-$arch.rpm.log" 2>&1 &
		pids="$pids $!"
	done
done
fail=0
for p in $pids; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { cat "$BUILD"/nfpm-*.log >&2; echo "package.sh: nfpm failed" >&2; exit 1; }

ls -l "$DIST"/*.deb "$DIST"/*.rpm "$DIST"/hearthd_*_linux_mipsle
