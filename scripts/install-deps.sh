#!/usr/bin/env bash
# Installs the Debian 12 packages vdpu needs to build, test and run, if they
# are missing. Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

BUILD_PKGS=(build-essential cmake ninja-build pkg-config g++
  liburing-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev)
RUN_PKGS=(python3 iproute2 util-linux)
TEST_PKGS=(fio qemu-system-x86 qemu-utils qemu-system-common busybox-static cpio kmod
  nvme-cli dpdk)

want=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}")
case "${1:-all}" in
  build) ;;
  all|test) want+=("${TEST_PKGS[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
