#!/bin/sh
# install.sh RESOLVED DEST
#
# "Installs" the resolved packages into DEST (one directory per package with its metadata),
# then does INSTALL_WORK_MB megabytes of hashing: the stand-in for pip downloading and
# compiling wheels. It is what makes a cold build measurably slower than a cached one.
set -eu
set -o pipefail
if [ $# -ne 2 ]; then
	echo "usage: install.sh RESOLVED DEST" >&2
	exit 2
fi
resolved=$1 dest=$2
work=${INSTALL_WORK_MB:-400}
mkdir -p "$dest"
while read -r req group; do
	name=${req%%==*} version=${req#*==}
	mkdir -p "$dest/$name-$version"
	printf 'Name: %s\nVersion: %s\nGroup: %s\n' "$name" "$version" "$group" >"$dest/$name-$version/METADATA"
done <"$resolved"
dd if=/dev/zero bs=1M count="$work" 2>/dev/null | sha256sum | cut -d' ' -f1 >"$dest/.build-digest"
echo "installed $(wc -l <"$resolved") packages into $dest ($work MB of build work)"
