#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the built library into a temporary prefix and build consumers with
# pkg-config and with CMake's find_package, as users do; run each one.
#
# usage: run.sh BUILD_DIR WORK_DIR C_COMPILER
set -euo pipefail
build_dir=$1
work=$2
cc=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=$work/prefix

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"

pc=$(find "$prefix" -name tripsense.pc -print -quit)
[ -n "$pc" ] || { echo "no tripsense.pc under $prefix" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$(dirname "$pc")
export LD_LIBRARY_PATH=$libdir
cflags=$(pkg-config --cflags tripsense)
# The .pc must point into the prefix it was installed to, not the build's.
case "$cflags" in
    *"$prefix"*) ;;
    *) echo "pkg-config --cflags gives '$cflags', not under $prefix" >&2
       exit 1 ;;
esac
warn="-std=c11 -Wall -Wextra -Wpedantic -Werror"

echo "pkg-config, shared library"
"$cc" $warn "$here/consumer.c" $cflags $(pkg-config --libs tripsense) \
    -o "$work/pc_shared"
"$work/pc_shared"
# capture first: with pipefail, grep -q closing the pipe early can fail ldd
deps=$(ldd "$work/pc_shared")
grep -q "$libdir/libtripsense.so" <<<"$deps" || {
    echo "pc_shared does not load the installed libtripsense.so" >&2; exit 1; }

echo "pkg-config, static library"
"$cc" $warn "$here/consumer.c" $cflags "$libdir/libtripsense.a" \
    $(pkg-config --libs sqlite3 gsl) -lpthread -lm -o "$work/pc_static"
"$work/pc_static"

echo "CMake find_package(tripsense)"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" >"$work/cmake-configure.log"
cmake --build "$work/cmake" >"$work/cmake-build.log"
"$work/cmake/consumer_shared"
"$work/cmake/consumer_static"
echo "consumer: all four builds work"
