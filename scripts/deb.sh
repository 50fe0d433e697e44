#!/bin/sh
# deb.sh -- build the Debian package from this tree (make deb).
#
# dpkg-buildpackage writes its results into the parent of the source
# directory, so the tree (without build/, .git and node_modules) is
# copied to build/deb/portcullis-VERSION first: the .deb, .buildinfo
# and .changes end up in build/deb/, and nothing outside the checkout
# is touched.  lintian then checks the result; its tags, and the
# overrides that answer them, are in debian/.
#
# usage: deb.sh build     build, then run lintian (fails on an error or
#                         a warning without an override)

set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
out=$top/build/deb
version=$(dpkg-parsechangelog -S Version)
src=$out/portcullis-$version

for tool in dpkg-buildpackage dh lintian; do
	command -v $tool >/dev/null 2>&1 || {
		echo "deb: $tool not found: make deps installs it" >&2
		exit 2
	}
done

rm -rf "$out"
mkdir -p "$src"
tar -cf - --exclude=./build --exclude=./.git --exclude=node_modules \
    --exclude=./run . | tar -xf - -C "$src"
# Root-owned files in a tree others may build: no fakeroot needed
# (Rules-Requires-Root: no), and the build runs as whoever called make.
(cd "$src" && dpkg-buildpackage -b -uc -us) >"$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "deb: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
}
rm -rf "$src"
ls "$out"/*.deb

# --fail-on error,warning: a warning needs a fix or an override with
# its reason in debian/portcullis.lintian-overrides.
lintian --fail-on error,warning --info "$out"/portcullis_*.changes
echo "deb: lintian: no errors, no warnings"
