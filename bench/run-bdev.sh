#!/usr/bin/env bash
# Benchmarks `vdpu-perf bdev` (null, malloc, uring) and, as the peer, fio's
# io_uring engine on the same file with the same settings, in one run.
# Prints a markdown table (results in bench/bdev.md) and keeps every raw JSON
# output in $OUT.
#
# Environment: PERF (vdpu-perf binary), FILE (test file, on a file system
# with O_DIRECT; created with random data when missing), SIZE_MIB (1024),
# T (seconds per run, 5), CORE (core to pin to, 0), OUT (raw results dir).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PERF=${PERF:-$ROOT/build/bin/vdpu-perf}
FILE=${FILE:-/var/tmp/vdpu-bench.img}
SIZE_MIB=${SIZE_MIB:-1024}
T=${T:-5}
CORE=${CORE:-0}
OUT=${OUT:-$(mktemp -d /tmp/vdpu-bench-bdev.XXXXXX)}
mkdir -p "$OUT"

command -v fio >/dev/null || { echo "fio not installed" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq not installed" >&2; exit 1; }
[ -x "$PERF" ] || { echo "no vdpu-perf at $PERF (set PERF=)" >&2; exit 1; }

if [ ! -f "$FILE" ] || [ "$(stat -c %s "$FILE")" -ne $((SIZE_MIB * 1024 * 1024)) ]; then
  echo "creating $FILE ($SIZE_MIB MiB of random data)" >&2
  dd if=/dev/urandom of="$FILE" bs=1M count="$SIZE_MIB" status=none
  sync
fi

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| case | QD | IOPS | MiB/s | avg us | p50 us | p99 us | p99.9 us | command |"
echo "|---|---|---|---|---|---|---|---|---|"

row() {  # name qd json-file command...
  local name=$1 qd=$2 f=$3; shift 3
  jq -r --arg n "$name" --arg q "$qd" --arg c "$*" \
    '"| \($n) | \($q) | \(.iops) | \(.mib_s*10|round/10) | \(.lat_us.avg*100|round/100) | \(.lat_us.p50*100|round/100) | \(.lat_us.p99*100|round/100) | \(.lat_us.p99_9*100|round/100) | `\($c)` |"' "$f"
}

perf() {  # name qd args...
  local name=$1 qd=$2; shift 2
  local f="$OUT/$name-qd$qd.json"
  local cmd=("$PERF" bdev "$@" -w randread -o 4096 -q "$qd" -m "[$CORE]" -t "$T" --json)
  "${cmd[@]}" >"$f"
  row "$name" "$qd" "$f" "vdpu-perf ${cmd[*]:1}"
}

fio_run() {  # qd
  local qd=$1 f="$OUT/fio-qd$1.json"
  local cmd=(fio --name=randread --ioengine=io_uring --direct=1 --rw=randread --bs=4k
             --iodepth="$qd" --numjobs=1 --time_based --runtime="$T" --filename="$FILE"
             --cpus_allowed="$CORE" --output-format=json)
  "${cmd[@]}" >"$f"
  # lat_ns = submission to completion (what vdpu-perf measures); percentiles
  # are fio's completion latency (clat), the closest it reports.
  jq -r --arg q "$qd" --arg c "${cmd[*]}" '.jobs[0].read as $r |
    "| fio io_uring (peer) | \($q) | \($r.iops|round) | \($r.bw/1024*10|round/10) | \($r.lat_ns.mean/10|round/100) | \($r.clat_ns.percentile["50.000000"]/10|round/100) | \($r.clat_ns.percentile["99.000000"]/10|round/100) | \($r.clat_ns.percentile["99.900000"]/10|round/100) | `\($c)` |"' "$f"
}

for qd in 1 128; do perf null "$qd" --bdev null --size "$SIZE_MIB"; done
for qd in 1 128; do perf malloc "$qd" --bdev malloc --size "$SIZE_MIB"; done
for qd in 1 32 128; do
  perf uring "$qd" --bdev uring --filename "$FILE"
  fio_run "$qd"
done
echo
echo "raw JSON: $OUT" >&2
