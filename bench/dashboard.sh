#!/usr/bin/env bash
# Dashboard and listeners under load (issue 20): a daemon with --http and --metrics-addr
# runs a plan of N (10,000) /bin/true instances, then bench/dashload measures
#   - 40 concurrent GET /runs/RUN and 40 concurrent GET /: latency, daemon peak RSS;
#   - 32 followers of one live step of a run of N instances, for 10 s: daemon CPU,
#     refreshd status meanwhile;
#   - 32 followers that never read, 300 silent TCP connections, 1,000 silent control-socket
#     connections: a new follower's first line, /metrics and refreshd status latency.
# It prints numbers and the load average; it asserts nothing. BIN=path measures another
# build (an older refreshd, for a before/after); PAGES=0 leaves the page readers out.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/refreshd}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/refreshd
tmp=$(mktemp -d)
go build -o "$tmp/dashload" ./bench/dashload
daemon_pid=""
cleanup() { [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
ulimit -n 8192

mkdir -p "$tmp/plans"
{ echo "plan: big"; echo "keep_runs: 1"; echo "concurrency: 4"; echo "steps:"
  echo "  - id: t"; printf '    matrix: {n: ['; seq -s, 1 "${N:-10000}" | tr -d '\n'; echo ']}'
  echo "    run: [/bin/true]"; } >"$tmp/plans/big.yaml"
# The followed step prints 20 lines a second for a minute, in a run of N instances in all
# (its record is as large as the big run's; N is at most the cap of 10,000).
{ echo "plan: chatty"; echo "keep_runs: 1"; echo "concurrency: 4"; echo "steps:"
  echo "  - id: talk"
  echo '    run: [sh, -c, "i=0; while [ $i -lt 1200 ]; do i=$((i+1)); echo line $i of a chatty build step; sleep 0.05; done"]'
  echo "  - id: filler"; printf '    matrix: {n: ['; seq -s, 1 $((${N:-10000} - 1)) | tr -d '\n'; echo ']}'
  echo "    run: [/bin/true]"; } >"$tmp/plans/chatty.yaml"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web=127.0.0.1:$(port) metrics=127.0.0.1:$(port)
"$BIN" daemon --plans "$tmp/plans" --state "$tmp/state" --socket "$tmp/sock" --http "$web" --metrics-addr "$metrics" 2>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$tmp/sock" ] && break; sleep 0.1; done
if [ "${PAGES:-1}" != 0 ]; then
t0=$(date +%s)
"$BIN" run --wait --socket "$tmp/sock" big >/dev/null 2>"$tmp/run.err" || { tail -5 "$tmp/run.err"; exit 1; }
big=$("$BIN" history --socket "$tmp/sock" -o json big | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo "run $big of ${N:-10000} instances took $(( $(date +%s) - t0 )) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$tmp/dashload" -http "$web" -metrics "$metrics" -socket "$tmp/sock" -pid "$daemon_pid" -refreshd "$BIN" -big-run "$big" -phases pages
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
fi
live=""
for _ in $(seq 100); do # the plans may still be loading
  live=$("$BIN" run --socket "$tmp/sock" chatty 2>/dev/null | grep -o 'chatty-[^ ]*' | head -1) && [ -n "$live" ] && break
  sleep 0.2
done
sleep 3
"$tmp/dashload" -http "$web" -metrics "$metrics" -socket "$tmp/sock" -pid "$daemon_pid" -refreshd "$BIN" -live-run "$live" -live-step talk -phases follow,floods
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
