#!/usr/bin/env bash
# fleet.sh: what a builder of 1, 10 and 100 pooled nodes costs refreshd (README "A fleet"),
# measured with the real binary on the real stack, not simulated:
#
#   1. Provisioning. A builder of N nodes pinned to linux/amd64 (all N reach the stack's
#      node0 buildkitd: buildx and refreshd treat them as N nodes, each with its own
#      single-node builder BUILDER.NODE, its own `buildx ls` entry and its own buildctl
#      probe) and a step that uses the builder. `refreshd run --local` twice: the first run
#      creates the N+1 builders, the second finds them unchanged. Prints the provisioning
#      step's duration and the docker buildx commands issued (through a wrapper on PATH).
#   2. Registry load. One cold cache build (two layers on the stack's busybox base) and the
#      registry requests it made (the registry's access log, this build's repository only),
#      by method: what each of N nodes building at once adds.
#
# Nodes sharing one buildkitd answer faster than N machines over a network would: the
# numbers are refreshd's and buildx's own cost per node, a floor for a real fleet.
#
#   bench/fleet.sh       SIZES="1 10 100" by default; REFRESHD=PATH times that binary
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-1 10 100}

DIR=$(mktemp -d /tmp/refreshd-bench-fleet.XXXXXX)
cleanup() { [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$DIR"/run-*.log "$KEEP_LOGS"/ 2>/dev/null; bash "$ROOT/scripts/stack.sh" purge "$DIR" >/dev/null 2>&1 || rm -rf "$DIR"; }
trap cleanup EXIT

. "$ROOT/bench/lib.sh"
stack_up

# Every docker invocation is logged, then run for real.
mkdir -p "$DIR/bin" "$DIR/plans" "$DIR/ctx"
DOCKER_LOG=$DIR/docker.log
cat >"$DIR/bin/docker" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>'$DOCKER_LOG'
exec '$(command -v docker)' "\$@"
EOF
chmod +x "$DIR/bin/docker"
cat >"$DIR/ctx/Dockerfile" <<EOF
FROM $REGISTRY/base/busybox:1
ARG NONCE
RUN echo "\$NONCE" > /a
RUN echo "\$NONCE" > /b
EOF

# provision_plan NAME N: a builder of N nodes on node0, used by one step.
provision_plan() {
	local name=$1 n=$2 i
	{
		printf 'plan: %s\ntimeout: 30m\nworkdir: %s\nenv:\n  DOCKER_CONFIG: %s\n' "$name" "$DIR/ctx" "$DOCKER_CONFIG"
		printf 'builders:\n  - name: %s\n    driver: remote\n    emulation: forbid\n    nodes:\n' "$name"
		for i in $(seq 0 $((n - 1))); do
			printf '      - { name: %s_%d, endpoint: "%s", platform: linux/amd64 }\n' "$name" "$i" "$BUILDKIT_NODE0"
		done
		printf 'steps:\n  - id: use\n    builder: %s\n    run: ["true"]\n' "$name"
	} >"$DIR/plans/$name.yaml"
}

run() {
	PATH=$DIR/bin:$PATH "$REFRESHD" run --local --state "$DIR/state" --plain-http-registry "$REGISTRY" "$DIR/plans/$1.yaml" >"$DIR/run-$1.log" 2>&1 || {
		tail -n 30 "$DIR/run-$1.log" >&2
		echo "refreshd run --local $1 failed" >&2
		exit 1
	}
}

# provisioned NAME: "DURATION, L ls, C create" of the last run of NAME.
provisioned() {
	local d
	d=$(grep 'msg="step finished"' "$DIR/run-$1.log" | grep 'step=provision\[' | tail -1 | sed -n 's/.*duration=\([^ ]*\).*/\1/p')
	printf '%s, %d ls, %d create' "$d" "$(grep -c '^buildx ls ' "$DOCKER_LOG" || true)" "$(grep -c '^buildx create ' "$DOCKER_LOG" || true)"
}

echo "load before: $(uptime)"
for n in $SIZES; do
	name=fleet$n
	provision_plan "$name" "$n"
	: >"$DOCKER_LOG"
	run "$name"
	first=$(provisioned "$name")
	: >"$DOCKER_LOG"
	run "$name"
	printf '%3d nodes: first provisioning %s; unchanged %s\n' "$n" "$first" "$(provisioned "$name")"
done

# 2. One cold build's registry requests.
nonce=r$RANDOM$RANDOM
cat >"$DIR/plans/registry.yaml" <<EOF
plan: registry
timeout: 30m
workdir: $DIR/ctx
env:
  DOCKER_CONFIG: $DOCKER_CONFIG
builders:
  - name: reg
    driver: remote
    nodes:
      - { name: reg0, endpoint: "$BUILDKIT_NODE0", platform: linux/amd64 }
steps:
  - id: cache
    buildx_cache:
      builder: reg
      context: "."
      build_args: { NONCE: "$nonce" }
      platforms: [linux/amd64]
      ref: "$REGISTRY/fleet/$nonce/python"
EOF
run registry
log=$(ls "$DIR"/logs/registry*.log | head -1)
printf 'one cold cache build, registry requests for its repository: %s\n' \
	"$(grep -F "/v2/fleet/$nonce/" "$log" | grep -oE '"(HEAD|GET|PUT|POST|PATCH|DELETE) ' | tr -d '" ' | sort | uniq -c | awk '{ printf "%s%s %s", sep, $2, $1; sep = ", "; t += $1 } END { printf " (%d in all)", t }')"
echo "load after: $(uptime)"
