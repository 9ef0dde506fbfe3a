#!/usr/bin/env bash
# Fan-out: a 4 x 3 matrix of `sleep 1` steps with concurrency 4. 12 one-second steps, 4 at
# a time, make a critical path of 3 s; prints wall time over it (target <= 1.05).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/refreshd}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/refreshd
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/fanout.yaml" <<YAML
plan: fanout
steps:
  - id: nap
    matrix:
      a: ["1", "2", "3", "4"]
      b: ["1", "2", "3"]
    concurrency: 4
    run: [sleep, "1"]
YAML
t0=$(date +%s%N)
"$BIN" run --local --state "$tmp/state" "$tmp/fanout.yaml" >/dev/null 2>"$tmp/log" || { cat "$tmp/log"; exit 1; }
t1=$(date +%s%N)
awk -v ns="$((t1 - t0))" 'BEGIN {
  printf "fan-out 4x3 sleep 1, concurrency 4: wall %.3f s, critical path 3 s, ratio %.3f (target <= 1.05)\n", ns / 1e9, ns / 1e9 / 3
}'
