#!/usr/bin/env bash
# vdpu's emulated NVMe function (nvme::Controller behind NvmePciFunction,
# served over vfio-user by `vdpu-perf nvme-target`) driven by the user-space
# NVMe driver `vdpu-perf nvme` (doorbells written to the mmap'd BAR0 page,
# CQs polled, no syscall per I/O). 4 KiB random reads and writes (RWS) at QD 1,
# 32, 128 (QDS) on one I/O queue, null and malloc bdevs (BDEVS). Target pinned to
# core 0 (data reactor and control thread), client to core 1. Results: one
# line per run, "<backend> qd=<n> <json>", in $OUT (default
# bench/results/nvme-<date>.txt) and on stdout.
#
# usage: bench/run-nvme.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
BUILD=${1:-build}
T=${2:-10}
PERF=$(realpath "$BUILD/bin/vdpu-perf")
TARGET_CPU=${TARGET_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
QDS=${QDS:-"1 32 128"}
BDEVS=${BDEVS:-"null malloc"}
RWS=${RWS:-"randread randwrite"}
# NICE=-20 (root): the script moves into a session of its own and sets that
# autogroup's nice, so other processes do not split the two pinned cores' time
# (with sched autogroup, nice alone only ranks tasks inside one session).
NICE=${NICE:-0}
if [ "$NICE" != 0 ] && [ -z "${VDPU_BENCH_SESSION:-}" ] && [ -w /proc/self/autogroup ]; then
  VDPU_BENCH_SESSION=1 exec setsid --wait "$0" "$@"
fi
[ "$NICE" != 0 ] && [ -w /proc/$$/autogroup ] && echo "$NICE" > /proc/$$/autogroup
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/results/nvme-$(date +%Y%m%d-%H%M%S).txt}
mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp -d /tmp/vdpu-bench-nvme.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

{
  echo "# $(date -Is) $(uname -r)"
  echo "# cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) ($(nproc) cpus)"
  echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# client: taskset -c $CLIENT_CPU $PERF nvme --socket S -q QD -o 4096 -w RW -t $T --json"
  echo "# nice: $NICE (autogroup: $(cat /proc/$$/autogroup 2>/dev/null))"
} | tee "$OUT"

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; return 1; }

for b in $BDEVS; do
  S=$TMP/nvme-$b.sock
  echo "# target vdpu-$b: taskset -c $TARGET_CPU $PERF nvme-target --socket S --bdev $b --size-mib 1024 --num-queues 1 --cpumask [$TARGET_CPU]" | tee -a "$OUT"
  taskset -c "$TARGET_CPU" "$PERF" nvme-target --socket "$S" --bdev "$b" --size-mib 1024 \
    --num-queues 1 --cpumask "[$TARGET_CPU]" >"$TMP/target-$b.log" 2>&1 &
  PID=$!
  wait_sock "$S"
  for rw in $RWS; do
    for qd in $QDS; do
      line=$(taskset -c "$CLIENT_CPU" "$PERF" nvme --socket "$S" -q "$qd" -o 4096 -w "$rw" -t "$T" \
               --json 2>>"$TMP/client.err" | tr -d '\n ' || true)
      echo "vdpu-$b $rw qd=$qd $line" | tee -a "$OUT"
    done
  done
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
done
[ -s "$TMP/client.err" ] && sed 's/^/# client stderr: /' "$TMP/client.err" | tee -a "$OUT"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
