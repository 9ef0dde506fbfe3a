#!/usr/bin/env bash
# demo.sh [DIR] is `make demo`: a real refresh of the sample project (e2e/sample) by the
# refreshd daemon, twice, on the local stack of scripts/stack.sh (default DIR
# /tmp/refreshd-demo, the place plans/demo.yaml names):
#
#   1. stack.sh up DIR: registry, two buildkitd nodes, the bare constraints repository,
#      the sample project as a repository (sample.git, branches main and v1-0-test)
#   2. refreshd daemon --plans DIR/plans --state DIR/state --socket DIR/refreshd.sock
#   3. refreshd run demo/main --wait, then what it did: the commit it checked out, the
#      Python versions read from that tree, per-step durations, the cache tags and digests in the registry, the
#      constraints commit and its summary
#   4. refreshd run demo/v1-0-test --wait: the release branch, the second instance of the
#      same plan (its own checkout, Python list, constraints branch and cache path)
#   5. demo/main again: the cached, unchanged path (the same commit, no constraints commit,
#      faster builds)
#   6. the wall times; then the daemon and the stack are stopped, whatever happened
#
# Exits 1 if a run did not succeed. Environment:
#   REFRESHD_BIN=bin/refreshd   the binary (make demo builds it)
#   DEMO_FRESH=1                purge DIR first, so the first run is a cold one again
#   DEMO_KEEP=1                 leave the daemon and the stack running at the end
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/refreshd-demo}
case $DIR in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
DIR=${DIR%/}
BIN=${REFRESHD_BIN:-$ROOT/bin/refreshd}
STACK=$ROOT/scripts/stack.sh
SOCKET=$DIR/refreshd.sock
PLAN=demo/main
RELEASE=demo/v1-0-test
# Every time the daemon records is UTC, so jq can read them (fromdateiso8601 wants "Z").
export TZ=UTC

say() { printf '\n== %s\n' "$*"; }
die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}

for c in jq git curl; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found (apt-get install -y $c)"
done
[ -x "$BIN" ] || die "$BIN not found: run make build (or set REFRESHD_BIN)"

DAEMON_PID=
stop_all() {
	local rc=$? i
	if [ "${DEMO_KEEP:-}" = 1 ]; then
		printf '\nDEMO_KEEP=1: daemon (pid %s) and stack left running; stop them with:\n  kill %s; %s down %s\n' \
			"$DAEMON_PID" "$DAEMON_PID" "$STACK" "$DIR"
		exit $rc
	fi
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		# SIGTERM: the daemon interrupts a run in flight (killing its process groups), records
		# it, and exits; SIGKILL only if it has not within 60 s.
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		for ((i = 0; i < 600; i++)); do
			kill -0 "$DAEMON_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "demo: the daemon ignored SIGTERM for 60 s: SIGKILL" >&2
			kill -KILL "$DAEMON_PID" 2>/dev/null || true
		fi
		wait "$DAEMON_PID" 2>/dev/null || true
		echo "demo: daemon stopped (log: $DIR/logs/refreshd.log)" >&2
	fi
	"$STACK" down "$DIR" || rc=1
	exit $rc
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if [ "${DEMO_FRESH:-}" = 1 ]; then
	"$STACK" purge "$DIR"
fi

say "stack: registry, two buildkitd nodes, bare constraints repository ($DIR)"
"$STACK" up "$DIR"
eval "$("$STACK" env "$DIR")"

say "daemon: $BIN daemon --plans $DIR/plans"
mkdir -p "$DIR/logs" "$DIR/state"
rm -f "$SOCKET"
# The daemon gets the stack's environment (DOCKER_CONFIG: where the builder lives) and its
# own session, so a Ctrl-C on this script reaches it only through the trap.
setsid "$BIN" daemon --plans "$DIR/plans" --state "$DIR/state" --socket "$SOCKET" \
	--plain-http-registry "$REGISTRY" >"$DIR/logs/refreshd.log" 2>&1 </dev/null &
DAEMON_PID=$!
ready=0
for ((i = 0; i < 150; i++)); do
	if "$BIN" status --socket "$SOCKET" -o json >/dev/null 2>&1; then
		ready=1
		break
	fi
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	sleep 0.1
done
if [ $ready != 1 ]; then
	tail -n 20 "$DIR/logs/refreshd.log" >&2 || true
	die "the daemon did not answer on $SOCKET within 15 s (log: $DIR/logs/refreshd.log)"
fi
"$BIN" status --socket "$SOCKET" || die "the daemon reports plan load errors"

now() { date +%s.%N; }

# summary FILE: what the run in FILE (history.Run as JSON) did.
summary() {
	jq -r '
	def secs: sub("\\.(?<f>[0-9]+)Z$"; "Z") as $d | ($d | fromdateiso8601)
		+ ((capture("\\.(?<f>[0-9]+)Z$").f // "0") | ("0." + .) | tonumber);
	def dur(a; b): if (a // "") == "" or (b // "") == "" then "-"
		else ((b | secs) - (a | secs)) * 100 | round / 100 | tostring + "s" end;
	"run \(.id) of \(.plan): \(.status) in \(dur(.start; .end))"
	+ (if .reason then "\n  reason: \(.reason)" else "" end),
	(if .params then "params: " + ([.params | to_entries[] | "\(.key)=\(.value)"] | join(" ")) else empty end),
	(if .source then "source: \(.source.ref) at \(.source.commit[0:12]) of \(.source.repo) (\(if .source.changed then "new since the last run" else "unchanged" end))" else empty end),
	(.vars[]? | "from the tree: \(.name) = \(if .list then (.values | join(" ")) else .value end)  (step \(.step))"),
	"",
	"steps (status, duration, node that built):",
	(.steps[] | "  \(.instance | . + " " * (68 - length)) \(.status | . + " " * (10 - length)) \(dur(.start; .end) | " " * (7 - length) + .)"
		+ (if .node then "  \(.node)" else "" end)
		+ (if .reason and .status != "succeeded" then "\n      \(.reason)" else "" end)),
	"",
	"cache tags in the registry (digest after the run; changed by this run?; verified?):",
	([.steps[] | .caches[]?] | group_by(.ref)[]
		| {ref: .[0].ref, after: ([.[].after | select(. != "")] | last),
		   changed: any(.[]; .changed), verified: any(.[]; .verified)}
		| "  \(.ref)\n      \(.after // "MISSING")  \(if .changed then "pushed new" else "unchanged" end)\(if .verified then ", verified" else "" end)"),
	"",
	(.steps[] | select(.publish) | .publish
		| if .commit != "" and .commit != null then
			"constraints: commit \(.commit[0:12]) on \(.branch) of \(.repo)\n  \(.summary) (\(.push_attempts) push attempt(s))",
			(.changes // [] | .[0:12][] | "    \(.file): \(.package) \(.old // "(new)") -> \(.new // "(removed)")"),
			(if (.changes // [] | length) > 12 then "    ... \((.changes | length) - 12) more" else empty end)
		  else "constraints: no commit on \(.branch): \(.summary // "only # header lines changed")" end)
	' "$1"
}

failed=0
declare -a WALL
RUNS=("$PLAN" "$RELEASE" "$PLAN")
for n in 1 2 3; do
	plan=${RUNS[$((n - 1))]}
	case $n in
	1) say "run 1: refreshd run $plan --wait (versions from the tree, upgrade build, constraints, per-platform caches, verification)" ;;
	2) say "run 2: refreshd run $plan --wait (the release branch: a second instance of the same plan)" ;;
	3) say "run 3: refreshd run $plan --wait again: the cached, unchanged path" ;;
	esac
	out=$DIR/run-$n.json
	s=$(now)
	rc=0
	"$BIN" run --wait --socket "$SOCKET" -o json "$plan" >"$out" || rc=$?
	WALL[$n]=$(echo "$(now) - $s" | bc)
	if ! [ -s "$out" ] || ! jq -e .id "$out" >/dev/null 2>&1; then
		die "run $n: no run record (exit $rc); daemon log: $DIR/logs/refreshd.log"
	fi
	summary "$out"
	commit=$(jq -r '[.steps[] | .publish.commit // empty | select(. != "")] | first // empty' "$out")
	if [ -n "$commit" ]; then
		echo
		git --git-dir="$CONSTRAINTS_REPO" show --stat --format='  %h %an %ad%n  %s%n%n%w(0,2,2)%b' \
			--date=iso "$commit" | sed '/^$/N;/^\n$/D'
	fi
	if [ $rc != 0 ]; then
		failed=1
		# The error lines of each failed step's last attempt log (else its last lines).
		jq -r '.steps[] | select(.status == "failed") | "\(.instance)\t\(.attempts[-1].log // "")"' "$out" |
			while IFS=$'\t' read -r inst logf; do
				[ -n "$logf" ] && [ -f "$logf" ] || continue
				printf '\n  %s (%s):\n' "$inst" "$logf"
				{ grep -iE 'error|fail|refused|denied|not (in|found)' "$logf" || tail -n 4 "$logf"; } |
					tail -n 4 | cut -c1-200 | sed 's/^/    | /'
			done
		echo
		echo "run $n did not succeed (exit $rc); its record: $out, daemon log: $DIR/logs/refreshd.log"
	fi
	# Run 3 is the demo's promise of the cached, unchanged path: nothing upstream moved
	# between runs 1 and 3, so a commit or a changed cache digest there is a bug, not a result.
	if [ $n = 3 ] && [ $rc = 0 ]; then
		changed=$(jq -r '[.steps[] | .caches[]? | select(.changed) | .ref] | unique | .[]' "$out")
		if [ -n "$commit" ] || [ -n "$changed" ]; then
			failed=1
			echo
			echo "run 3 was not the cached, unchanged path (record: $out):"
			[ -z "$commit" ] || echo "  it made constraints commit ${commit:0:12}"
			[ -z "$changed" ] || printf '  it changed the digest of %s\n' $changed
		fi
	fi
done

say "wall time"
printf '  run 1, %s (cold or after upstream changes): %6.1f s\n' "$PLAN" "${WALL[1]}"
printf '  run 2, %s (release branch, one Python):  %6.1f s\n' "$RELEASE" "${WALL[2]}"
printf '  run 3, %s (cached, unchanged):           %6.1f s   (%.0f%% of run 1)\n' "$PLAN" "${WALL[3]}" \
	"$(echo "100 * ${WALL[3]} / ${WALL[1]}" | bc -l)"
echo
echo "records: $DIR/run-1.json $DIR/run-2.json $DIR/run-3.json; after the demo: $BIN history --state $DIR/state"
exit $failed
