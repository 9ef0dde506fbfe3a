#!/usr/bin/env bash
# install-stack.sh [demo|test] installs the real build stack refreshd is demoed on and tested
# against, on Debian 12 (bookworm) as root, and assumes nothing else of the machine but Go
# (on PATH or in /usr/local/go): every program it uses is installed by it first.
#
#   demo   what `make demo` runs on: the docker CLI (Debian's docker.io where there is no
#          docker: bookworm has no package with the CLI alone; its engine is not used), the
#          buildx plugin, buildkitd and buildctl (built from source through the Go module
#          proxy, static, with their versions stamped), runc, docker-registry, git, curl,
#          jq, bc, busybox-static, file, iproute2, procps
#   test   (the default; `make test`) the demo's, and the test tooling: staticcheck,
#          htpasswd, promtool, python3 and pytest, systemd-analyze, headless Chromium and a
#          font, Node's npm (Debian's, where there is none) with ajv-cli and
#          yaml-language-server, and systemd-nspawn with a debootstrapped Debian 12 root
#          filesystem (e2e/systemd)
#
# apt sources may be in either form (deb822 /etc/apt/sources.list.d/*.sources, the classic
# /etc/apt/sources.list, or both): apt itself is asked for the mirror. Built binaries are
# cached in $REFRESHD_STACK_CACHE (default /var/cache/refreshd-stack), so a second call takes
# seconds; a cached binary that is not static or does not report its pinned version is rebuilt. Each step says
# what it does; one that fails names itself, its exit code and the last lines of its log
# (kept in $REFRESHD_STACK_CACHE/logs). Nothing is downloaded but packages.
set -Eeuo pipefail

MODE=${1:-test}
case $MODE in
demo | test) ;;
*)
	echo "usage: install-stack.sh [demo|test]" >&2
	exit 2
	;;
esac

BUILDX_VERSION=${BUILDX_VERSION:-v0.38.2}
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.34.2}
# staticcheck 2026.2.2 (v0.8.2) type-checks go1.26 code; make check runs it.
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
CACHE=${REFRESHD_STACK_CACHE:-/var/cache/refreshd-stack}
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
BIN=$CACHE/bin
LOGS=$CACHE/logs
export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-stack: %s\n' "$*" >&2; }

# STEP names what is being done; whatever fails outside run (below) is reported with it.
STEP="check the machine"
trap 'rc=$?; log "step \"$STEP\" failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

die() {
	log "step \"$STEP\" failed: $*"
	exit 1
}

# run WHAT CMD...: the step WHAT. CMD's output goes to a log file; when CMD fails, the step
# is named with CMD's exit code and the log's last lines, and the script exits. CMD runs as
# a job of its own so that set -e holds inside a function (it does not in an `||` context).
run() {
	STEP=$1
	shift
	local logf rc=0
	logf=$LOGS/$(printf '%s' "$STEP" | tr -c 'A-Za-z0-9._-' '-' | cut -c1-60).log
	log "$STEP"
	"$@" >"$logf" 2>&1 </dev/null &
	wait $! || rc=$?
	if [ $rc != 0 ]; then
		tail -n 25 "$logf" | sed 's/^/  | /' >&2
		log "step \"$STEP\" failed (exit $rc); its whole log: $logf"
		exit $rc
	fi
}

# The machine: root on Debian with apt, and Go. Go lives in /usr/local/go on the machines this
# is made for; a shell that did not put it on PATH still finds it.
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and writes $CACHE)"
command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 ||
	die "no apt-get: this script installs Debian packages (Debian 12)"
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null 2>&1 || die "no go on PATH nor in /usr/local/go/bin: install Go (https://go.dev/doc/install)"
mkdir -p "$BIN" "$LOGS" "$PLUGIN_DIR"
# One install at a time on a machine (tests of several checkouts may call it at once).
exec 9>"$CACHE/install.lock"
if ! flock -n 9; then
	log "waiting for another install-stack.sh to finish"
	flock 9
fi

# Debian packages, each named with the program that shows it is there (a package name alone,
# "-", when a file is checked below instead).
demo_packages=(runc:runc docker-registry:docker-registry git:git curl:curl jq:jq bc:bc
	busybox:busybox-static file:file ss:iproute2 pgrep:procps setsid:util-linux docker:docker.io)
test_packages=(htpasswd:apache2-utils promtool:prometheus systemd-analyze:systemd
	python3:python3 pytest-3:python3-pytest awk:mawk chromium:chromium npm:npm
	lintian:lintian make:make systemd-nspawn:systemd-container debootstrap:debootstrap)
wanted=("${demo_packages[@]}")
if [ "$MODE" = test ]; then
	wanted+=("${test_packages[@]}")
fi
need_apt=()
for pair in "${wanted[@]}"; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# busybox must be the static one: stack.sh copies it into the demo's base image.
if command -v busybox >/dev/null 2>&1 && ! file -L "$(command -v busybox)" 2>/dev/null | grep -q 'statically linked'; then
	need_apt+=(busybox-static)
fi
# One font family for Chromium's screenshots (text, not boxes).
if [ "$MODE" = test ] && [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
	need_apt+=(fonts-dejavu-core)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
	# Another apt (a second checkout's install, unattended-upgrades) may hold dpkg's lock: wait.
	run "apt-get update" apt-get -o DPkg::Lock::Timeout=600 update
	run "apt-get install ${need_apt[*]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need_apt[@]}"
	# Debian's registry, prometheus and docker.io packages start their services where an
	# init system runs; the demo and the tests start their own registry and use no Docker
	# engine. Stop only the services of packages installed just now: never a registry that a
	# running test or demo started.
	STEP="stop the services the packages just installed started"
	for svc in docker-registry:docker-registry prometheus:prometheus docker.io:docker docker.io:containerd; do
		[[ " ${need_apt[*]} " == *" ${svc%%:*} "* ]] || continue
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "${svc#*:}" 2>/dev/null; then
			systemctl stop "${svc#*:}" || log "could not stop ${svc#*:} (left running)"
		fi
	done
fi

# The stack's Go programs are built static (CGO_ENABLED=0), as their upstream releases are:
# they run in any root filesystem they are bound into, and the build needs no C compiler, so
# it is the same build, with the same Go build cache entries, on any machine.
export CGO_ENABLED=0

# stamped BINARY WANT: the cached BINARY exists, is static and reports WANT as its version
# (binaries built before the versions were stamped report v0.0.0+unknown and are rebuilt).
stamped() {
	[ -x "$1" ] || return 1
	file -L "$1" | grep -q 'statically linked' || return 1
	local out
	out=$("$1" --version 2>/dev/null || "$1" version 2>/dev/null || true)
	[[ $out == *" $2"* ]]
}

build_buildx() {
	local tmp=$BIN/tmp-buildx pkg=github.com/docker/buildx
	rm -rf "$tmp"
	GOBIN=$tmp go install -ldflags "-X $pkg/version.Version=$BUILDX_VERSION -X $pkg/version.Package=$pkg" \
		"$pkg/cmd/buildx@$BUILDX_VERSION"
	mv "$tmp/buildx" "$BIN/docker-buildx-$BUILDX_VERSION"
	rmdir "$tmp"
}

# buildkit's go.mod has exclude directives, so `go install pkg@version` refuses it; a
# throw-away module that requires it builds the same commands.
build_buildkit() {
	local tmp pkg=github.com/moby/buildkit
	tmp=$(mktemp -d)
	cd "$tmp"
	go mod init refreshd-stack-tools
	cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
GO
	go get "$pkg@$BUILDKIT_VERSION"
	go mod tidy
	local ldflags="-X $pkg/version.Version=$BUILDKIT_VERSION -X $pkg/version.Package=$pkg"
	go build -ldflags "$ldflags" -o "$BIN/buildkitd-$BUILDKIT_VERSION" "$pkg/cmd/buildkitd"
	go build -ldflags "$ldflags" -o "$BIN/buildctl-$BUILDKIT_VERSION" "$pkg/cmd/buildctl"
	cd /
	rm -rf "$tmp"
}

build_staticcheck() {
	local tmp=$BIN/tmp-staticcheck
	rm -rf "$tmp"
	GOBIN=$tmp go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	mv "$tmp/staticcheck" "$BIN/staticcheck-$STATICCHECK_VERSION"
	rmdir "$tmp"
}

# The module proxy serves no commit for a tag, so Version and Package are stamped and
# Revision stays empty; `docker buildx version` prints "github.com/docker/buildx v0.38.2".
if ! stamped "$BIN/docker-buildx-$BUILDX_VERSION" "$BUILDX_VERSION"; then
	run "build buildx $BUILDX_VERSION (a few minutes)" build_buildx
fi
STEP="install the buildx plugin"
install -m 0755 "$BIN/docker-buildx-$BUILDX_VERSION" "$PLUGIN_DIR/docker-buildx"

if ! stamped "$BIN/buildkitd-$BUILDKIT_VERSION" "$BUILDKIT_VERSION" || ! stamped "$BIN/buildctl-$BUILDKIT_VERSION" "$BUILDKIT_VERSION"; then
	run "build buildkitd and buildctl $BUILDKIT_VERSION (a few minutes)" build_buildkit
fi
STEP="install buildkitd and buildctl"
install -m 0755 "$BIN/buildkitd-$BUILDKIT_VERSION" /usr/local/bin/buildkitd
install -m 0755 "$BIN/buildctl-$BUILDKIT_VERSION" /usr/local/bin/buildctl

if [ "$MODE" = test ]; then
	if [ ! -x "$BIN/staticcheck-$STATICCHECK_VERSION" ]; then
		run "build staticcheck $STATICCHECK_VERSION" build_staticcheck
	fi
	STEP="install staticcheck"
	install -m 0755 "$BIN/staticcheck-$STATICCHECK_VERSION" /usr/local/bin/staticcheck

	# ajv checks the schema against the shipped plans; yaml-language-server is driven as an
	# editor does (LSP on stdio) by the schema-parity test.
	if ! command -v ajv >/dev/null 2>&1; then
		run "npm install -g ajv-cli ajv-formats" npm install -g ajv-cli@5 ajv-formats@3
	fi
	if ! command -v yaml-language-server >/dev/null 2>&1; then
		run "npm install -g yaml-language-server" npm install -g yaml-language-server@1.25.0
	fi

	# A Debian 12 root filesystem for the real-systemd test (e2e/systemd): systemd 252 boots
	# in it as PID 1 under systemd-nspawn. Built once with debootstrap from the mirror apt
	# already uses (about 6 minutes), then only read: the test boots it with --volatile=overlay.
	# make: the test runs the README's install section, `make build` included.
	ROOTFS=$CACHE/sysd-rootfs-bookworm
	ROOTFS_PACKAGES=make,systemd,systemd-sysv,dbus,git,procps,iproute2,runc,ca-certificates,psmisc,busybox-static,docker-registry,curl,file
	if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ] || [ "$(cat "$ROOTFS.packages" 2>/dev/null)" != "$ROOTFS_PACKAGES" ]; then
		STEP="find the Debian mirror apt uses"
		# apt reads both source forms; the first source of the bookworm suite is the mirror.
		mirror=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' | awk '$2 == "bookworm" && m == "" {m = $1} END {print m}')
		# A debootstrap cut short leaves its /proc and /sys mounted in the tree it was making:
		# unmount them, and never remove across a mount point.
		awk -v d="$ROOTFS.tmp/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r umount -l
		rm -rf --one-file-system "$ROOTFS.tmp"
		run "debootstrap bookworm from ${mirror:-the default mirror} into $ROOTFS (about 6 minutes, once)" \
			debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" bookworm "$ROOTFS.tmp" ${mirror:+"$mirror"}
		STEP="keep the root filesystem"
		rm -rf --one-file-system "$ROOTFS"
		mv "$ROOTFS.tmp" "$ROOTFS"
		echo "$ROOTFS_PACKAGES" >"$ROOTFS.packages"
	fi
fi

STEP="report the versions"
log "ready ($MODE): $(docker buildx version | head -1); $(buildkitd --version); $(docker-registry --version 2>/dev/null | head -1)"
