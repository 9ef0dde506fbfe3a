#!/usr/bin/env bash
# build-deb.sh [OUTDIR] is `make deb`: the Debian package refreshd_VERSION_ARCH.deb, built
# with dpkg-deb from a tree this script lays out (default OUTDIR: the checkout's root).
#
#   /usr/bin/refreshd                         the binary (static, stripped, -trimpath)
#   /lib/systemd/system/refreshd.service      systemd/refreshd.service, ExecStart= in /usr/bin
#   /usr/lib/sysusers.d/refreshd.conf         user and group refreshd (systemd/refreshd.sysusers)
#   /usr/lib/tmpfiles.d/refreshd.conf         /var/lib/refreshd (systemd/refreshd.tmpfiles)
#   /etc/refreshd/plans/                      the active plans: empty, the admin copies plans in
#   /etc/refreshd/examples/*.yaml             the shipped plans, conffiles, not active
#   /usr/share/refreshd/plan.schema.json      the plan schema, for editors
#   /usr/share/refreshd/monitoring/           the Prometheus alerting rules
#   /usr/share/man/man1/refreshd.1.gz         the manual page (packaging/deb/refreshd.1)
#   /usr/share/doc/refreshd/                  copyright, changelog.gz, README.Debian
#
# The maintainer scripts are those of packaging/deb/ (debhelper's conventions: deb-systemd-helper,
# deb-systemd-invoke; restart on upgrade, stop on remove, state deleted on purge).
#
# The version is git describe mapped to a Debian version (deb_version below); the
# environment overrides: DEB_VERSION (the package's version), DEB_ARCH (amd64 or arm64,
# default the build machine's), DEB_MAINTAINER (default the author of HEAD),
# SOURCE_DATE_EPOCH (default HEAD's commit time: the same commit gives the same package).
#
#   build-deb.sh --version DESCRIBE COUNT   prints the Debian version of a git describe
#                                           output and a commit count, and exits
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { printf 'build-deb: %s\n' "$*" >&2; exit 1; }

# deb_version DESCRIBE COUNT maps `git describe --tags --always --dirty --match 'v[0-9]*'`
# to a Debian version that sorts as the commits do (dpkg --compare-versions):
#   v1.2.3                 1.2.3
#   v1.2.3-rc.1            1.2.3~rc.1               (a pre-release sorts before its release)
#   v1.2.3-5-gabc1234      1.2.3+5.gabc1234         (5 commits after v1.2.3)
#   v1.2.3-rc.1-5-gabc1234 1.2.3~rc.1+5.gabc1234
#   abc1234 (no tag)       0~COUNT.gabc1234         (COUNT: commits in HEAD's history)
#   any of them -dirty     ... .dirty               (uncommitted changes: never publish it)
deb_version() {
	local d=$1 count=$2 dirty='' v
	case $d in *-dirty) dirty=.dirty d=${d%-dirty} ;; esac
	if [[ $d =~ ^v([0-9][0-9.]*[0-9]|[0-9])(-([0-9A-Za-z.]+))?(-([0-9]+)-g([0-9a-f]+))?$ ]]; then
		v=${BASH_REMATCH[1]}
		[ -n "${BASH_REMATCH[3]}" ] && v+="~${BASH_REMATCH[3]}"
		[ -n "${BASH_REMATCH[5]}" ] && v+="+${BASH_REMATCH[5]}.g${BASH_REMATCH[6]}"
	elif [[ $d =~ ^[0-9a-f]{4,40}$ && $count =~ ^[0-9]+$ ]]; then
		v="0~$count.g$d"
	else
		die "git describe gave \"$d\": want a tag vX.Y.Z[-PRERELEASE][-N-gHASH] or a commit hash; set DEB_VERSION"
	fi
	printf '%s%s\n' "$v" "$dirty"
}

if [ "${1:-}" = --version ]; then
	[ $# = 3 ] || die "usage: build-deb.sh --version DESCRIBE COUNT"
	deb_version "$2" "$3"
	exit 0
fi

OUT=${1:-$ROOT}
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"
cd "$ROOT"

describe=$(git describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null) ||
	die "git describe failed: build from a git checkout, or set DEB_VERSION and REFRESHD_VERSION"
VERSION=${DEB_VERSION:-$(deb_version "$describe" "$(git rev-list --count HEAD)")}
# What the binary says (refreshd version): git's words, as make build stamps them.
BIN_VERSION=${REFRESHD_VERSION:-$describe}
ARCH=${DEB_ARCH:-$(dpkg --print-architecture)}
case $ARCH in
amd64 | arm64) GOARCH=$ARCH ;;
*) die "DEB_ARCH $ARCH: refreshd packages are built for amd64 and arm64" ;;
esac
MAINTAINER=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>')}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "version \"$VERSION\" is not a Debian version"

DEB=$OUT/refreshd_${VERSION}_${ARCH}.deb
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
P=$STAGE/pkg
install -d -m755 "$P/DEBIAN" "$P/usr/bin" "$P/lib/systemd/system" "$P/usr/lib/sysusers.d" \
	"$P/usr/lib/tmpfiles.d" "$P/etc/refreshd/plans" "$P/etc/refreshd/examples" \
	"$P/usr/share/refreshd/monitoring" "$P/usr/share/doc/refreshd" "$P/usr/share/man/man1"

# The binary: position-independent (ASLR; it needs only the dynamic loader of libc6, no
# library), stripped, reproducible.
CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -buildmode=pie -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X main.version=$BIN_VERSION" -o "$P/usr/bin/refreshd" ./cmd/refreshd

# The unit as shipped, with the binary where the package puts it.
sed 's|/usr/local/bin/refreshd|/usr/bin/refreshd|g' systemd/refreshd.service >"$P/lib/systemd/system/refreshd.service"
grep -q /usr/local/ "$P/lib/systemd/system/refreshd.service" && die "systemd/refreshd.service names /usr/local/ beyond the binary"
install -m644 systemd/refreshd.sysusers "$P/usr/lib/sysusers.d/refreshd.conf"
install -m644 systemd/refreshd.tmpfiles "$P/usr/lib/tmpfiles.d/refreshd.conf"
# The shipped plans, as examples: a plan runs once copied into /etc/refreshd/plans. The demo
# plan is left out: it needs the demo stack of a checkout.
for f in airflow builders buildx-example; do
	install -m644 "plans/$f.yaml" "$P/etc/refreshd/examples/$f.yaml"
done
install -m644 plan/schema.json "$P/usr/share/refreshd/plan.schema.json"
install -m644 monitoring/refreshd.rules.yml "$P/usr/share/refreshd/monitoring/refreshd.rules.yml"
install -m644 packaging/deb/copyright "$P/usr/share/doc/refreshd/copyright"
install -m644 packaging/deb/README.Debian "$P/usr/share/doc/refreshd/README.Debian"
# The manual page names every command the binary has (a new one must be documented there);
# checked where the binary runs (a cross build is checked by the native one).
if [ "$ARCH" = "$(dpkg --print-architecture)" ]; then
	commands=$("$P/usr/bin/refreshd" --help 2>&1 | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
	[ -n "$commands" ] || die "refreshd --help lists no commands"
	for cmd in $commands; do
		grep -qF "\\fB$cmd\\fR" packaging/deb/refreshd.1 ||
			die "packaging/deb/refreshd.1 does not describe the command $cmd (refreshd --help lists it)"
	done
fi
gzip -9n <packaging/deb/refreshd.1 >"$P/usr/share/man/man1/refreshd.1.gz"
# A native package's changelog: this build, from the commit it was built from.
{
	printf 'refreshd (%s) unstable; urgency=medium\n\n' "$VERSION"
	printf '  * Built from %s (commit %s).\n\n' "$describe" "$(git rev-parse HEAD)"
	printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$P/usr/share/doc/refreshd/changelog.gz"

for s in postinst prerm postrm; do
	install -m755 "packaging/deb/$s" "$P/DEBIAN/$s"
done
(cd "$P" && find etc -type f | sed 's|^|/|' | sort) >"$P/DEBIAN/conffiles"
chmod 644 "$P/DEBIAN/conffiles"
(cd "$P" && find usr lib -type f -print0 | sort -z | xargs -0 md5sum) >"$P/DEBIAN/md5sums"
chmod 644 "$P/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$P" | cut -f1)
control=$(<packaging/deb/control)
control=${control//@VERSION@/"$VERSION"}
control=${control//@ARCH@/"$ARCH"}
control=${control//@MAINTAINER@/"$MAINTAINER"}
control=${control//@SIZE@/"$size"}
printf '%s\n' "$control" >"$P/DEBIAN/control"
chmod 644 "$P/DEBIAN/control"

find "$P" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$P" "$DEB" >/dev/null
printf '%s\n' "$DEB"
