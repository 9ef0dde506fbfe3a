#!/bin/sh
# python-versions.sh [FILE] prints the Python versions the project supports, read from its
# tree (FILE, default python-versions.txt: one X.Y per line, "#" comments allowed), as the
# JSON object a refreshd step with outputs: reads: {"python": ["3.11", "3.12"]}.
#
# It is the sample's stand-in for Airflow's ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS: the plan
# never lists Python versions; adding a line here makes the next refresh build, publish and
# verify that version. Values are printed as written; refreshd checks them (pattern, safe
# characters, bounds) before any build uses them.
set -eu
file=${1:-python-versions.txt}
if [ ! -r "$file" ]; then
	echo "python-versions.sh: cannot read $file" >&2
	exit 1
fi
sep=
printf '{"python": ['
while IFS= read -r line || [ -n "$line" ]; do
	line=${line%%#*}
	line=$(printf '%s' "$line" | tr -d ' \t\r')
	[ -n "$line" ] || continue
	case $line in *'"'* | *'\'*) echo "python-versions.sh: bad line $line" >&2; exit 1 ;; esac
	printf '%s"%s"' "$sep" "$line"
	sep=', '
done <"$file"
printf ']}\n'
