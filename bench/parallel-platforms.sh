#!/usr/bin/env bash
# parallel-platforms.sh: the same 2 Python x 2 platform cache refresh, once with one platform
# after another (what Breeze's --prepare-buildx-cache does) and once with both platforms at
# the same time, each on its own native node (what refreshd's buildx_cache step does).
# Prints both wall times and their ratio; the target is parallel <= 0.6 x sequential.
#
# Real stack (scripts/stack.sh in a temp directory): two buildkitd nodes pinned to
# linux/amd64 and linux/386 (both native on an amd64 kernel), a docker-registry, a busybox
# base image. Each build has a CPU-bound RUN of about 2 s (LOOPS iterations of a busybox
# shell loop) and pushes a registry cache (cache-<os>-<arch>, mode=max). A fresh NONCE per
# build busts the cache so every RUN really executes.
#
#   bench/parallel-platforms.sh            ROUNDS=3 LOOPS=2000000 by default
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
LOOPS=${LOOPS:-2000000}
PYTHONS=(3.11 3.12)
PLATFORMS=(linux/amd64 linux/386)
BUILDER=bench_platforms

DIR=$(mktemp -d /tmp/refreshd-bench-platforms.XXXXXX)
cleanup() {
	bash "$ROOT/scripts/stack.sh" purge "$DIR" >/dev/null 2>&1 || rm -rf "$DIR"
}
trap cleanup EXIT

bash "$ROOT/scripts/stack.sh" up "$DIR" >"$DIR.up.log" 2>&1 || {
	cat "$DIR.up.log" >&2
	exit 1
}
rm -f "$DIR.up.log"
eval "$(bash "$ROOT/scripts/stack.sh" env "$DIR")"

docker buildx create --name "$BUILDER" --driver remote --node "${BUILDER}0" --platform linux/amd64 "$BUILDKIT_NODE0" >/dev/null
docker buildx create --name "$BUILDER" --driver remote --append --node "${BUILDER}1" --platform linux/386 "$BUILDKIT_NODE1" >/dev/null

CTX=$DIR/bench-context
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $REGISTRY/base/busybox:1
ARG PYTHON
ARG NONCE
RUN i=0; while [ \$i -lt $LOOPS ]; do i=\$((i+1)); done; echo "\$PYTHON \$NONCE" > /built
DOCKERFILE

# build PYTHON PLATFORM NONCE: one per-platform cache build, as refreshd issues it.
build() {
	local py=$1 platform=$2 nonce=$3 tag
	tag=cache-${platform//\//-}
	docker buildx build --builder "$BUILDER" --platform "$platform" --progress quiet \
		--build-arg "PYTHON=$py" --build-arg "NONCE=$nonce" \
		--cache-from "type=registry,ref=$REGISTRY/bench/ci/python$py:$tag" \
		--cache-to "type=registry,ref=$REGISTRY/bench/ci/python$py:$tag,mode=max" \
		--output type=cacheonly "$CTX" >/dev/null
}

now() { date +%s.%N; }

sequential() {
	local nonce=$1 py p
	for py in "${PYTHONS[@]}"; do
		for p in "${PLATFORMS[@]}"; do build "$py" "$p" "$nonce"; done
	done
}

parallel() {
	local nonce=$1 py p pids
	for py in "${PYTHONS[@]}"; do
		pids=()
		for p in "${PLATFORMS[@]}"; do
			build "$py" "$p" "$nonce" &
			pids+=($!)
		done
		for pid in "${pids[@]}"; do wait "$pid"; done
	done
}

# Warm up: pull the base into both nodes so neither mode pays for it.
parallel warmup

seq_total=0 par_total=0
printf '%-6s %12s %12s %8s\n' round sequential parallel ratio
for r in $(seq 1 "$ROUNDS"); do
	t0=$(now)
	sequential "seq-$r-$RANDOM"
	t1=$(now)
	parallel "par-$r-$RANDOM"
	t2=$(now)
	s=$(echo "$t1 - $t0" | bc -l)
	p=$(echo "$t2 - $t1" | bc -l)
	seq_total=$(echo "$seq_total + $s" | bc -l)
	par_total=$(echo "$par_total + $p" | bc -l)
	printf '%-6s %11.2fs %11.2fs %8.2f\n' "$r" "$s" "$p" "$(echo "$p / $s" | bc -l)"
done

# Every expected cache tag must be in the registry.
for py in "${PYTHONS[@]}"; do
	tags=$(curl -sf "http://$REGISTRY/v2/bench/ci/python$py/tags/list")
	for p in "${PLATFORMS[@]}"; do
		grep -q "\"cache-${p//\//-}\"" <<<"$tags" || {
			echo "missing cache tag for python$py $p: $tags" >&2
			exit 1
		}
	done
done

ratio=$(echo "$par_total / $seq_total" | bc -l)
printf 'total  %11.2fs %11.2fs %8.2f  (2 Python x 2 platforms, %d rounds; target ratio <= 0.60)\n' \
	"$seq_total" "$par_total" "$ratio" "$ROUNDS"
