#!/usr/bin/env bash
# NVMe/TCP over loopback: vdpu's initiator (`vdpu-perf bdev --bdev nvme`, one
# reactor on ICORE) against vdpu's target (vdpu-snap serving
# nvmf_create_transport -t tcp, one reactor on TCORE), 4 KiB random read and
# write, QD 1 / 32 / 128, a null and a malloc namespace. Every row is at once
# the initiator's IOPS on its one core and the target's IOPS on its one core.
# Prints a markdown table (results in bench/nvmf-tcp.md) and keeps every raw
# JSON output in $OUT.
#
# Environment: BUILD (build dir, build), T (seconds per run, 5), PORT (4420),
# ICORE (0), TCORE (1), MALLOC_MIB (256), OUT (raw results dir),
# NICE (e.g. -20: run in a session of its own at that autogroup priority).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SNAP=$BUILD/bin/vdpu-snap
RPC=$BUILD/bin/spdk_rpc
PERF=$BUILD/bin/vdpu-perf
T=${T:-5}
PORT=${PORT:-4420}
ICORE=${ICORE:-0}
TCORE=${TCORE:-1}
MALLOC_MIB=${MALLOC_MIB:-256}
OUT=${OUT:-$(mktemp -d /tmp/vdpu-bench-nvmftcp.XXXXXX)}
mkdir -p "$OUT"

if [ -n "${NICE:-}" ] && [ -z "${VDPU_BENCH_NICED:-}" ]; then
  export VDPU_BENCH_NICED=1
  exec setsid bash -c 'echo "${NICE}" > /proc/self/autogroup 2>/dev/null || true; exec "$0" "$@"' "$0" "$@"
fi

command -v jq >/dev/null || { echo "jq not installed" >&2; exit 1; }
for b in "$SNAP" "$RPC" "$PERF"; do [ -x "$b" ] || { echo "missing $b (set BUILD=)" >&2; exit 1; }; done

SOCK=$OUT/target.sock
"$SNAP" -m "[$TCORE]" -r "$SOCK" >"$OUT/target.log" 2>&1 &
TPID=$!
trap 'kill $TPID 2>/dev/null; wait $TPID 2>/dev/null || true' EXIT
for _ in $(seq 200); do "$RPC" -s "$SOCK" spdk_get_version >/dev/null 2>&1 && break; sleep 0.05; done
rpc() { "$RPC" -s "$SOCK" "$@" >/dev/null; }
rpc nvmf_create_transport -t tcp
rpc bdev_null_create Null0 1024 512
rpc bdev_malloc_create -b Malloc0 "$MALLOC_MIB" 512
for b in null malloc; do
  nqn=nqn.2016-06.io.spdk:bench-$b
  bdev=$([ $b = null ] && echo Null0 || echo Malloc0)
  rpc nvmf_create_subsystem "$nqn" -a -s "VDPU000$([ $b = null ] && echo 1 || echo 2)"
  rpc nvmf_subsystem_add_ns "$nqn" "$bdev"
  rpc nvmf_subsystem_add_listener "$nqn" -t tcp -a 127.0.0.1 -s "$PORT"
done

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| namespace | rw | QD | IOPS (1 initiator core, 1 target core) | MiB/s | avg us | p50 us | p99 us | p99.9 us | command |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for b in null malloc; do
  for rw in randread randwrite; do
    for qd in 1 32 128; do
      f="$OUT/$b-$rw-qd$qd.json"
      cmd=("$PERF" bdev --bdev nvme --traddr 127.0.0.1 --trsvcid "$PORT"
           --subnqn "nqn.2016-06.io.spdk:bench-$b" -w "$rw" -o 4096 -q "$qd" -m "[$ICORE]" -t "$T" --json)
      "${cmd[@]}" >"$f"
      jq -r --arg n "$b" --arg rw "$rw" --arg q "$qd" --arg c "vdpu-perf ${cmd[*]:1}" \
        '"| \($n) | \($rw) | \($q) | \(.iops) | \(.mib_s*10|round/10) | \(.lat_us.avg*100|round/100) | \(.lat_us.p50*100|round/100) | \(.lat_us.p99*100|round/100) | \(.lat_us.p99_9*100|round/100) | `\($c)` |"' "$f"
    done
  done
done
echo
echo "raw results: $OUT; load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
