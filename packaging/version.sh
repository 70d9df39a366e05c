#!/bin/sh
# version.sh VERSION — print VERSION (as "git describe --tags --always --dirty"
# prints it, or as given to make) as a version valid for both deb and rpm:
# digits first, only [0-9A-Za-z.+~], no "-" (deb revision, rpm release).
#
#   v1.2.3              1.2.3
#   v1.2.3-rc.1         1.2.3~rc.1          (~ sorts before the release)
#   v1.2.3-4-gabc1234   1.2.3+git4.abc1234  (4 commits after the tag)
#   abc1234             0.0.0~gitabc1234    (no tag yet)
#   abc1234-dirty       0.0.0~gitabc1234.dirty
#   dev                 0.0.0~dev
set -eu

v=${1:-}
v=${v#v}
dirty=
case $v in
*-dirty) v=${v%-dirty}; dirty=dirty ;;
esac

if printf '%s\n' "$v" | grep -Eq '^[0-9]+(\.[0-9]+)*([-.+~].*)?$'; then
	# <tag>[-<n>-g<hash>]: commits since the tag sort after it.
	v=$(printf '%s\n' "$v" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/; s/-/~/g')
	[ -z "$dirty" ] || case $v in *+*) v=$v.$dirty ;; *) v=$v+$dirty ;; esac
else
	case $v in
	'' | dev) v=0.0.0~dev ;;
	*) v=0.0.0~git$v ;;
	esac
	[ -z "$dirty" ] || v=$v.$dirty
fi
printf '%s\n' "$v" | tr -c '0-9A-Za-z.+~\n' '.'
