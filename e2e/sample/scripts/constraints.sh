#!/bin/sh
# constraints.sh MODE PYTHON_VERSION RESOLVED ORIGINAL OUTDIR
#
# Writes the constraint files of one mode, the way Airflow's generate-constraints does:
#   OUTDIR/MODE-X.Y.txt            the constraints (published)
#   OUTDIR/original-MODE-X.Y.txt   the same mode from the pinned resolution (not published)
#   OUTDIR/diff-MODE-X.Y.md        what the upgrade changed (not published)
# RESOLVED and ORIGINAL are resolve.sh outputs. Every file starts with a "#" header that
# carries the generation time, so a run without upstream changes differs only in comments.
# GENERATED_AT (UTC, RFC 3339) overrides the clock, for reproducible seeds.
set -eu
set -o pipefail
export LC_ALL=C # one sort order everywhere
if [ $# -ne 5 ]; then
	echo "usage: constraints.sh MODE PYTHON_VERSION RESOLVED ORIGINAL OUTDIR" >&2
	exit 2
fi
mode=$1 py=$2 resolved=$3 original=$4 out=$5
case $mode in
constraints)
	groups="core provider-dep provider"
	what="installs the providers from released packages at the moment of the constraint generation."
	;;
constraints-source-providers)
	groups="core provider-dep"
	what="installs the providers from the sources of the branch, so they are not listed."
	;;
constraints-no-providers)
	groups="core"
	what="installs no providers at all: only the project and its own dependencies."
	;;
*)
	echo "constraints.sh: unknown mode \"$mode\" (want constraints, constraints-source-providers or constraints-no-providers)" >&2
	exit 2
	;;
esac
at=${GENERATED_AT:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
mkdir -p "$out"

# pick FILE: the name==version lines of FILE whose group is in $groups.
pick() {
	awk -v groups=" $groups " 'index(groups, " " $2 " ") { print $1 }' "$1"
}

header() {
	cat <<HEADER
#
# This constraints file was automatically generated on $at
# via the "eager-upgrade" mechanism of the sample resolver, for the "main" branch of the
# sample project and Python $py. This variant of constraints ($mode)
# $what
#
HEADER
}

{ header; pick "$resolved"; } >"$out/$mode-$py.txt"
{ header; pick "$original"; } >"$out/original-$mode-$py.txt"

# The diff report: one table row per package whose version the upgrade changed.
pick "$original" >"$out/.original"
pick "$resolved" >"$out/.resolved"
{
	echo "# Constraints changes for $mode, Python $py ($at)"
	echo
	echo "| package | original | upgraded |"
	echo "| --- | --- | --- |"
	awk -F'==' 'NR == FNR { was[$1] = $2; next } was[$1] != $2 { printf "| %s | %s | %s |\n", $1, was[$1], $2 }' \
		"$out/.original" "$out/.resolved"
} >"$out/diff-$mode-$py.md"
rm -f "$out/.original" "$out/.resolved"
