#!/bin/sh
# deb.sh [BUILD] - `make deb`: the Debian package, built by dpkg-buildpackage -us -uc -b
# from a copy of this tree (BUILD/deb/kleepd-VERSION: the tree itself and its parent stay
# clean), left as BUILD/kleepd_<version>_<arch>.deb and checked by lintian, which must
# report no error.  The build's log: BUILD/deb/build.log.
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
made=$(sed -n 's/^VERSION *:= *//p' Makefile)
if [ "$version" != "$made" ]; then
	echo "make deb: debian/changelog says $version, the Makefile $made: give both the same version" >&2
	exit 1
fi
work=$build/deb
src=$work/kleepd-$version
rm -rf "$work"
mkdir -p "$src"
tar --exclude=./build --exclude=./.git --exclude=./demo --exclude='*.tmp' -cf - . | tar -C "$src" -xf -
echo "  DEB     $build/kleepd_${version}_${arch}.deb"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	tail -n 40 "$work/build.log"
	echo "make deb: dpkg-buildpackage failed (whole log: $work/build.log)" >&2
	exit 1
fi
echo "  LINTIAN $build/kleepd_${version}_${arch}.deb"
set -- --fail-on error --info
if [ "$(id -u)" = 0 ]; then
	set -- "$@" --allow-root
fi
lintian "$@" "$work/kleepd_${version}_${arch}.changes"
mv -f "$work/kleepd_${version}_${arch}.deb" "$build/"
