#!/usr/bin/env bash
# pristine.sh [COMMIT] runs the README's two commands on a pristine Debian 12, as a new user
# would: a fresh root filesystem (debootstrap minbase, apt sources in deb822 form only, none of
# the project's stack) run under systemd-nspawn, in which the README's prerequisites are
# installed, COMMIT (default HEAD) of this checkout is cloned, and `make demo` (for real) and
# the test command's fast tier (`make test-short`) run. It exits 1 naming the phase that failed.
# .ci/run runs it after `make test`; by hand, as root in a checkout: bash scripts/pristine.sh
#
# What the machine kind has and a fresh Debian lacks comes in from the host, read-only: Go
# (/usr/local/go), the extra certificate authorities it trusts (/usr/local/share/ca-certificates),
# and Go's module download cache (as a file:// proxy before the real one) and build cache
# (an overlay: the container's writes go to a temporary directory). Nothing of the stack does:
# no /var/cache/refreshd-stack, no apt package, no binary.
#
# The debootstrapped base (minbase + deb822 sources) is cached in $PRISTINE_CACHE (default
# /var/cache/refreshd-pristine): it is what any fresh Debian 12 of the kind is, holds nothing
# of the project, and rebuilding it each time costs a download and about half a minute. Each run
# works on a copy of it, removed at the end.
#
# Environment:
#   PRISTINE_TEST=short|full   short (default): make test-short after make demo; full: make test
#   PRISTINE_SOURCES=deb822|classic|both   the root's apt sources: deb822 only (default, as the
#                              machine kind), a classic /etc/apt/sources.list only, or both
#   PRISTINE_KEEP=1            keep the run's root filesystem (its path is printed)
#   PRISTINE_TIMEOUT=40m       bound of the run inside the container
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMIT=$(git -C "$ROOT" rev-parse --verify "${1:-HEAD}^{commit}")
CACHE=${PRISTINE_CACHE:-/var/cache/refreshd-pristine}
BASE=$CACHE/bookworm-minbase
# Bump when the base's recipe changes: a cached base of another recipe is rebuilt.
BASE_RECIPE="debootstrap --variant=minbase bookworm; deb822 sources only; 1"
TEST=${PRISTINE_TEST:-short}
SOURCES=${PRISTINE_SOURCES:-deb822}
NAME=refreshd-pristine-$$
export PATH=$PATH:/usr/local/go/bin

STEP="check the host"
log() { printf 'pristine: %s\n' "$*" >&2; }
trap 'rc=$?; log "step \"$STEP\" failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR
die() {
	log "step \"$STEP\" failed: $*"
	exit 1
}

case $TEST in short | full) ;; *) die "PRISTINE_TEST is short or full, not $TEST" ;; esac
case $SOURCES in deb822 | classic | both) ;; *) die "PRISTINE_SOURCES is deb822, classic or both, not $SOURCES" ;; esac
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, systemd-nspawn)"
[ -d /usr/local/go/bin ] || die "no Go in /usr/local/go: the machine kind this checks has it there"
if ! command -v debootstrap >/dev/null 2>&1 || ! command -v systemd-nspawn >/dev/null 2>&1; then
	STEP="apt-get install debootstrap systemd-container"
	log "$STEP"
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap systemd-container >/dev/null
fi

# The base: a minbase Debian 12 whose apt sources are deb822 only, like the machine kind.
if [ "$(cat "$BASE.recipe" 2>/dev/null)" != "$BASE_RECIPE" ] || [ ! -x "$BASE/usr/bin/apt-get" ]; then
	STEP="debootstrap the base"
	mirror=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' | awk '$2 == "bookworm" && m == "" {m = $1} END {print m}')
	mirror=${mirror:-http://deb.debian.org/debian/}
	log "debootstrap --variant=minbase bookworm from $mirror into $BASE"
	mkdir -p "$CACHE"
	awk -v d="$BASE.tmp/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r umount -l
	rm -rf --one-file-system "$BASE.tmp"
	debootstrap --variant=minbase bookworm "$BASE.tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
	rm -f "$BASE.tmp/etc/apt/sources.list"
	cat >"$BASE.tmp/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian/}/debian-security/
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	rm -rf --one-file-system "$BASE"
	mv "$BASE.tmp" "$BASE"
	echo "$BASE_RECIPE" >"$BASE.recipe"
fi

STEP="copy the base"
WORK=$(mktemp -d /var/tmp/refreshd-pristine.XXXXXX)
RUNROOT=$WORK/root
cleanup() {
	local rc=$?
	trap - ERR
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h/$NAME" ] || continue
		find "/sys/fs/cgroup/$h/$NAME" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	if [ "${PRISTINE_KEEP:-}" = 1 ]; then
		log "kept the root filesystem: $RUNROOT"
	else
		# What a container left mounted in its root (none should be) would stop the removal.
		awk -v d="$WORK/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r umount -l || true
		rm -rf --one-file-system "$WORK" || log "could not remove $WORK"
	fi
	exit $rc
}
trap cleanup EXIT
cp -a "$BASE" "$RUNROOT"
if [ "$SOURCES" != deb822 ]; then
	# The same sources in the classic one-line form.
	awk '/^URIs:/ {u = $2} /^Suites:/ {for (i = 2; i <= NF; i++) print "deb " u " " $i " main"}' \
		"$RUNROOT/etc/apt/sources.list.d/debian.sources" >"$RUNROOT/etc/apt/sources.list"
	[ "$SOURCES" = both ] || rm "$RUNROOT/etc/apt/sources.list.d/debian.sources"
fi

# What the machine kind adds to a fresh Debian: its certificate authorities (trusted once the
# README's prerequisites install ca-certificates), Go (bound below), Go's caches (below).
mkdir -p "$RUNROOT/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$RUNROOT/usr/local/share/ca-certificates/" 2>/dev/null || true

# The README's prerequisites block, verbatim (between its markers).
STEP="read the README's prerequisites"
prereq=$(awk '/<!-- pristine: prerequisites/ {on = 1; next} on && /^```sh$/ {inblock = 1; next} inblock && /^```$/ {exit} inblock {print}' "$ROOT/README.md")
[ -n "$prereq" ] || die "README.md has no sh block after a '<!-- pristine: prerequisites' marker"

case $TEST in
short) test_cmd="make test-short" ;;
full) test_cmd="make test" ;;
esac
cat >"$RUNROOT/root/pristine-run.sh" <<EOF
set -Eeuo pipefail
phase() { printf '\n== pristine: %s (%s)\n' "\$1" "load \$(cut -d' ' -f1-3 /proc/loadavg)"; PHASE=\$1; T0=\$(date +%s); }
took() { printf '== pristine: %s took %ss\n' "\$PHASE" "\$((\$(date +%s) - T0))" | tee -a /root/pristine-times; }
trap 'printf "== pristine: phase \"%s\" failed (exit %s)\n" "\$PHASE" "\$?"' ERR
cd /root
phase "README prerequisites"
$prereq
took
phase "git clone"
git clone -q file:///mnt/origin.git refreshd
cd refreshd
git checkout -q $COMMIT
took
phase "make demo"
make demo
took
phase "$test_cmd"
$test_cmd
took
EOF

# Go's caches from the host, read-only: the module download cache served as a file:// proxy
# tried before the real one, the build cache as an overlay whose writes stay in WORK.
gomodcache=$(go env GOMODCACHE)
gocache=$(go env GOCACHE)
binds=(--bind-ro=/usr/local/go --bind-ro="$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)":/mnt/origin.git)
goproxy=$(go env GOPROXY)
if [ -d "$gomodcache/cache/download" ]; then
	binds+=(--bind-ro="$gomodcache/cache/download":/mnt/host-gomod)
	goproxy=file:///mnt/host-gomod,$goproxy
fi
if [ -d "$gocache" ]; then
	mkdir -p "$WORK/gocache-upper" "$RUNROOT/root/.cache/go-build"
	binds+=(--overlay="$gocache:$WORK/gocache-upper:/root/.cache/go-build")
fi
envs=(--setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin
	--setenv=HOME=/root --setenv=LANG=C.UTF-8 --setenv=DEBIAN_FRONTEND=noninteractive
	--setenv=GOPROXY="$goproxy" --setenv=GOSUMDB="$(go env GOSUMDB)")
for v in SSL_CERT_FILE SSL_CERT_DIR NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO CURL_CA_BUNDLE REQUESTS_CA_BUNDLE; do
	[ -z "${!v:-}" ] || envs+=(--setenv="$v=${!v}")
done

# nspawn without a host systemd (--keep-unit --register=no) splits the cgroup it starts in:
# it gets one of its own. Unified cgroups inside, as a stock Debian 12 has (buildkitd's runc
# creates cgroups). The host's network: the container reaches the package registries.
# nspawn's own seccomp filter refuses the keyring calls and bpf(), which runc needs to start
# a build step's container (its session keyring, its device cgroup program) and a fresh
# machine allows: the container allows them too.
cgprocs=()
for h in systemd unified; do
	[ -d "/sys/fs/cgroup/$h" ] || continue
	mkdir -p "/sys/fs/cgroup/$h/$NAME"
	cgprocs+=("/sys/fs/cgroup/$h/$NAME/cgroup.procs")
done
STEP="run the README's commands in the container (commit ${COMMIT:0:12}, test: $test_cmd, apt sources: $SOURCES)"
log "$STEP"
t0=$(date +%s)
rc=0
CGPROCS="${cgprocs[*]}" SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 timeout -k 30s "${PRISTINE_TIMEOUT:-40m}" \
	sh -c 'for f in $CGPROCS; do echo $$ >"$f"; done; exec systemd-nspawn "$@"' sh \
	-q -D "$RUNROOT" -M "$NAME" --register=no --keep-unit --as-pid2 --resolv-conf=copy-host \
	--system-call-filter='add_key keyctl request_key bpf' \
	"${binds[@]}" "${envs[@]}" -- bash /root/pristine-run.sh || rc=$?
[ ! -f "$RUNROOT/root/pristine-times" ] || sed 's/^== pristine: /  /' "$RUNROOT/root/pristine-times" >&2
if [ $rc != 0 ]; then
	die "exit $rc after $(($(date +%s) - t0))s"
fi
log "the README's commands passed on a pristine Debian 12 in $(($(date +%s) - t0))s (commit ${COMMIT:0:12})"
