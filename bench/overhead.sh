#!/usr/bin/env bash
# Orchestration overhead: 200 sequential /bin/true steps under `refreshd run --local`
# (each its own process group, log file, history record) against a bash loop running
# /bin/true 200 times. Prints both wall times, the ratio, and the overhead per step
# (target <= 1 ms). Best of REPEAT runs each, to keep a busy machine's noise out.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/refreshd}
STEPS=${STEPS:-200}
REPEAT=${REPEAT:-3}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/refreshd
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
{
  echo "plan: overhead"
  echo "keep_runs: 1"
  echo "steps:"
  prev=""
  for i in $(seq 1 "$STEPS"); do
    echo "  - id: s$i"
    [ -n "$prev" ] && echo "    needs: [$prev]"
    echo "    run: [/bin/true]"
    prev="s$i"
  done
} >"$tmp/overhead.yaml"

now() { date +%s%N; }
best() { sort -n | head -1; }

for _ in $(seq "$REPEAT"); do
  t0=$(now)
  "$BIN" run --local --state "$tmp/state" "$tmp/overhead.yaml" >/dev/null 2>"$tmp/log" || { cat "$tmp/log"; exit 1; }
  echo $(( $(now) - t0 ))
done | best >"$tmp/refreshd_ns"

for _ in $(seq "$REPEAT"); do
  t0=$(now)
  bash -c "for i in \$(seq $STEPS); do /bin/true; done"
  echo $(( $(now) - t0 ))
done | best >"$tmp/bash_ns"

awk -v r="$(cat "$tmp/refreshd_ns")" -v b="$(cat "$tmp/bash_ns")" -v n="$STEPS" 'BEGIN {
  printf "refreshd: %d sequential /bin/true steps in %.1f ms\n", n, r / 1e6
  printf "bash:     %d /bin/true in %.1f ms\n", n, b / 1e6
  printf "ratio %.2f, overhead %.2f ms per step (target <= 1 ms)\n", r / b, (r - b) / n / 1e6
}'
