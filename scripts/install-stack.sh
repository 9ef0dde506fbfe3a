#!/usr/bin/env bash
# install-stack.sh installs the real build stack refreshd is tested against and demoed on:
# runc, docker-registry, htpasswd, busybox-static, git, promtool, chromium (Debian), buildx and
# buildkitd/buildctl and staticcheck (built from source through the Go module proxy),
# ajv-cli (npm), and systemd-nspawn with a debootstrapped Debian 12 root filesystem for the
# real-systemd test.
#
# Built binaries are cached in $REFRESHD_STACK_CACHE (default /var/cache/refreshd-stack) so a
# second call takes seconds. Everything is idempotent; nothing is downloaded but packages.
set -euo pipefail

BUILDX_VERSION=${BUILDX_VERSION:-v0.38.2}
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.34.2}
# staticcheck 2026.2.2 (v0.8.2) type-checks go1.26 code; make check runs it.
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
CACHE=${REFRESHD_STACK_CACHE:-/var/cache/refreshd-stack}
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
BIN=$CACHE/bin
mkdir -p "$BIN" "$PLUGIN_DIR"

log() { printf 'install-stack: %s\n' "$*" >&2; }

need_apt=()
for pair in runc:runc docker-registry:docker-registry htpasswd:apache2-utils \
  busybox:busybox-static git:git promtool:prometheus systemd-analyze:systemd jq:jq bc:bc \
  python3:python3 pytest-3:python3-pytest awk:mawk lintian:lintian make:make; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# Headless Chromium for the dashboard's browser test (e2e/refresh TestDashboardInBrowser),
# with one font family so its screenshots show text, not boxes.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian registry and prometheus packages start their services on install where an
  # init system runs; tests and the demo start their own. Stop only those services, only
  # right after installing them: never a registry that a running test or demo started.
  for svc in docker-registry prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
fi

if [ ! -x "$BIN/docker-buildx-$BUILDX_VERSION" ]; then
  log "building buildx $BUILDX_VERSION (a few minutes)"
  GOBIN="$BIN/tmp-buildx" go install "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION"
  mv "$BIN/tmp-buildx/buildx" "$BIN/docker-buildx-$BUILDX_VERSION"
  rmdir "$BIN/tmp-buildx"
fi
install -m 0755 "$BIN/docker-buildx-$BUILDX_VERSION" "$PLUGIN_DIR/docker-buildx"

if [ ! -x "$BIN/buildkitd-$BUILDKIT_VERSION" ] || [ ! -x "$BIN/buildctl-$BUILDKIT_VERSION" ]; then
  log "building buildkitd and buildctl $BUILDKIT_VERSION (a few minutes)"
  # buildkit's go.mod has exclude directives, so `go install pkg@version` refuses it; a
  # throw-away module that requires it builds the same commands.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (
    cd "$tmp"
    go mod init refreshd-stack-tools >/dev/null 2>&1
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
GO
    go get "github.com/moby/buildkit@$BUILDKIT_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    GOBIN="$tmp/bin" go install github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
  )
  mv "$tmp/bin/buildkitd" "$BIN/buildkitd-$BUILDKIT_VERSION"
  mv "$tmp/bin/buildctl" "$BIN/buildctl-$BUILDKIT_VERSION"
fi
install -m 0755 "$BIN/buildkitd-$BUILDKIT_VERSION" /usr/local/bin/buildkitd
install -m 0755 "$BIN/buildctl-$BUILDKIT_VERSION" /usr/local/bin/buildctl

if [ ! -x "$BIN/staticcheck-$STATICCHECK_VERSION" ]; then
  log "building staticcheck $STATICCHECK_VERSION"
  GOBIN="$BIN/tmp-staticcheck" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  mv "$BIN/tmp-staticcheck/staticcheck" "$BIN/staticcheck-$STATICCHECK_VERSION"
  rmdir "$BIN/tmp-staticcheck"
fi
install -m 0755 "$BIN/staticcheck-$STATICCHECK_VERSION" /usr/local/bin/staticcheck

if ! command -v ajv >/dev/null 2>&1; then
  log "npm install -g ajv-cli ajv-formats"
  npm install -g --silent ajv-cli@5 ajv-formats@3 >/dev/null 2>&1
fi

# yaml-language-server: the schema-parity test drives it as an editor does (LSP on stdio).
if ! command -v yaml-language-server >/dev/null 2>&1; then
  log "npm install -g yaml-language-server"
  npm install -g --silent yaml-language-server@1.25.0 >/dev/null 2>&1
fi

# A Debian 12 root filesystem for the real-systemd test (e2e/systemd): systemd 252 boots in
# it as PID 1 under systemd-nspawn. Built once with debootstrap from the mirror apt already
# uses (about 6 minutes), then only read: the test boots it with --volatile=overlay.
ROOTFS=$CACHE/sysd-rootfs-bookworm
ROOTFS_PACKAGES=systemd,systemd-sysv,dbus,git,procps,iproute2,runc,ca-certificates,psmisc,busybox-static,docker-registry,curl,file
if ! command -v systemd-nspawn >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  log "apt-get install systemd-container debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends systemd-container debootstrap >/dev/null
fi
if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ] || [ "$(cat "$ROOTFS.packages" 2>/dev/null)" != "$ROOTFS_PACKAGES" ]; then
  mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | awk '{print $2; exit}')
  log "debootstrap bookworm from ${mirror:-the default mirror} into $ROOTFS (about 6 minutes, once)"
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" bookworm "$ROOTFS.tmp" ${mirror:+"$mirror"} >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  rm -rf "$ROOTFS" && mv "$ROOTFS.tmp" "$ROOTFS"
  echo "$ROOTFS_PACKAGES" >"$ROOTFS.packages"
fi

log "ready: $(docker buildx version 2>/dev/null | head -1); buildkitd $(buildkitd --version | awk '{print $3}'); $(docker-registry --version 2>/dev/null | head -1)"
