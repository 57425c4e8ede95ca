#!/usr/bin/env bash
# Install Kiln from the build tree into a temporary prefix, then build a
# consumer with find_package(kiln) and with pkg-config, and run both.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
for f in include/kiln.h lib/libkiln.a lib/pkgconfig/kiln.pc lib/cmake/kiln/kilnConfig.cmake; do
  [ -e "$prefix/$f" ] || { echo "install: $f missing"; exit 1; }
done
cmake -S "$source_dir" -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer" >/dev/null
out=$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer/c")
[ "$out" = "0.1.0 1" ] || { echo "find_package consumer printed: $out"; exit 1; }
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs kiln)
cc "$source_dir/main.c" $flags -o "$prefix/pc"
out=$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/pc")
[ "$out" = "0.1.0 1" ] || { echo "pkg-config consumer printed: $out"; exit 1; }
echo "install: find_package and pkg-config consumers work"
