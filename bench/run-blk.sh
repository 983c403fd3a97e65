#!/usr/bin/env bash
# vhost-user-blk back-ends measured by the same client (`vdpu-perf blk`) in
# one run: vdpu (blk-target: BlkDevice + vhost-user Server) on null and
# malloc bdevs, and qemu-storage-daemon on null-co and on a file in tmpfs.
# 4 KiB random reads at QD 1, 32, 128; back-end pinned to core 0, client to
# core 1. Results: one line per run, "<backend> qd=<n> <json>", in
# $OUT (default bench/results/blk-<date>.txt) and on stdout.
#
# usage: bench/run-blk.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
BUILD=${1:-build}
T=${2:-10}
PERF=$(realpath "$BUILD/bin/vdpu-perf")
QSD=${QSD:-qemu-storage-daemon}
BACKEND_CPU=${BACKEND_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
QDS=${QDS:-"1 32 128"}
# 2 descriptors per request (header+data | status, header | data+status):
# QD 128 then fits the 256-entry rings vdpu offers; same layout for everyone.
DESCS=${DESCS:-2}
# On a shared machine, NICE=-20 (root) keeps other processes from splitting
# the two pinned cores' time with the busy-polling client and back-ends.
# With sched autogroup (Debian's default) nice only ranks tasks inside their
# session, so the script moves into a session of its own and sets that
# autogroup's nice too.
NICE=${NICE:-0}
if [ "$NICE" != 0 ] && [ -z "${VDPU_BENCH_SESSION:-}" ] && [ -w /proc/self/autogroup ]; then
  VDPU_BENCH_SESSION=1 exec setsid --wait "$0" "$@"
fi
[ "$NICE" != 0 ] && [ -w /proc/$$/autogroup ] && echo "$NICE" > /proc/$$/autogroup
RAMP=${RAMP:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/results/blk-$(date +%Y%m%d-%H%M%S).txt}
mkdir -p "$(dirname "$OUT")"
TMP=$(mktemp -d /tmp/vdpu-bench-blk.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

{
  echo "# $(date -Is) $(uname -r)"
  echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus)"
  echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# qemu-storage-daemon: $($QSD --version | head -1)"
  echo "# nice: $NICE (autogroup: $(cat /proc/$$/autogroup 2>/dev/null))"
  echo "# client: nice -n $NICE taskset -c $CLIENT_CPU $PERF blk --socket S -q QD -o 4096 -w randread -t $T --ramp $RAMP --descs $DESCS --cpumask [$CLIENT_CPU] --json"
} | tee "$OUT"

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; return 1; }

stop_backend() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
}

run_clients() {  # label socket
  for qd in $QDS; do
    line=$(nice -n "$NICE" taskset -c "$CLIENT_CPU" "$PERF" blk --socket "$2" -q "$qd" -o 4096 -w randread -t "$T" --ramp "$RAMP" \
             --descs "$DESCS" --cpumask "[$CLIENT_CPU]" --json 2>>"$TMP/client.err" || true)
    echo "$1 qd=$qd $line" | tee -a "$OUT"
  done
}

# (a) vdpu on a null bdev, then a malloc (RAM) bdev.
for b in null malloc; do
  S=$TMP/vdpu-$b.sock
  echo "# backend vdpu-$b: nice -n $NICE taskset -c $BACKEND_CPU $PERF blk-target --socket S --bdev $b --size-mib 1024 --cpumask [$BACKEND_CPU]" | tee -a "$OUT"
  nice -n "$NICE" taskset -c "$BACKEND_CPU" "$PERF" blk-target --socket "$S" --bdev $b --size-mib 1024 \
    --cpumask "[$BACKEND_CPU]" >"$TMP/vdpu-$b.log" 2>&1 &
  PID=$!
  wait_sock "$S"
  run_clients "vdpu-$b" "$S"
  stop_backend
done

# (b) qemu-storage-daemon, export in an iothread (its polling mode), on
# null-co and on a raw file in tmpfs (page cache = memory).
qsd_run() {  # label blockdev-args
  S=$TMP/$1.sock
  echo "# backend $1: nice -n $NICE taskset -c $BACKEND_CPU $QSD --object iothread,id=io0 --blockdev $2 --export type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=S,writable=on,num-queues=1,iothread=io0" | tee -a "$OUT"
  nice -n "$NICE" taskset -c "$BACKEND_CPU" "$QSD" --object iothread,id=io0 --blockdev "$2" \
    --export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$S,writable=on,num-queues=1,iothread=io0" \
    >"$TMP/$1.log" 2>&1 &
  PID=$!
  wait_sock "$S"
  run_clients "$1" "$S"
  stop_backend
}
qsd_run qsd-null "driver=null-co,node-name=n0,size=1073741824"
IMG=/dev/shm/vdpu-bench-blk.img
truncate -s 1G "$IMG"
qsd_run qsd-file-tmpfs "driver=file,node-name=n0,filename=$IMG,cache.direct=off,aio=threads"
rm -f "$IMG"

echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
