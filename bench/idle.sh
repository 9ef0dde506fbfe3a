#!/usr/bin/env bash
# Idle cost of the daemon: 10 plans scheduled far in the future, 60 s of nothing.
# Prints resident memory (VmRSS; target <= 20 MiB) and CPU time used during the idle window
# (utime+stime from /proc/PID/stat; target <= 50 ms, i.e. no polling).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/refreshd}
IDLE=${IDLE:-60}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/refreshd
tmp=$(mktemp -d); trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/plans" "$tmp/state"
for i in $(seq 1 10); do
  cat >"$tmp/plans/idle$i.yaml" <<YAML
plan: idle$i
schedule: "0 3 1 1 *"
steps:
  - id: noop
    run: ["true"]
YAML
done
"$BIN" daemon --plans "$tmp/plans" --state "$tmp/state" --socket "$tmp/refreshd.sock" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -S "$tmp/refreshd.sock" ] && break; sleep 0.05; done
[ -S "$tmp/refreshd.sock" ] || { echo "daemon did not start:"; cat "$tmp/log"; exit 1; }
sleep 1
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
sleep "$IDLE"
t1=$(ticks)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
cpu_ms=$(( (t1 - t0) * 1000 / hz ))
# The kernel counts CPU time in clock ticks: the figure is exact to 1000/CLK_TCK ms.
echo "idle daemon, 10 plans, ${IDLE}s: VmRSS $((rss / 1024)).$(( (rss % 1024) * 10 / 1024 )) MiB (target <= 20), CPU ${cpu_ms} ms, $((t1 - t0)) ticks of $((1000 / hz)) ms (target <= 50)"
