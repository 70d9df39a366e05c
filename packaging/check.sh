#!/bin/sh
# check.sh — check the packages "make package" left in dist/, as CI does
# after "make test":
#   1. lintian on every .deb: no errors (tags overridden in packaging/lintian
#      are the documented exceptions);
#   2. every .rpm queried with rpm -qp: name, version, architecture, files
#      (binary, unit, man page, README and protocol.md),
#      the configuration marked %config(noreplace), the install scripts;
#   3. every OpenWrt .ipk: its control file, architecture, conffiles,
#      sysupgrade entry, init script and install scripts, and its hearthd
#      (ELF for the CPU, run under qemu-user): packaging/openwrt/check-ipk.sh;
#   4. on this machine (root, Debian family, amd64), the hearth .deb and
#      then the hearth-central .deb are installed, upgraded to a newer
#      version of themselves, removed and purged, checking at each step what
#      packaging/README.md promises: the binary, unit, docs and
#      configuration in place, the user hearth created, the operator's edit
#      of the configuration kept across the upgrade, and after purge the
#      configuration gone while the state and the user stay; then both
#      x86_64 .rpm are installed, upgraded and erased with rpm (scriptlets
#      run for real). systemd need not run (CI containers have none): the
#      install scripts must work without it.
# Step 4 changes the machine: it refuses to run if hearth or hearth-central
# is installed, and removes the user and state directories afterwards when
# they did not exist before. Skip it with CHECK_INSTALL=0.
# Needs lintian, rpm, file and qemu-user-static (apt-get install lintian rpm
# file qemu-user-static), go, and bin/hearthd ("make build").
set -eu
cd "$(dirname "$0")/.."

DIST=dist
WORK=$DIST/.check
rm -rf "$WORK"
mkdir -p "$WORK"

fail() {
	echo "check: FAILED: $*" >&2
	exit 1
}
# step NAME LOG CMD...: as in package.sh, one line per step, the log on failure.
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
		echo "check: $name FAILED (log: $log)" >&2
		exit 1
	fi
	echo "check: $name ($(($(date +%s) - t0))s)"
}

debs=$(ls "$DIST"/hearth_*.deb "$DIST"/hearth-central_*.deb 2>/dev/null || true)
rpms=$(ls "$DIST"/hearth-*.rpm 2>/dev/null || true)
[ "$(echo "$debs" | wc -w)" = 6 ] || fail "expected 6 .deb in $DIST (make package), found: $debs"
[ "$(echo "$rpms" | wc -w)" = 6 ] || fail "expected 6 .rpm in $DIST (make package), found: $rpms"
ipks=$(ls "$DIST"/hearth_*.ipk 2>/dev/null || true)
[ "$(echo "$ipks" | wc -w)" = 5 ] || fail "expected 5 .ipk in $DIST (make package), found: $ipks"

# 1. lintian: errors fail; warnings are printed in the log.
# shellcheck disable=SC2086
step "lintian, 6 .deb, no errors" "$WORK/lintian.log" \
	lintian --fail-on error --tag-display-limit 0 $debs

# 2. rpm -qp on each .rpm.
check_rpm() { # check_rpm FILE
	f=$1
	name=$(rpm -qp --qf '%{NAME}' "$f")
	arch=$(rpm -qp --qf '%{ARCH}' "$f")
	case $f in *".$arch.rpm") ;; *) fail "$f: architecture $arch does not match its name" ;; esac
	case $name in
	hearth) bin=/usr/bin/hearthd conf=/etc/hearth/hearthd.yaml unit=/usr/lib/systemd/system/hearthd.service ;;
	hearth-central) bin=/usr/bin/hearth-central conf=/etc/hearth/central.yaml unit=/usr/lib/systemd/system/hearth-central.service ;;
	*) fail "$f: unexpected name $name" ;;
	esac
	files=$(rpm -qpl "$f")
	for p in $bin $conf $unit /usr/share/man/man8/${bin##*/}.8.gz /usr/share/doc/$name/README.md /usr/share/doc/$name/protocol.md; do
		echo "$files" | grep -qx "$p" || fail "$f: $p missing"
	done
	rpm -qpc "$f" | grep -qx "$conf" || fail "$f: $conf is not a config file"
	# %config(noreplace) shows as flag n in --dump's "config" column... rpm
	# prints the file flags with --qf; noreplace is bit 16.
	flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS}\n]' "$f" | awk -v c="$conf" '$1 == c {print $2}')
	[ $((flags & 16)) != 0 ] || fail "$f: $conf is not noreplace (flags $flags)"
	mode=$(rpm -qp --qf '[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME}\n]' "$f" | awk -v c="$conf" '$1 == c {print $2, $3}')
	[ "$mode" = "-rw-r----- root:hearth" ] || fail "$f: $conf is $mode, want -rw-r----- root:hearth"
	scripts=$(rpm -qp --scripts "$f")
	for s in preinstall postinstall preuninstall postuninstall; do
		echo "$scripts" | grep -q "^$s scriptlet" || fail "$f: no $s scriptlet"
	done
	echo "$f: $name $(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$f") $arch, $(echo "$files" | wc -l) files"
}
check_rpms() {
	for f in $rpms; do check_rpm "$f"; done
}
step "rpm -qp, 6 .rpm" "$WORK/rpm.log" check_rpms

# 3. The OpenWrt packages' contents.
check_ipks() {
	for f in $ipks; do packaging/openwrt/check-ipk.sh "$f" bin/hearthd "$WORK/ipk"; done
}
step "OpenWrt, 5 .ipk: control, conffiles, init script, scripts, ELF under qemu" "$WORK/ipk.log" check_ipks

# 4. Install, upgrade, remove, purge of hearth and of hearth-central on
# this machine, one after the other (they share the user and /etc/hearth),
# then the same two .rpm installed, upgraded and erased with rpm, so that
# their scriptlets run for real.
if [ "${CHECK_INSTALL:-1}" = 0 ]; then
	echo "check: install cycle skipped (CHECK_INSTALL=0)"
	exit 0
fi
[ "$(id -u)" = 0 ] || fail "the install cycle needs root (CHECK_INSTALL=0 skips it)"
[ "$(dpkg --print-architecture)" = amd64 ] || fail "the install cycle needs an amd64 Debian machine (CHECK_INSTALL=0 skips it)"
for p in hearth hearth-central; do
	if dpkg-query -W -f '${Status}' $p 2>/dev/null | grep -q installed; then
		fail "the package $p is installed on this machine; the cycle would change it"
	fi
done

had_user=0
getent passwd hearth >/dev/null && had_user=1
had_state=
for d in /var/lib/hearth /var/lib/hearth-central; do
	[ -e $d ] && had_state="$had_state $d"
done
rpmdb=$(pwd)/$WORK/rpmdb
cleanup() {
	for p in hearth hearth-central; do
		dpkg --purge $p >/dev/null 2>&1 || true
		rpm --dbpath "$rpmdb" -e $p >/dev/null 2>&1 || true
	done
	if [ "$had_user" = 0 ]; then
		userdel hearth >/dev/null 2>&1 || true
		groupdel hearth >/dev/null 2>&1 || true
	fi
	for d in /var/lib/hearth /var/lib/hearth-central; do
		case " $had_state " in *" $d "*) ;; *) rm -rf $d ;; esac
	done
	rm -f /etc/hearth/*.rpmsave /etc/hearth/*.rpmnew /etc/hearth/page-password
	rmdir /etc/hearth 2>/dev/null || true
}
trap cleanup EXIT

systemd=without
[ -d /run/systemd/system ] && systemd=with

# use PKG: the names the cycle's steps use for package PKG.
use() {
	pkg=$1
	case $pkg in
	hearth)
		bin=hearthd conf=/etc/hearth/hearthd.yaml unit=hearthd.service
		state=/var/lib/hearth state_file=outbox.db check_cmd="/usr/bin/hearthd"
		;;
	hearth-central)
		bin=hearth-central conf=/etc/hearth/central.yaml unit=hearth-central.service
		state=/var/lib/hearth-central state_file=central.db check_cmd="/usr/bin/hearth-central serve"
		;;
	esac
	deb=$(ls "$DIST/${pkg}"_*_amd64.deb)
	version=$(dpkg-deb -f "$deb" Version)
	# The newer version: the same package, its version one step up.
	newer_version=$version+check1
	newer=$WORK/${pkg}_${newer_version}_amd64.deb
	wants=/etc/systemd/system/multi-user.target.wants/$unit
}
make_newer() {
	rm -rf "$WORK/newer"
	dpkg-deb -R "$deb" "$WORK/newer"
	sed -i "s/^Version: .*/Version: $newer_version/" "$WORK/newer/DEBIAN/control"
	dpkg-deb --root-owner-group -Zxz -b "$WORK/newer" "$newer" >/dev/null
	dpkg --compare-versions "$newer_version" gt "$version" || fail "$newer_version does not sort after $version"
}
# page_password_made: hearth's postinst made the household page's password
# (root:hearth 0640) and hearthd, as the service user, shows it.
page_password_made() {
	[ $pkg = hearth ] || return 0
	pw=/etc/hearth/page-password
	[ "$(stat -c '%U:%G %a' $pw)" = "root:hearth 640" ] || fail "$pw is $(stat -c '%U:%G %a' $pw 2>&1)"
	runuser -u hearth -- /usr/bin/hearthd page-password --config $conf | grep -qx "password: $(cat $pw)" || fail "hearthd page-password does not show $pw"
	cp $pw "$WORK/page-password.before"
}
# loads: the installed configuration loads, read as the service user.
loads() {
	# shellcheck disable=SC2086
	runuser -u hearth -- $check_cmd --config $conf --check-config
}
install_first() {
	dpkg -i "$deb"
	[ "$(dpkg-query -W -f '${Version}' $pkg)" = "$version" ] || fail "version after install"
	[ -x /usr/bin/$bin ] || fail "/usr/bin/$bin missing"
	[ -f /lib/systemd/system/$unit ] || fail "$unit missing"
	[ -f /usr/share/man/man8/$bin.8.gz ] || fail "man page missing"
	for f in copyright changelog.gz README.md README.packages.md protocol.md; do
		[ -f /usr/share/doc/$pkg/$f ] || fail "/usr/share/doc/$pkg/$f missing"
	done
	getent passwd hearth | grep -q ':/var/lib/hearth:/usr/sbin/nologin$' || fail "user hearth: $(getent passwd hearth)"
	getent group hearth >/dev/null || fail "no group hearth"
	[ "$(stat -c '%U:%G %a' $conf)" = "root:hearth 640" ] || fail "$conf is $(stat -c '%U:%G %a' $conf)"
	[ "$(stat -c '%U:%G %a' $state)" = "hearth:hearth 750" ] || fail "$state is $(stat -c '%U:%G %a' $state)"
	dpkg-query -W -f '${Conffiles}\n' $pkg | grep -q " $conf " || fail "$conf is not a conffile"
	# Enabled (deb-systemd-helper works without a running systemd), not started.
	[ -L $wants ] || fail "$unit not enabled"
	loads
	page_password_made
	# State and an operator's edit for the next steps.
	runuser -u hearth -- sh -c "echo state >$state/$state_file"
	printf '# edited by check.sh\nlog_level: debug\n' >>$conf
}
upgrade() {
	dpkg --force-confold -i "$newer"
	[ "$(dpkg-query -W -f '${Version}' $pkg)" = "$newer_version" ] || fail "version after upgrade"
	grep -q '^# edited by check.sh$' $conf || fail "the operator's edit of $conf was lost on upgrade"
	[ "$(stat -c '%U:%G %a' $conf)" = "root:hearth 640" ] || fail "$conf is $(stat -c '%U:%G %a' $conf) after upgrade"
	[ -L $wants ] || fail "$unit not enabled after upgrade"
	loads
	if [ $pkg = hearth ]; then
		cmp -s /etc/hearth/page-password "$WORK/page-password.before" || fail "the page's password changed on upgrade"
	fi
}
remove() {
	dpkg -r $pkg
	[ ! -e /usr/bin/$bin ] || fail "/usr/bin/$bin left after remove"
	[ ! -e /lib/systemd/system/$unit ] || fail "$unit left after remove"
	grep -q '^# edited by check.sh$' $conf || fail "$conf gone after remove (kept until purge)"
	dpkg-query -W -f '${Status}\n' $pkg | grep -q 'config-files' || fail "status after remove: $(dpkg-query -W -f '${Status}' $pkg)"
}
purge() {
	dpkg --purge $pkg
	[ ! -e $conf ] || fail "$conf left after purge"
	[ ! -e /etc/hearth/page-password ] || fail "/etc/hearth/page-password left after purge"
	! dpkg-statoverride --list $conf >/dev/null || fail "statoverride of $conf left after purge"
	[ ! -e $wants ] || fail "enable link left after purge"
	[ "$(cat $state/$state_file)" = state ] || fail "state under $state lost on purge"
	getent passwd hearth >/dev/null || fail "user hearth removed on purge (it stays)"
}
for p in hearth hearth-central; do
	use $p
	make_newer
	step "$pkg: install $deb ($systemd systemd): files, user, conffile, enabled" "$WORK/$pkg-install.log" install_first
	step "$pkg: upgrade to $newer_version: edited conffile kept" "$WORK/$pkg-upgrade.log" upgrade
	step "$pkg: remove: binary gone, conffile kept" "$WORK/$pkg-remove.log" remove
	step "$pkg: purge: config gone, state and user kept" "$WORK/$pkg-purge.log" purge
done

# The .rpm on this Debian machine, with rpm and a database of its own: its
# scriptlets run as on Fedora (%pre makes the user when it is missing, %post
# the state directory and, where systemctl exists, the enable link). The
# upgrade reinstalls the same .rpm (--replacepkgs): the scriptlets see the
# same arguments as in an upgrade ($1 = 2 in %post, 1 in the old %preun and
# %postun). The user made by the .deb steps is deleted first when it did not
# exist before, so that %pre makes it.
rpm_cycle() {
	rpmf=$DIST/$pkg-$version.x86_64.rpm # the .deb's version, as package.sh names both
	rpm_="rpm --dbpath $rpmdb --force-debian"
	if [ "$had_user" = 0 ]; then
		userdel hearth && groupdel hearth 2>/dev/null || true
	fi
	for d in /var/lib/hearth /var/lib/hearth-central; do
		case " $had_state " in *" $d "*) ;; *) rm -rf $d ;; esac
	done
	$rpm_ -i --nodeps "$rpmf"
	getent passwd hearth >/dev/null || fail "rpm %pre did not create the user hearth"
	[ "$(stat -c '%U:%G %a' $conf)" = "root:hearth 640" ] || fail "$conf is $(stat -c '%U:%G %a' $conf)"
	[ "$(stat -c '%U:%G %a' $state)" = "hearth:hearth 750" ] || fail "rpm %post: $state is $(stat -c '%U:%G %a' $state 2>&1)"
	[ -L $wants ] || fail "rpm %post did not enable $unit"
	loads
	page_password_made
	printf '# edited by check.sh\n' >>$conf
	$rpm_ -U --nodeps --replacepkgs "$rpmf"
	grep -q '^# edited by check.sh$' $conf || fail "rpm upgrade lost the operator's edit of $conf"
	[ -L $wants ] || fail "rpm upgrade disabled $unit"
	[ -x /usr/bin/$bin ] || fail "rpm upgrade removed /usr/bin/$bin"
	$rpm_ -e "$pkg"
	[ ! -e /usr/bin/$bin ] || fail "/usr/bin/$bin left after rpm -e"
	[ ! -e $wants ] || fail "rpm %preun did not disable $unit"
	[ -f $conf.rpmsave ] || fail "the edited $conf was not saved as $conf.rpmsave on rpm -e"
	rm -f $conf.rpmsave
	if [ $pkg = hearth ]; then
		# rpm has no purge: like an edited config, the password stays.
		[ -f /etc/hearth/page-password ] || fail "rpm -e removed the page's password (configuration stays)"
		rm -f /etc/hearth/page-password
	fi
	[ -d $state ] || fail "rpm -e removed $state (it stays)"
	getent passwd hearth >/dev/null || fail "rpm -e removed the user hearth (it stays)"
}
mkdir -p "$rpmdb"
rpm --dbpath "$rpmdb" --initdb
for p in hearth hearth-central; do
	use $p
	step "$pkg: rpm -i, -U, -e of the x86_64 .rpm: scriptlets, user, enable, config kept" "$WORK/$pkg-rpm.log" rpm_cycle
done
