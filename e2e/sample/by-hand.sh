#!/usr/bin/env bash
# by-hand.sh [DIR] runs, with raw commands, what plans/demo.yaml asks refreshd to do, against
# the stack of `scripts/stack.sh up DIR` (default /tmp/refreshd-demo), and prints how long
# each piece took. It is the reference the daemon's demo is compared with, and a quick way to
# see the sample's cache behaviour: run it twice and the second run is the cached path.
#
#   PYTHONS="3.11 3.12"   Python versions (the plan's vars.python)
#   UPGRADE=true          the upgrade switch (--upgrade-to-newer-dependencies)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-/tmp/refreshd-demo}
PYTHONS=${PYTHONS:-3.11 3.12}
UPGRADE=${UPGRADE:-true}
MODES="constraints constraints-source-providers constraints-no-providers"
PLATFORMS="linux/amd64 linux/386"
BUILDER=demo_cache

eval "$("$ROOT/scripts/stack.sh" env "$DIR")"
cd "$REFRESHD_DEMO_PROJECT"
log=$DIR/logs/by-hand
mkdir -p "$log"

now() { date +%s.%N; }
# timed LABEL CMD...: run CMD with its output in the log directory; print its duration.
timed() {
	local label=$1 s rc=0
	shift
	s=$(now)
	"$@" >"$log/${label//[^A-Za-z0-9.-]/_}.log" 2>&1 || rc=$?
	printf '%-48s %6.2fs%s\n' "$label" "$(echo "$(now) - $s" | bc)" "$([ $rc = 0 ] || echo "  FAILED ($rc), log: $log/${label//[^A-Za-z0-9.-]/_}.log")"
	return $rc
}

# The builder, as refreshd provisions it: two remote nodes, each pinned to its platform.
if ! docker buildx inspect "$BUILDER" >/dev/null 2>&1; then
	docker buildx create --name "$BUILDER" --driver remote --node "${BUILDER}0" \
		--platform linux/amd64 "$BUILDKIT_NODE0" >/dev/null
	docker buildx create --name "$BUILDER" --append --node "${BUILDER}1" \
		--platform linux/386 "$BUILDKIT_NODE1" >/dev/null
fi
docker buildx inspect --bootstrap "$BUILDER" >/dev/null

build=(docker buildx build --builder "$BUILDER" --file Dockerfile.ci --progress plain
	--build-arg "BASE_IMAGE=$REGISTRY/base/busybox:1" --build-arg "UPGRADE=$UPGRADE")

echo "== build-ci-images"
for py in $PYTHONS; do
	timed "build-ci-images[python=$py]" "${build[@]}" --platform linux/amd64 --target ci \
		--build-arg "PYTHON_VERSION=$py" --tag "$REGISTRY/demo/main/ci/python$py:latest" --push .
done

echo "== generate-constraints"
for py in $PYTHONS; do
	for mode in $MODES; do
		timed "generate-constraints[python=$py,mode=$mode]" "${build[@]}" --platform linux/amd64 \
			--target constraints --no-cache-filter constraints-gen \
			--build-arg "PYTHON_VERSION=$py" --build-arg "CONSTRAINTS_MODE=$mode" \
			--output "type=local,dest=files/constraints-$py/$mode" .
	done
done

echo "== publish-constraints"
clone=$DIR/by-hand-constraints
rm -rf "$clone"
git clone -q --branch constraints-main "$CONSTRAINTS_REPO" "$clone"
cp files/constraints-*/*/constraints*.txt "$clone/"
# A change only in "#" lines is no change (every header carries its generation time).
if git -C "$clone" diff -G '^[^#]' --quiet; then
	echo "no constraint changed (only headers): no commit"
else
	git -C "$clone" diff --stat -G '^[^#]'
	git -C "$clone" add .
	git -C "$clone" -c user.name=by-hand -c user.email=by-hand@localhost commit -q -m "Updating constraints (by-hand.sh)"
	git -C "$clone" push -q origin constraints-main
	echo "pushed $(git -C "$clone" rev-parse --short HEAD) to constraints-main"
fi

echo "== refresh-cache (per Python; the platforms side by side, one per node)"
for py in $PYTHONS; do
	pids=()
	for plat in $PLATFORMS; do
		ref=$REGISTRY/demo/main/ci/python$py:cache-${plat//\//-}
		timed "refresh-cache[python=$py][$plat]" "${build[@]}" --platform "$plat" --target ci \
			--build-arg "PYTHON_VERSION=$py" \
			--cache-from "type=registry,ref=$ref" --cache-to "type=registry,ref=$ref,mode=max" . &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
done

echo "== verify-cache"
accept='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json'
for py in $PYTHONS; do
	for plat in $PLATFORMS; do
		tag=cache-${plat//\//-}
		digest=$(curl -fsSI -H "Accept: $accept" "http://$REGISTRY/v2/demo/main/ci/python$py/manifests/$tag" |
			tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
		[ -n "$digest" ] || { echo "MISSING $REGISTRY/demo/main/ci/python$py:$tag" >&2; exit 1; }
		echo "$REGISTRY/demo/main/ci/python$py:$tag $digest"
	done
done
