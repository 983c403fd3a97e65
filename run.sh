#!/usr/bin/env bash
# vdpu front door.
#   ./run.sh main   install what is missing, build, run vdpu-snap on its embedded
#                   default configuration and show it serving (RPC + a guest disk)
#   ./run.sh test   install what is missing, build, run the whole test suite
#   ./run.sh build  build only
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
BUILD=${VDPU_BUILD_DIR:-$ROOT/build}
JOBS=${VDPU_JOBS:-$(nproc)}

build() {
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=${VDPU_BUILD_TYPE:-RelWithDebInfo} >/dev/null
  ninja -C "$BUILD" -j "$JOBS"
}

case "${1:-}" in
  build)
    scripts/install-deps.sh build
    build
    ;;
  test)
    scripts/install-deps.sh test
    build
    cd "$BUILD"
    # ctest prints its summary ("100% tests passed, 0 tests failed out of N").
    ctest --output-on-failure -j "$JOBS" --timeout 900
    ;;
  main)
    scripts/install-deps.sh all
    build
    exec scripts/demo.sh "$BUILD"
    ;;
  *)
    echo "usage: $0 main|test|build" >&2
    exit 2
    ;;
esac
