#!/usr/bin/env bash
# pools.sh: what node pools buy (issue 13). Times `refreshd run --local` (the real binary) on
# the real stack: scripts/stack.sh's two buildkitd nodes plus two more started here, so two
# nodes are pinned to linux/amd64 and two to linux/386 (native on an amd64 kernel).
#
#   1. 4 Pythons x 2 platforms, concurrency 4 per platform: a builder with 1 node per
#      platform vs the same with 2 nodes per platform. Prints pool/single (target <= 0.6).
#   2. three such plans at once on one 4-node builder: total wall time vs the ideal, the sum
#      of the builds' own times (step time minus its wait for a node slot, from the logs)
#      divided by the 4 nodes. Prints wall/ideal (target <= 1.1).
#
# Every build is cold: a fresh NONCE build arg and a fresh cache repository per run. Each
# build's RUN sleeps SLEEP seconds (default 20): all nodes share this machine's 2 cores, so
# the RUN stands in for work done on a node's own machine rather than competing for them,
# and 20 s rather than 3 keeps each build's fixed cost here (a docker CLI start, the
# registry reads, BuildKit's cache export: about 1.5 s, mostly CPU these 4 nodes share) from
# standing in for what real builds, an hour each, do not have. A warm-up run (one Python)
# provisions each builder and pulls the base first.
#
#   bench/pools.sh       SLEEP=20 by default; REFRESHD=PATH times that binary;
#                        KEEP_LOGS=DIR keeps the runs' and the daemon's logs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLEEP=${SLEEP:-20}

DIR=$(mktemp -d /tmp/refreshd-bench-pools.XXXXXX)
EXTRA_PIDS=()
cleanup() {
	for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${EXTRA_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
	bash "$ROOT/scripts/stack.sh" purge "$DIR" >/dev/null 2>&1 || rm -rf "$DIR"
}
trap cleanup EXIT

# The binary under test (REFRESHD if set, else built from this tree) and the stack.
. "$ROOT/bench/lib.sh"
stack_up

# Two more nodes, with the stack's buildkitd config, their own roots and OTEL sockets.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for i in 2 3; do
	port=$(free_port)
	mkdir -p "$DIR/bench-node$i"
	buildkitd --config "$DIR/buildkit/buildkitd.toml" --root "$DIR/bench-node$i/root" \
		--addr "tcp://127.0.0.1:$port" --otel-socket-path "$DIR/bench-node$i/otel.sock" \
		>"$DIR/bench-node$i/log" 2>&1 &
	EXTRA_PIDS+=($!)
	for _ in $(seq 1 150); do
		buildctl --addr "tcp://127.0.0.1:$port" debug workers >/dev/null 2>&1 && break
		sleep 0.1
	done
	buildctl --addr "tcp://127.0.0.1:$port" debug workers >/dev/null
	eval "NODE$i=tcp://127.0.0.1:$port"
done

CTX=$DIR/bench-context
mkdir -p "$CTX" "$DIR/plans"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $REGISTRY/base/busybox:1
ARG PYTHON
ARG NONCE
RUN sleep $SLEEP; echo "\$PYTHON \$NONCE" > /built
DOCKERFILE

# write_plan NAME BUILDER NODES NONCE (into PLANS, default DIR/plans): PYTHONS (default 4)
# Pythons x 2 platforms on BUILDER with NODES (1 or 2 per platform).
write_plan() {
	local name=$1 builder=$2 per=$3 nonce=$4 pythons=${PYTHONS:-'"3.10", "3.11", "3.12", "3.13"'}
	{
		cat <<EOF
plan: $name
timeout: 30m
workdir: $CTX
env:
  DOCKER_CONFIG: $DOCKER_CONFIG
builders:
  - name: $builder
    driver: remote
    emulation: forbid
    nodes:
      - { name: ${builder}0, endpoint: "$BUILDKIT_NODE0", platform: linux/amd64 }
      - { name: ${builder}1, endpoint: "$BUILDKIT_NODE1", platform: linux/386 }
EOF
		if [ "$per" = 2 ]; then
			cat <<EOF
      - { name: ${builder}2, endpoint: "$NODE2", platform: linux/amd64 }
      - { name: ${builder}3, endpoint: "$NODE3", platform: linux/386 }
EOF
		fi
		cat <<EOF
steps:
  - id: cache
    matrix: { python: [$pythons] }
    concurrency: 4
    buildx_cache:
      builder: $builder
      context: "."
      build_args: { PYTHON: "{{ .python }}", NONCE: "$nonce" }
      platforms: [linux/amd64, linux/386]
      ref: "$REGISTRY/bench/$nonce/python{{ .python }}"
EOF
	} >"${PLANS:-$DIR/plans}/$name.yaml"
}

now() { date +%s.%N; }

run() {
	"$REFRESHD" run --local --state "$DIR/state" --plain-http-registry "$REGISTRY" "$DIR/plans/$1.yaml" >"$DIR/run-$1.log" 2>&1 || {
		tail -n 40 "$DIR/run-$1.log" >&2
		echo "refreshd run --local $1 failed (log above)" >&2
		exit 1
	}
}

# seconds D: a Go duration (1m2.5s, 2.345s, 812ms) in seconds.
secs() {
	awk -v d="$1" 'BEGIN { t = 0; while (match(d, /^[0-9.]+(h|ms|m|s|µs|us)/)) { v = substr(d, RSTART, RLENGTH); d = substr(d, RLENGTH + 1);
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
		t += (u == "h" ? n * 3600 : u == "m" ? n * 60 : u == "s" ? n : u == "ms" ? n / 1000 : n / 1e6) } print t }'
}

# build_seconds LOG: the builds' own time: each cache step's duration minus its slot wait.
build_seconds() {
	local total=0 d
	for d in $(grep 'msg="step finished"' "$1" | grep -E 'step="?cache\[' | sed -n 's/.*duration=\([^ ]*\).*/\1/p'); do
		total=$(echo "$total + $(secs "$d")" | bc -l)
	done
	for d in $(grep 'msg="node slot acquired"' "$1" | sed -n 's/.*waited=\([^ ]*\).*/\1/p'); do
		total=$(echo "$total - $(secs "$d")" | bc -l)
	done
	echo "$total"
}

PYTHONS='"3.12"' write_plan warm1 single 1 warm1 && run warm1
PYTHONS='"3.12"' write_plan warm2 pool 2 warm2 && run warm2
PYTHONS='"3.12"' write_plan warm3 shared 2 warm3 && run warm3

echo "SLEEP=$SLEEP; load before: $(uptime)"
# 1. one node per platform vs two.
write_plan single-r single 1 "s$RANDOM"
write_plan pool-r pool 2 "p$RANDOM"
t0=$(now); run single-r; t1=$(now); run pool-r; t2=$(now)
s=$(echo "$t1 - $t0" | bc -l)
p=$(echo "$t2 - $t1" | bc -l)
printf '4 Pythons x 2 platforms: 1 node/platform %.2fs, 2 nodes/platform %.2fs, ratio %.2f (target <= 0.60)\n' "$s" "$p" "$(echo "$p / $s" | bc -l)"

# 2. three plans at once on one 4-node builder, through one daemon (one state directory:
# the node slots are its flocks; run --local takes the state directory for itself).
mkdir -p "$DIR/share-plans"
for i in 1 2 3; do PLANS=$DIR/share-plans write_plan "share$i" shared 2 "x$i$RANDOM"; done
"$REFRESHD" daemon --plans "$DIR/share-plans" --state "$DIR/dstate" --socket "$DIR/d.sock" \
	--plain-http-registry "$REGISTRY" >"$DIR/daemon.log" 2>&1 &
DAEMON=$!
EXTRA_PIDS+=("$DAEMON")
for _ in $(seq 1 100); do [ -S "$DIR/d.sock" ] && break; sleep 0.1; done
t0=$(now)
pids=()
for i in 1 2 3; do "$REFRESHD" run --socket "$DIR/d.sock" --wait "share$i" >"$DIR/run-share$i.log" 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || { tail -n 40 "$DIR/daemon.log" >&2; echo "a shared run failed" >&2; exit 1; }; done
t1=$(now)
kill -TERM "$DAEMON"
wait "$DAEMON" || true
wall=$(echo "$t1 - $t0" | bc -l)
busy=$(build_seconds "$DIR/daemon.log")
ideal=$(echo "$busy / 4" | bc -l)
printf 'three plans on one 4-node builder: wall %.2fs, ideal %.2fs (build time %.2fs / 4 nodes), ratio %.2f (target <= 1.10)\n' \
	"$wall" "$ideal" "$busy" "$(echo "$wall / $ideal" | bc -l)"
echo "load after: $(uptime)"
