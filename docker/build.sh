#!/usr/bin/env bash
# The image's build steps (docker/Dockerfile runs this; so does
# tests/docker/docker_test.sh, as CI has no Docker engine): build mailroom
# with warnings as errors, without tests or benchmarks, and install it
# into DESTDIR (the first argument) under /usr.
#
# Usage: docker/build.sh DESTDIR
# Environment: BUILD_DIR (default /build), JOBS (default nproc).
set -euo pipefail

out=${1:?usage: docker/build.sh DESTDIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-/build}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMR_WERROR=ON -DMR_TESTS=OFF -DMR_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr
cmake --build "$build" -j"${JOBS:-$(nproc)}"
DESTDIR="$out" cmake --install "$build"
