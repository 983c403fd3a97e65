#!/usr/bin/env python3
"""End-to-end: the Linux guest's own NVMe/TCP initiator (nvme-tcp + nvme-cli)
against vdpu-snap's NVMe-oF/TCP target on the host.

    VDPU_BIN_DIR=build/bin python3 tests/e2e/test_nvmf_tcp_guest.py

vdpu-snap is configured over JSON-RPC the SPDK way (64 MiB malloc bdev,
nvmf_create_transport -t tcp, subsystem + namespace, listener on
127.0.0.1:<free port>). One guest boot (QEMU user networking: the guest
reaches the host as 10.0.2.2, 2 vCPUs) runs:

  nvme discover (the discovery log lists the subsystem), nvme connect
  (admin + 2 I/O queues), nvme id-ctrl (subnqn, serial), the namespace's
  size, fio with crc32c verification (4k QD16 on 2 jobs, 128k QD4), then
  nvme disconnect; on the host, nvmf_get_stats shows TCP qpairs while the
  guest is connected (checked from the guest's marker).

Python 3 stdlib only; exit 0 = all passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import guest  # noqa: E402
from guest import rpc  # noqa: E402

BIN = Path(os.environ.get("VDPU_BIN_DIR", HERE.parent.parent / "build" / "bin"))
SNAP = BIN / "vdpu-snap"
NQN = "nqn.2016-06.io.spdk:vdpu-e2e"
SERIAL = "VDPUTCP0001"
DISK_MB = 64

GUEST_SCRIPT = r"""
P=@PORT@
N=@NQN@
vdpu_net_user eth0 || vdpu_result net FAIL "no eth0"
nvme discover -t tcp -a 10.0.2.2 -s $P > /tmp/disc.out 2>&1
rc=$?
cat /tmp/disc.out
if [ $rc = 0 ] && grep -q "subnqn: *$N" /tmp/disc.out && grep -q "trtype: *tcp" /tmp/disc.out; then
  vdpu_result nvme_discover PASS
else
  vdpu_result nvme_discover FAIL "rc=$rc"
fi
nvme connect -t tcp -a 10.0.2.2 -s $P -n $N -i 2 > /tmp/conn.out 2>&1
rc=$?
cat /tmp/conn.out
dev=""
for i in $(seq 1 100); do
  for c in /sys/class/nvme/nvme*; do
    [ -e "$c/subsysnqn" ] && [ "$(cat $c/subsysnqn)" = "$N" ] && dev=$(basename $c)
  done
  [ -n "$dev" ] && [ -e /dev/${dev}n1 ] && break
  sleep 0.1
done
if [ $rc = 0 ] && [ -n "$dev" ] && [ -e /dev/${dev}n1 ]; then
  vdpu_result nvme_connect PASS "$dev"
else
  vdpu_result nvme_connect FAIL "rc=$rc dev='$dev'"; exit 1
fi
echo "VDPU-MARK connected"
read -r go
nvme id-ctrl /dev/$dev > /tmp/id.out 2>&1
cat /tmp/id.out | head -30
if grep -q "subnqn *: *$N" /tmp/id.out && grep -q "sn *: *@SERIAL@" /tmp/id.out; then
  vdpu_result nvme_id_ctrl PASS
else
  vdpu_result nvme_id_ctrl FAIL
fi
sz=$(cat /sys/block/${dev}n1/size)
[ "$sz" = "@SECTORS@" ] && vdpu_result ns_size PASS "$sz sectors" || vdpu_result ns_size FAIL "got $sz"
q=$(ls -d /sys/block/${dev}n1/mq/* 2>/dev/null | wc -l)
vdpu_result io_queues $([ "$q" -ge 1 ] && echo PASS || echo FAIL) "$q blk-mq queues"
fio_ok() {
  if [ "$3" = 0 ] && grep -q 'err= 0' "$2" && ! grep -qi 'verify.*fail\|bad magic\|crc32c:\|io_u error' "$2"; then
    vdpu_result "$1" PASS "$(grep -E '^ *(read|write): IOPS=' "$2" | sed 's/,.*//' | tr -s ' ' | tr '\n' ' ')"
  else
    cat "$2"; vdpu_result "$1" FAIL "rc=$3"
  fi
}
fio --name=v4k --filename=/dev/${dev}n1 --direct=1 --ioengine=libaio --rw=randwrite --bs=4k \
    --iodepth=16 --numjobs=2 --offset_increment=24M --size=8M --group_reporting \
    --verify=crc32c --verify_fatal=1 > /tmp/v4k.out 2>&1
fio_ok fio_verify_4k_qd16 /tmp/v4k.out $?
fio --name=v128k --filename=/dev/${dev}n1 --direct=1 --ioengine=libaio --rw=write --bs=128k \
    --iodepth=4 --size=16M --verify=crc32c --verify_fatal=1 > /tmp/v128k.out 2>&1
fio_ok fio_verify_128k_qd4 /tmp/v128k.out $?
nvme disconnect -n $N > /tmp/disc2.out 2>&1
rc=$?
cat /tmp/disc2.out
gone=1
for i in $(seq 1 50); do
  gone=1
  for c in /sys/class/nvme/nvme*; do
    [ -e "$c/subsysnqn" ] && [ "$(cat $c/subsysnqn)" = "$N" ] && gone=0
  done
  [ $gone = 1 ] && break
  sleep 0.1
done
[ $rc = 0 ] && [ $gone = 1 ] && vdpu_result nvme_disconnect PASS || vdpu_result nvme_disconnect FAIL "rc=$rc"
"""

EXPECT = ["nvme_discover", "nvme_connect", "nvme_id_ctrl", "ns_size", "io_queues",
          "fio_verify_4k_qd16", "fio_verify_128k_qd4", "nvme_disconnect", "host_stats"]


def main() -> int:
    if not SNAP.exists():
        print(f"SKIP: {SNAP} not built")
        return 0
    work = Path(tempfile.mkdtemp(prefix="vdpu-e2e-nvmf-tcp-"))
    (work / "emu.conf").write_text("NVME_EMULATION_ENABLE=0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP_", "SPDK_"))}
    env.update({"VDPU_EMU_CONFIG": str(work / "emu.conf"), "VDPU_STATE_DIR": str(work / "state"),
                "VDPU_EMU_DIR": str(work / "emu"), "SNAP_RPC_LOG_ENABLE": "0"})
    sock = str(work / "spdk.sock")
    log = open(work / "vdpu-snap.log", "wb")
    proc = subprocess.Popen([str(SNAP), "-m", "0x1", "-r", sock], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    ok = False
    try:
        end = time.monotonic() + 30
        while True:
            try:
                rpc(sock, "spdk_get_version")
                break
            except (OSError, RuntimeError):
                if time.monotonic() > end or proc.poll() is not None:
                    raise RuntimeError("vdpu-snap did not come up")
                time.sleep(0.05)
        port = guest.free_tcp_port()
        rpc(sock, "bdev_malloc_create", name="Malloc0", num_blocks=DISK_MB * 2048, block_size=512)
        rpc(sock, "nvmf_create_transport", trtype="TCP")
        rpc(sock, "nvmf_create_subsystem", nqn=NQN, serial_number=SERIAL, allow_any_host=True)
        rpc(sock, "nvmf_subsystem_add_ns", nqn=NQN, namespace={"bdev_name": "Malloc0"})
        rpc(sock, "nvmf_subsystem_add_listener", nqn=NQN,
            listen_address={"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                            "trsvcid": str(port)})
        script = (GUEST_SCRIPT.replace("@PORT@", str(port)).replace("@NQN@", NQN)
                  .replace("@SERIAL@", SERIAL).replace("@SECTORS@", str(DISK_MB * 2048)))
        checks = []
        with guest.Guest(guest.user_net_args(), script, timeout_s=420, smp=2) as g:
            if g.wait_for(r"VDPU-MARK connected", 300):
                st = rpc(sock, "nvmf_get_stats")
                tcp = [t for t in st["poll_groups"][0]["transports"] if t["trtype"] == "TCP"]
                qp = tcp[0] if tcp else {}
                checks.append(("host_stats", qp.get("admin_qpairs", 0) >= 1 and
                               qp.get("io_qpairs", 0) >= 1, json.dumps(qp)))
                g.send("go\n")
            res = g.wait()
        print(res.summary())
        for name, passed, detail in checks:
            print(f"{'PASS' if passed else 'FAIL'} {name} {detail}")
        got = set(res.results) | {c[0] for c in checks}
        missing = [e for e in EXPECT if e not in got]
        if missing:
            print("missing results:", missing)
        ok = res.ok and all(c[1] for c in checks) and not missing
        if not ok:
            print(res.log[-6000:])
    finally:
        proc.terminate()
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        if rc not in (0, None):
            print(f"vdpu-snap exited with {rc}")
            print((work / "vdpu-snap.log").read_text(errors="replace")[-4000:])
            ok = False
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
