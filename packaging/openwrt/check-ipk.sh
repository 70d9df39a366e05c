#!/bin/sh
# check-ipk.sh IPK HOST_HEARTHD WORKDIR — the content check of one OpenWrt
# package that packaging/check.sh runs for each .ipk in dist/:
#   - the opkg layout (debian-binary, control.tar.gz, data.tar.gz) and the
#     control file: package, version, the architecture of the file name;
#   - conffiles lists /etc/hearth/hearthd.yaml; the sysupgrade keep.d entry
#     keeps /etc/hearth/;
#   - hearthd is a static ELF for that CPU (file), built with the Go
#     settings OpenWrt's CPU needs (go version -m: GOMIPS=softfloat,
#     GOARM=7) as the router build (-tags nopprof,textmetrics), and runs
#     there: under
#     qemu-user it loads the shipped configuration with --check-config;
#   - the procd init script: run in a shell with procd's functions recorded
#     instead of done, it does not start hearthd while no data_dir is set
#     (and logs why), refuses a configuration hearthd refuses, and with a
#     data_dir starts hearthd as the user hearth with respawn;
#   - postinst and prerm in a copy of the package's files with an OpenWrt
#     /etc/passwd, as the image builder runs them (IPKG_INSTROOT): the user
#     and group hearth made once (twice run: no duplicates), the
#     configuration root:hearth 0640, the service links made, and removed by
#     prerm while the user stays.
# HOST_HEARTHD is a hearthd for this machine (the init script's
# --check-config). Needs file, go and qemu-user-static.
set -eu
ipk=$1 host_hearthd=$2 work=$3

fail() {
	echo "check-ipk: $ipk: $*" >&2
	exit 1
}

# hearth_<version>_<arch>.ipk: the version has no "_", the arch may.
name=${ipk##*/}
name=${name#hearth_}
version=${name%%_*}
arch=${name#*_}
arch=${arch%.ipk}
case $arch in
mipsel_24kc) elf="ELF 32-bit LSB executable, MIPS, MIPS32" go="GOARCH=mipsle GOMIPS=softfloat" q=mipsel ;;
mips_24kc) elf="ELF 32-bit MSB executable, MIPS, MIPS32" go="GOARCH=mips GOMIPS=softfloat" q=mips ;;
arm_cortex-a7_neon-vfpv4) elf="ELF 32-bit LSB executable, ARM, EABI5" go="GOARCH=arm GOARM=7" q=arm ;;
aarch64_cortex-a53 | aarch64_generic) elf="ELF 64-bit LSB executable, ARM aarch64" go="GOARCH=arm64" q=aarch64 ;;
*) fail "unexpected architecture $arch" ;;
esac

rm -rf "$work"
mkdir -p "$work/root"
tar -xzf "$ipk" -C "$work"
[ "$(tar -tzf "$ipk" | sed 's|^\./||' | sort | tr '\n' ' ')" = "control.tar.gz data.tar.gz debian-binary " ] ||
	fail "not an opkg package: $(tar -tzf "$ipk" | tr '\n' ' ')"
[ "$(cat "$work/debian-binary")" = 2.0 ] || fail "debian-binary is $(cat "$work/debian-binary")"
mkdir "$work/control"
tar -xzf "$work/control.tar.gz" -C "$work/control"
tar -xzf "$work/data.tar.gz" -C "$work/root"

# The control file.
field() { sed -n "s/^$1: //p" "$work/control/control"; }
[ "$(field Package)" = hearth ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), file name says $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture), file name says $arch"
[ "$(cat "$work/control/conffiles")" = /etc/hearth/hearthd.yaml ] || fail "conffiles: $(cat "$work/control/conffiles")"
grep -qx /etc/hearth/ "$work/root/lib/upgrade/keep.d/hearth" || fail "keep.d does not keep /etc/hearth/"

# The files and their modes.
for f in usr/bin/hearthd:755 etc/init.d/hearthd:755 etc/hearth/hearthd.yaml:640 lib/upgrade/keep.d/hearth:644 \
	../control/postinst:755 ../control/prerm:755; do
	p=$work/root/${f%:*}
	[ -f "$p" ] || fail "${f%:*} missing"
	[ "$(stat -c %a "$p")" = "${f#*:}" ] || fail "${f%:*} has mode $(stat -c %a "$p"), want ${f#*:}"
done
cmp -s "$work/root/etc/hearth/hearthd.yaml" packaging/hearthd.yaml || fail "hearthd.yaml differs from packaging/hearthd.yaml"

# The binary: ELF for this CPU, static, Go settings for it, and it runs.
bin=$work/root/usr/bin/hearthd
info=$(file -b "$bin")
case $info in "$elf"*"statically linked"*) ;; *) fail "hearthd is: $info; want $elf, statically linked" ;; esac
settings=$(go version -m "$bin")
for s in $go CGO_ENABLED=0 -tags=nopprof,textmetrics; do
	echo "$settings" | grep -q "build[[:space:]]$s\$" || fail "hearthd not built with $s"
done
qemu=$(command -v "qemu-$q-static" || command -v "qemu-$q") || fail "qemu-$q not found (apt-get install qemu-user-static)"
# The page's password file is made at install: here, a stand-in.
(umask 077 && echo ipk-check-password >"$work/page-password")
"$qemu" "$bin" --config "$work/root/etc/hearth/hearthd.yaml" --check-config --page-password-file "$work/page-password" >"$work/qemu.log" 2>&1 ||
	fail "hearthd under ${qemu##*/}: $(cat "$work/qemu.log")"
grep -q '^configuration ok' "$work/qemu.log" || fail "hearthd under ${qemu##*/}: $(cat "$work/qemu.log")"

# The init script, with procd's and logger's work recorded in a file.
init=$work/root/etc/init.d/hearthd
[ "$(head -n 1 "$init")" = "#!/bin/sh /etc/rc.common" ] || fail "init script: first line $(head -n 1 "$init")"
grep -qx 'USE_PROCD=1' "$init" || fail "init script: not USE_PROCD=1"
run_init() { # run_init CONF: start_service with CONF; the calls in $work/init.log
	: >"$work/init.log"
	(
		procd_open_instance() { echo "procd_open_instance" >>"$work/init.log"; }
		procd_set_param() { echo "procd_set_param $*" >>"$work/init.log"; }
		procd_close_instance() { echo "procd_close_instance" >>"$work/init.log"; }
		logger() { echo "logger $*" >>"$work/init.log"; }
		# shellcheck disable=SC1090
		. "$init"
		PROG=$host_hearthd CONF=$1
		start_service 2>/dev/null
	) || true
}
conf=$work/hearthd.yaml
# The page's password: the stand-in above, never this machine's /etc.
sed "s|^page_password_file: .*|page_password_file: $work/page-password|" "$work/root/etc/hearth/hearthd.yaml" >"$conf"
run_init "$conf"
! grep -q procd_open_instance "$work/init.log" || fail "init script starts hearthd without a data_dir"
grep -q 'not started: no data_dir' "$work/init.log" || fail "init script does not log why it does not start: $(cat "$work/init.log")"
printf 'require_mount: mnt/usb\ndata_dir: /mnt/usb/hearth\n' >>"$conf"
run_init "$conf"
! grep -q procd_open_instance "$work/init.log" || fail "init script starts hearthd with a configuration hearthd refuses"
grep -q 'not started: .*require_mount' "$work/init.log" || fail "init script does not log hearthd's reason: $(cat "$work/init.log")"
sed -i 's|^require_mount: mnt/usb|require_mount: /mnt/usb|' "$conf"
run_init "$conf"
for want in "procd_open_instance" "procd_set_param command $host_hearthd --config $conf" "procd_set_param user hearth" \
	"procd_set_param respawn 3600 5 5" "procd_set_param file $conf" "procd_close_instance"; do
	grep -qxF "$want" "$work/init.log" || fail "init script with a data_dir: no \"$want\" in: $(cat "$work/init.log")"
done

# postinst and prerm as the image builder runs them, on an OpenWrt /etc.
r=$work/root
printf 'root:x:0:0:root:/root:/bin/ash\ndaemon:*:1:1:daemon:/var:/bin/false\nnetwork:*:101:101:network:/var:/bin/false\nnobody:*:65534:65534:nobody:/var:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\ndaemon:x:1:\nnetwork:x:101:\nnogroup:x:65534:\n' >"$r/etc/group"
printf 'root:::0:99999:7:::\n' >"$r/etc/shadow"
for i in 1 2; do # install, then the same again (an upgrade)
	IPKG_INSTROOT=$r sh "$work/control/postinst" || fail "postinst run $i failed"
done
[ "$(grep -c '^hearth:' "$r/etc/group")" = 1 ] || fail "group hearth: $(grep '^hearth:' "$r/etc/group")"
[ "$(grep -c '^hearth:' "$r/etc/passwd")" = 1 ] || fail "user hearth: $(grep '^hearth:' "$r/etc/passwd")"
[ "$(grep -c '^hearth:' "$r/etc/shadow")" = 1 ] || fail "no shadow entry for hearth"
grep -qx 'hearth:x:200:200:hearth:/var/run/hearth:/bin/false' "$r/etc/passwd" || fail "user hearth: $(grep '^hearth:' "$r/etc/passwd")"
[ "$(stat -c '%u:%g %a' "$r/etc/hearth/hearthd.yaml")" = "0:200 640" ] || fail "hearthd.yaml is $(stat -c '%u:%g %a' "$r/etc/hearth/hearthd.yaml"), want 0:200 640"
for l in S95hearthd K10hearthd; do
	[ "$(readlink "$r/etc/rc.d/$l")" = ../init.d/hearthd ] || fail "postinst: /etc/rc.d/$l missing"
done
IPKG_INSTROOT=$r sh "$work/control/prerm" || fail "prerm failed"
[ ! -e "$r/etc/rc.d/S95hearthd" ] && [ ! -e "$r/etc/rc.d/K10hearthd" ] || fail "prerm left the service enabled"
grep -q '^hearth:' "$r/etc/passwd" || fail "prerm removed the user hearth (it stays)"

echo "$ipk: hearth $version $arch: $(echo "$info" | cut -d, -f1-2), $go, runs under ${qemu##*/}; init script, postinst, prerm ok"
rm -rf "$work"
