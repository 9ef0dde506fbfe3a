#!/usr/bin/env bash
# Schedule latency: a per-second plan whose step records its start time; prints the median
# and p90 of (step start - scheduled second) over ~20 fires (target median <= 50 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/refreshd}
FIRES=${FIRES:-20}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/refreshd
tmp=$(mktemp -d); trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/plans" "$tmp/state"
cat >"$tmp/plans/tick.yaml" <<YAML
plan: tick
schedule: "* * * * * *"
steps:
  - id: stamp
    run: ["sh", "-c", "date +%s.%N >> $tmp/starts"]
YAML
"$BIN" daemon --plans "$tmp/plans" --state "$tmp/state" --socket "$tmp/refreshd.sock" >"$tmp/log" 2>&1 &
pid=$!
sleep $((FIRES + 2))
[ -s "$tmp/starts" ] || { echo "no fires recorded:"; cat "$tmp/log"; exit 1; }
# The scheduled time is the whole second the start falls in (a start > 1 s late would be
# counted against the next second: the p90 shows whether that is plausible).
awk '{ f = $1 - int($1); print f * 1000 }' "$tmp/starts" | sort -n | awk '
  { v[NR] = $1 } END {
    if (NR == 0) exit 1
    printf "schedule latency over %d fires: median %.1f ms, p90 %.1f ms (target median <= 50)\n", NR, v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)]
  }'
