#!/usr/bin/env bash
# Scale: one plan whose matrix step makes N instances of /bin/true, run by the daemon, at
# N = 1,000 and N = 10,000 (the instance cap). Prints the time per instance at each size
# (linear scaling: the two should be close) and the daemon's peak resident memory during
# the 10,000-instance run (target under 100 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/refreshd}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/refreshd
tmp=$(mktemp -d)
daemon_pid=""
cleanup() { [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

plan() { # NAME N
  { echo "plan: $1"; echo "keep_runs: 1"; echo "concurrency: 4"; echo "steps:"
    echo "  - id: t"; printf '    matrix: {n: ['; seq -s, 1 "$2" | tr -d '\n'; echo ']}'
    echo "    run: [/bin/true]"; } >"$tmp/plans/$1.yaml"
}
mkdir -p "$tmp/plans"
plan scale1k ${SMALL:-1000}
plan scale10k ${LARGE:-10000}
"$BIN" daemon --plans "$tmp/plans" --state "$tmp/state" --socket "$tmp/sock" 2>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$tmp/sock" ] && break; sleep 0.1; done

peak_kb=0
watch_rss() { # samples VmHWM (the kernel's peak) until the run ends
  while kill -0 "$daemon_pid" 2>/dev/null && [ ! -e "$tmp/done" ]; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak_kb" ] && peak_kb=$v && echo "$peak_kb" >"$tmp/peak"
    sleep 0.2
  done
}
run() { # NAME N
  local t0 t1
  t0=$(date +%s%N)
  "$BIN" run --wait --socket "$tmp/sock" "$1" >/dev/null 2>"$tmp/run.err" || { tail -5 "$tmp/run.err"; grep -m5 "level=ERROR" "$tmp/daemon.log"; exit 1; }
  t1=$(date +%s%N)
  awk -v d=$((t1 - t0)) -v n="$2" 'BEGIN { printf "%6d instances: %.2f s, %.3f ms per instance\n", n, d / 1e9, d / n / 1e6 }'
}
run scale1k ${SMALL:-1000}
watch_rss & watcher=$!
run scale10k ${LARGE:-10000}
touch "$tmp/done"; wait "$watcher" 2>/dev/null || true
awk -v kb="$(cat "$tmp/peak" 2>/dev/null || echo 0)" 'BEGIN { printf "daemon peak RSS %.1f MiB (target < 100 MiB)\n", kb / 1024 }'
