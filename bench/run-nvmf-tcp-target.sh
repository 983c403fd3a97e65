#!/usr/bin/env bash
# NVMe/TCP target IOPS per target core: vdpu-snap serving
# nvmf_create_transport -t tcp with ONE data reactor on TCORE, driven over
# loopback by nvmf_tcp_loadgen (a raw NVMe/TCP host that does no bdev work,
# one thread pinned on LCORE, one I/O queue), 4 KiB random read and write at
# QD 1 / 32 / 128 on a null and a malloc namespace. The initiator-driven
# table (vdpu's own bdev_nvme initiator) is bench/run-nvmf-tcp.sh.
# Prints a markdown table; raw JSON lines stay in $OUT.
#
# Environment: BUILD (build dir, default build), T (seconds per run, 5),
# TCORE (1), LCORE (0), MALLOC_MIB (256), OUT (raw results dir).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SNAP=$BUILD/bin/vdpu-snap
LOADGEN=$BUILD/bin/nvmf_tcp_loadgen
T=${T:-5}
TCORE=${TCORE:-1}
LCORE=${LCORE:-0}
MALLOC_MIB=${MALLOC_MIB:-256}
OUT=${OUT:-$(mktemp -d /tmp/vdpu-bench-nvmftcp-target.XXXXXX)}
mkdir -p "$OUT"
for b in "$SNAP" "$LOADGEN"; do [ -x "$b" ] || { echo "missing $b (set BUILD=)" >&2; exit 1; }; done

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SOCK=$OUT/target.sock
"$SNAP" -m "[$TCORE]" -r "$SOCK" >"$OUT/target.log" 2>&1 &
TPID=$!
trap 'kill $TPID 2>/dev/null; wait $TPID 2>/dev/null || true' EXIT
rpc() {
  python3 - "$SOCK" "$@" <<'PY'
import json, socket, sys
sock, method, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
s = socket.socket(socket.AF_UNIX); s.connect(sock)
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode())
buf, dec = b"", json.JSONDecoder()
while True:
    buf += s.recv(65536)
    try:
        r, _ = dec.raw_decode(buf.decode()); break
    except ValueError:
        pass
if "error" in r:
    sys.exit(f"{method}: {r['error']}")
PY
}
for _ in $(seq 200); do rpc spdk_get_version 2>/dev/null && break; sleep 0.05; done
rpc nvmf_create_transport '{"trtype":"TCP"}'
rpc bdev_null_create '{"name":"Null0","num_blocks":2097152,"block_size":512}'
rpc bdev_malloc_create "{\"name\":\"Malloc0\",\"num_blocks\":$((MALLOC_MIB * 2048)),\"block_size\":512}"
for b in null malloc; do
  nqn=nqn.2016-06.io.spdk:bench-$b
  bdev=$([ $b = null ] && echo Null0 || echo Malloc0)
  rpc nvmf_create_subsystem "{\"nqn\":\"$nqn\",\"allow_any_host\":true}"
  rpc nvmf_subsystem_add_ns "{\"nqn\":\"$nqn\",\"namespace\":{\"bdev_name\":\"$bdev\"}}"
  rpc nvmf_subsystem_add_listener "{\"nqn\":\"$nqn\",\"listen_address\":{\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PORT\"}}"
done

echo "| bdev | rw | QD | IOPS (1 target core) | command |"
echo "|---|---|---|---|---|"
for b in null malloc; do
  for rw in randread randwrite; do
    for qd in 1 32 128; do
      cmd="nvmf_tcp_loadgen --addr 127.0.0.1 --port $PORT --nqn nqn.2016-06.io.spdk:bench-$b --rw $rw --bs 4096 --qd $qd --time $T --core $LCORE"
      # shellcheck disable=SC2086
      line=$("$BUILD"/bin/$cmd | tee -a "$OUT/results.jsonl")
      iops=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["iops"]))' "$line")
      echo "| $b | $rw | $qd | $iops | \`$cmd\` |"
    done
  done
done
echo
echo "raw: $OUT/results.jsonl; target log: $OUT/target.log"
