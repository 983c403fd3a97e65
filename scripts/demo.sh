#!/usr/bin/env bash
# The README's main job: start vdpu-snap on its embedded default configuration
# (a 64 MiB malloc bdev "Malloc0"), show it answering spdk_rpc, put a
# virtio-blk controller on the static virtio-blk PF, and boot a Linux guest
# (QEMU, TCG) whose disk is served by vdpu over vhost-user: lsblk and a short
# fio with verification inside the guest.
set -euo pipefail
BUILD=${1:-$(cd "$(dirname "$0")/.." && pwd)/build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/bin
WORK=$(mktemp -d /tmp/vdpu-demo.XXXXXX)
SOCK=$WORK/spdk.sock
export VDPU_EMU_DIR=$WORK/emu VDPU_STATE_DIR=$WORK/state SNAP_RPC_LOG_FILE=$WORK/rpc-log

cleanup() {
  [ -n "${SNAP_PID:-}" ] && kill -TERM "$SNAP_PID" 2>/dev/null && wait "$SNAP_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
rpc() { echo "\$ spdk_rpc $*" >&2; "$BIN/spdk_rpc" -s "$SOCK" "$@"; }
snap() { echo "\$ snap_rpc $*" >&2; "$BIN/snap_rpc" -s "$SOCK" "$@"; }

say "starting vdpu-snap --config-default (cores 0x1, RPC socket $SOCK)"
"$BIN/vdpu-snap" --config-default -m 0x1 -r "$SOCK" > "$WORK/vdpu-snap.log" 2>&1 &
SNAP_PID=$!
for _ in $(seq 1 100); do
  "$BIN/spdk_rpc" -s "$SOCK" -t 1 spdk_get_version >/dev/null 2>&1 && break
  kill -0 "$SNAP_PID" 2>/dev/null || { cat "$WORK/vdpu-snap.log"; exit 1; }
  sleep 0.1
done
rpc spdk_get_version
rpc bdev_get_bdevs

say "a virtio-blk controller on the static virtio-blk PF, backed by Malloc0"
snap virtio_blk_controller_create --pf_id 0 --bdev Malloc0 --num_queues 1
FUNCS=$(snap emulation_function_list)
echo "$FUNCS"
VSOCK=$(python3 -c 'import json,sys
for f in json.load(sys.stdin):
    if f.get("emulation_type") == "VBLK" and f.get("ctrl_id"):
        print(f["socket"]); break' <<<"$FUNCS")
snap virtio_blk_controller_list

say "booting a Linux guest (QEMU, TCG) with vhost-user-blk-pci on $VSOCK"
python3 "$ROOT/tests/e2e/guest.py" run --timeout 240 --vhost-user-blk "$VSOCK" -c '
lsblk
cat /sys/block/vda/size
fio --name=demo --filename=/dev/vda --rw=randrw --bs=4k --size=16M --iodepth=16 \
    --ioengine=libaio --direct=1 --verify=crc32c --do_verify=1 --output-format=terse \
    --terse-version=3 >/tmp/fio.out && echo "fio verify: OK" || echo "fio verify: FAILED"
awk -F";" "{print \"fio: read \" \$8 \" IOPS, write \" \$49 \" IOPS\"}" /tmp/fio.out'

say "I/O as vdpu saw it"
snap virtio_blk_controller_dbg_io_stats_get -c VblkCtrl1
rpc bdev_get_iostat -b Malloc0
say "done; stopping vdpu-snap (SIGTERM)"
