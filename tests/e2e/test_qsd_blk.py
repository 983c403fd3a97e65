#!/usr/bin/env python3
"""Self-test of the guest harness: qemu-storage-daemon as vhost-user-blk backend.

    python3 tests/e2e/test_qsd_blk.py [-v] [--keep]     # exit 0 = all passed

Also importable: ``run(verbose=False, keep=False, only=None) -> bool`` and the
pytest-style ``test_qsd_vhost_user_blk()`` / ``test_qsd_vhost_user_blk_reconnect()``.
Serves as the template for tests that put vdpu's own vhost-user-blk backend
in place of qemu-storage-daemon: only ``start_backend()`` changes.

Scenario "basic" (guest side, VDPU-RESULT markers): the disk appears, its
size, a block the host wrote before boot reads back, fio randrw + crc32c
verify passes; (host side): a block the guest wrote with O_DIRECT reaches the
image file, the backend survived the guest's shutdown.
Scenario "reconnect": the guest writes with fio, the backend is SIGKILLed and
restarted, QEMU (chardev reconnect=1) re-attaches, fio --verify_only passes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guest  # noqa: E402

IMG_MB = 64
HOST_PAT_OFF = 32 << 20    # host writes here before boot, guest reads
GUEST_PAT_OFF = 40 << 20   # guest writes here, host reads after shutdown
NUM_QUEUES = 2

FIO = ("fio --name=v --filename=/dev/vda --rw=randrw --bs=4k --size=16M "
       "--verify=crc32c --iodepth=16 --ioengine=libaio --direct=1")

GUEST_SCRIPT = r"""
if ! vdpu_wait_for /sys/block/vda 10; then
    vdpu_result vda_present FAIL "no /sys/block/vda"; exit 1
fi
vdpu_result vda_present PASS
sz=$(cat /sys/block/vda/size)
echo "vda size: $sz sectors, $(ls /sys/block/vda/mq | wc -l) mq queue(s)"
lsblk /dev/vda
[ "$sz" = "@SECTORS@" ] && vdpu_result vda_size PASS "$sz" || vdpu_result vda_size FAIL "got $sz want @SECTORS@"

got=$(dd if=/dev/vda bs=4096 skip=@HOST_BLK@ count=1 iflag=direct 2>/dev/null | head -c @HOST_LEN@)
[ "$got" = "@HOST_PAT@" ] && vdpu_result read_host_pattern PASS || vdpu_result read_host_pattern FAIL "got '$got'"

@FIO@ > /tmp/fio.out 2>&1
rc=$?
cat /tmp/fio.out
iops=$(grep -E '^ *(read|write): IOPS=' /tmp/fio.out | sed 's/^ *\(read\|write\): IOPS=\([^,]*\),.*/\1=\2/' | tr '\n' ' ')
if [ $rc = 0 ] && grep -q 'err= 0' /tmp/fio.out && ! grep -qi 'verify.*fail\|bad magic\|crc32c:' /tmp/fio.out; then
    vdpu_result fio_verify PASS "libaio iodepth=16 $iops"
else
    vdpu_result fio_verify FAIL "rc=$rc $iops"
fi

printf '%s' "@GUEST_PAT@" | dd of=/tmp/pat bs=4096 count=1 conv=sync 2>/dev/null
dd if=/tmp/pat of=/dev/vda bs=4096 seek=@GUEST_BLK@ count=1 oflag=direct conv=fsync 2>/dev/null \
    && vdpu_result write_guest_pattern PASS || vdpu_result write_guest_pattern FAIL "dd rc=$?"
"""

EXPECT = ["vda_present", "vda_size", "read_host_pattern", "fio_verify",
          "write_guest_pattern"]


def start_backend(img: Path, sock: Path, log: Path) -> subprocess.Popen:
    """qemu-storage-daemon exporting `img` as vhost-user-blk on `sock`."""
    cmd = [
        "qemu-storage-daemon",
        "--blockdev", f"driver=file,node-name=f,filename={img},cache.direct=on,aio=threads",
        "--export", (f"type=vhost-user-blk,id=e,node-name=f,addr.type=unix,"
                     f"addr.path={sock},writable=on,num-queues={NUM_QUEUES}"),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    guest.wait_for_socket(str(sock), 10, proc)
    return proc


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _guest_checks(res, names) -> list:
    out = []
    for name in names:
        r = res.results.get(name)
        out.append((name, bool(r and r.passed), r.detail if r else "not reported"))
    out.append(("guest_run", res.ok, res.reason))
    return out


def scenario_basic(work: Path, verbose: bool) -> list:
    """fio verify + pattern exchange through qemu-storage-daemon."""
    img, sock = work / "disk.img", work / "vhost-blk.sock"
    host_pat = "VDPU-HOST-" + secrets.token_hex(8)
    guest_pat = "VDPU-GUEST-" + secrets.token_hex(8)
    with open(img, "wb") as f:
        f.truncate(IMG_MB << 20)
        f.seek(HOST_PAT_OFF)
        f.write(host_pat.encode())
    backend = start_backend(img, sock, work / "qsd.log")
    try:
        script = (GUEST_SCRIPT
                  .replace("@SECTORS@", str((IMG_MB << 20) // 512))
                  .replace("@HOST_BLK@", str(HOST_PAT_OFF // 4096))
                  .replace("@HOST_LEN@", str(len(host_pat)))
                  .replace("@HOST_PAT@", host_pat)
                  .replace("@GUEST_BLK@", str(GUEST_PAT_OFF // 4096))
                  .replace("@GUEST_PAT@", guest_pat)
                  .replace("@FIO@", FIO))
        res = guest.boot(guest.vhost_user_blk_args(str(sock), num_queues=NUM_QUEUES),
                         script, timeout_s=120, smp=1, expect=EXPECT,
                         log_path=work / "console.log", echo=verbose)
        checks = _guest_checks(res, EXPECT)
        with open(img, "rb") as f:
            f.seek(GUEST_PAT_OFF)
            got = f.read(len(guest_pat)).decode(errors="replace")
        checks.append(("host_sees_guest_write", got == guest_pat, repr(got)))
        checks.append(("backend_alive", backend.poll() is None, f"rc={backend.returncode}"))
    finally:
        _stop(backend)
    print(f"basic: boot {res.boot_s and round(res.boot_s, 1)}s, guest {res.elapsed_s:.1f}s")
    if not res.ok and not verbose:
        print("---- console (tail) ----\n" + "\n".join(res.log.splitlines()[-40:]))
    return checks


RECONNECT_SCRIPT = r"""
vdpu_wait_for /sys/block/vda 10 || { vdpu_result reconnect_write FAIL "no vda"; exit 1; }
F="--name=r --filename=/dev/vda --rw=write --bs=4k --size=4M --direct=1 --ioengine=psync --verify=crc32c"
fio $F --do_verify=0 > /tmp/w.out 2>&1 && vdpu_result reconnect_write PASS || { cat /tmp/w.out; vdpu_result reconnect_write FAIL; }
echo "VDPU-WAIT backend-restart"
read -r go
fio $F --verify_only > /tmp/v.out 2>&1 && vdpu_result reconnect_verify PASS "go=$go" || { cat /tmp/v.out; vdpu_result reconnect_verify FAIL; }
"""


def scenario_reconnect(work: Path, verbose: bool) -> list:
    """The backend is killed (SIGKILL) and restarted while the guest is up;
    QEMU's chardev reconnect=1 re-attaches and data written before reads back.
    Template for backend-restart tests (Guest.wait_for / Guest.send)."""
    img, sock = work / "disk-r.img", work / "vhost-blk-r.sock"
    with open(img, "wb") as f:
        f.truncate(IMG_MB << 20)
    backend = start_backend(img, sock, work / "qsd-r1.log")
    checks = []
    try:
        g = guest.Guest(guest.vhost_user_blk_args(str(sock), num_queues=1, reconnect=1),
                        RECONNECT_SCRIPT, timeout_s=90, log_path=work / "console-r.log",
                        echo=verbose,
                        expect=["reconnect_write", "reconnect_verify"])
        with g:
            if g.wait_for(r"VDPU-WAIT backend-restart", 60):
                _stop(backend, signal.SIGKILL)
                os.unlink(sock)
                backend = start_backend(img, sock, work / "qsd-r2.log")
                g.send("go\n")
            res = g.wait()
        checks = _guest_checks(res, ["reconnect_write", "reconnect_verify"])
        checks[-1] = ("reconnect_guest_run",) + checks[-1][1:]
    finally:
        _stop(backend)
    print(f"reconnect: guest {res.elapsed_s:.1f}s")
    if not res.ok and not verbose:
        print("---- console (tail) ----\n" + "\n".join(res.log.splitlines()[-40:]))
    return checks


SCENARIOS = {"basic": scenario_basic, "reconnect": scenario_reconnect}


def run(verbose: bool = False, keep: bool = False, only=None) -> bool:
    t0 = time.monotonic()
    guest.ensure_setup()
    work = Path(tempfile.mkdtemp(prefix="qsd-blk-", dir=guest.CACHE_DIR))
    checks: list = []   # (name, ok, detail)
    for name, fn in SCENARIOS.items():
        if only and name not in only:
            continue
        try:
            checks += fn(work, verbose)
        except Exception as e:  # a harness/backend error is a failed check
            checks.append((name, False, f"{type(e).__name__}: {e}"))
    passed = sum(ok for _, ok, _ in checks)
    failed = len(checks) - passed
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'} {name} {detail}".rstrip())
    print(f"total {time.monotonic() - t0:.1f}s")
    if failed or keep:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return failed == 0 and passed > 0


def test_qsd_vhost_user_blk():
    assert run(only=["basic"]), "qemu-storage-daemon vhost-user-blk guest test failed"


def test_qsd_vhost_user_blk_reconnect():
    assert run(only=["reconnect"]), "qemu-storage-daemon reconnect guest test failed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="stream the guest console")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--only", action="append", choices=list(SCENARIOS),
                    help="run only this scenario (repeatable)")
    a = ap.parse_args()
    return 0 if run(a.verbose, a.keep, a.only) else 1


if __name__ == "__main__":
    sys.exit(main())
