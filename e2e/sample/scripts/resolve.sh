#!/bin/sh
# resolve.sh DEPS INDEX PYTHON_VERSION UPGRADE
#
# The sample project's dependency resolver (what pip is to Airflow's CI image). For every
# package in DEPS it prints "name==version group", sorted by name:
#   UPGRADE=false  the pinned version, which must be in INDEX for PYTHON_VERSION;
#   UPGRADE=true   the newest version in INDEX that allows PYTHON_VERSION (Breeze's
#                  --upgrade-to-newer-dependencies, pip's eager upgrade).
# Bad input fails with FILE:LINE and what is wrong. Runs under busybox sh/awk, in the image
# and on the host (scripts/stack.sh seeds the constraints branch with it).
set -eu
set -o pipefail
export LC_ALL=C # one sort order everywhere
if [ $# -ne 4 ]; then
	echo "usage: resolve.sh DEPS INDEX PYTHON_VERSION UPGRADE" >&2
	exit 2
fi
deps=$1 idx=$2 py=$3 upgrade=$4
case $upgrade in true | false) ;; *)
	echo "resolve.sh: UPGRADE must be true or false, not \"$upgrade\"" >&2
	exit 2
	;;
esac
for f in "$deps" "$idx"; do
	[ -r "$f" ] || { echo "resolve.sh: cannot read $f" >&2; exit 2; }
done

awk -v py="$py" -v upgrade="$upgrade" -v depsfile="$deps" -v idxfile="$idx" '
function fail(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; failed = 1; exit 1 }
function isversion(v) { return v ~ /^[0-9]+(\.[0-9]+)*$/ }
# vcmp compares dotted numeric versions: -1, 0 or 1.
function vcmp(a, b,    x, y, n, m, i) {
	n = split(a, x, "."); m = split(b, y, ".")
	for (i = 1; i <= (n > m ? n : m); i++) {
		if (x[i] + 0 < y[i] + 0) return -1
		if (x[i] + 0 > y[i] + 0) return 1
	}
	return 0
}
BEGIN { if (!isversion(py)) { print "resolve.sh: bad PYTHON_VERSION \"" py "\"" > "/dev/stderr"; exit 2 } }
{ sub(/#.*/, "") }
NF == 0 { next }
FILENAME == idxfile {
	if (NF < 2 || NF > 3) fail("want \"name version [>=X.Y]\", got " NF " fields")
	if (!isversion($2)) fail("bad version \"" $2 "\" for " $1)
	if (NF == 3) {
		if ($3 !~ /^>=[0-9]+(\.[0-9]+)*$/) fail("bad requires-python \"" $3 "\" (want >=X.Y)")
		if (vcmp(py, substr($3, 3)) < 0) next   # not installable on this Python
	}
	avail[$1 SUBSEP $2] = 1
	if (!($1 in newest) || vcmp($2, newest[$1]) > 0) newest[$1] = $2
	next
}
FILENAME == depsfile {
	if (NF != 3) fail("want \"name pinned-version group\", got " NF " fields")
	if (!isversion($2)) fail("bad pinned version \"" $2 "\" for " $1)
	if ($3 != "core" && $3 != "provider-dep" && $3 != "provider") fail("group \"" $3 "\" of " $1 " is not core, provider-dep or provider")
	if (!(($1 SUBSEP $2) in avail)) fail($1 " " $2 " is not in " idxfile " for Python " py)
	v = $2
	if (upgrade == "true") v = newest[$1]
	print $1 "==" v " " $3
}
' "$idx" "$deps" | sort
