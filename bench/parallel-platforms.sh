#!/usr/bin/env bash
# parallel-platforms.sh: what refreshd's buildx_cache step gains by building the platforms
# of one cache at the same time, each on its own native node. It times `refreshd run --local`
# (the real binary: plan loading, provisioning check, emulation guard, buildx, registry
# verification) on two plans of the same 2 Python x 2 platform cache refresh:
#
#   parallel    one buildx_cache step per Python with platforms [linux/amd64, linux/386]:
#               both platforms at once, each on its own node (what refreshd does)
#   sequential  two buildx_cache steps per Python, one per platform, the second `needs` the
#               first: one platform after another (what Breeze's --prepare-buildx-cache does)
#
# Pythons run one after another in both plans (concurrency: 1), so only the platforms
# differ. Prints both wall times and their ratio; the target is parallel <= 0.6 x sequential.
#
# Real stack (scripts/stack.sh in a temp directory): two buildkitd nodes pinned to
# linux/amd64 and linux/386 (both native on an amd64 kernel), a docker-registry, a busybox
# base image. Each build has a CPU-bound RUN of about 2 s (LOOPS iterations of a busybox
# shell loop) and exports a registry cache (cache-<os>-<arch>). Every run is cold: a fresh
# NONCE build arg busts the nodes' cache and a fresh repository per run means no registry
# cache to import. A warm-up run first provisions the builder and pulls the base.
#
#   bench/parallel-platforms.sh            ROUNDS=3 LOOPS=2000000 by default; REFRESHD=PATH
#                                          times that binary instead of building one
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
LOOPS=${LOOPS:-2000000}

DIR=$(mktemp -d /tmp/refreshd-bench-platforms.XXXXXX)
cleanup() {
	bash "$ROOT/scripts/stack.sh" purge "$DIR" >/dev/null 2>&1 || rm -rf "$DIR"
}
trap cleanup EXIT

# The binary under test (REFRESHD if set, else built from this tree) and the stack.
. "$ROOT/bench/lib.sh"
stack_up

CTX=$DIR/bench-context
mkdir -p "$CTX" "$DIR/bench-plans"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $REGISTRY/base/busybox:1
ARG PYTHON
ARG NONCE
RUN i=0; while [ \$i -lt $LOOPS ]; do i=\$((i+1)); done; echo "\$PYTHON \$NONCE" > /built
DOCKERFILE

# header NAME NONCE: the plan's common part: stack paths, builder, vars.
header() {
	cat <<EOF
plan: $1
timeout: 20m
workdir: $CTX
env:
  DOCKER_CONFIG: $DOCKER_CONFIG
vars:
  python: ["3.11", "3.12"]
  nonce: "$2"
builders:
  - name: bench_platforms
    driver: remote
    emulation: forbid
    nodes:
      - { name: bench_platforms0, endpoint: "$BUILDKIT_NODE0", platform: linux/amd64 }
      - { name: bench_platforms1, endpoint: "$BUILDKIT_NODE1", platform: linux/386 }
steps:
EOF
}

# cache_step ID PLATFORMS [NEEDS]: one buildx_cache step per Python, Pythons in turn.
cache_step() {
	local needs=""
	[ -n "${3:-}" ] && needs="needs: [$3]"
	cat <<EOF
  - id: $1
    $needs
    matrix: { python: "{{ .vars.python }}" }
    concurrency: 1
    buildx_cache:
      builder: bench_platforms
      context: "."
      build_args:
        PYTHON: "{{ .python }}"
        NONCE: "{{ .vars.nonce }}"
      platforms: $2
      ref: "$REGISTRY/bench/{{ .vars.nonce }}/python{{ .python }}"
EOF
}

# write_plan MODE NONCE: DIR/bench-plans/MODE-NONCE.yaml. Each run has its own nonce: the
# same nonce twice would let the second run hit the nodes' cache of the first.
write_plan() {
	case $1 in
	parallel)
		header parallel "$2"
		cache_step cache "[linux/amd64, linux/386]"
		;;
	sequential)
		header sequential "$2"
		cache_step cache-amd64 "[linux/amd64]"
		cache_step cache-386 "[linux/386]" cache-amd64
		;;
	esac >"$DIR/bench-plans/$1-$2.yaml"
}

now() { date +%s.%N; }

# run MODE NONCE: refreshd run --local on the MODE plan; fails the bench when the run fails.
run() {
	local plan=$DIR/bench-plans/$1-$2.yaml
	"$REFRESHD" run --local --state "$DIR/state" --plain-http-registry "$REGISTRY" "$plan" >"$DIR/run-$1-$2.log" 2>&1 || {
		tail -n 40 "$DIR/run-$1-$2.log" >&2
		echo "refreshd run --local $plan failed (log above)" >&2
		exit 1
	}
}

write_plan parallel warmup
run parallel warmup

seq_total=0 par_total=0
printf '%-6s %12s %12s %8s\n' round sequential parallel ratio
for r in $(seq 1 "$ROUNDS"); do
	sn=s$r-$RANDOM pn=p$r-$RANDOM
	write_plan sequential "$sn"
	write_plan parallel "$pn"
	t0=$(now)
	run sequential "$sn"
	t1=$(now)
	run parallel "$pn"
	t2=$(now)
	s=$(echo "$t1 - $t0" | bc -l)
	p=$(echo "$t2 - $t1" | bc -l)
	seq_total=$(echo "$seq_total + $s" | bc -l)
	par_total=$(echo "$par_total + $p" | bc -l)
	printf '%-6s %11.2fs %11.2fs %8.2f\n' "$r" "$s" "$p" "$(echo "$p / $s" | bc -l)"
done

ratio=$(echo "$par_total / $seq_total" | bc -l)
printf 'total  %11.2fs %11.2fs %8.2f  (refreshd run --local, 2 Python x 2 platforms, %d rounds; target ratio <= 0.60)\n' \
	"$seq_total" "$par_total" "$ratio" "$ROUNDS"
