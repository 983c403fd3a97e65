#!/usr/bin/env python3
"""End to end: DPDK testpmd (net_virtio_user, a real virtio-net driver) against
`vdpu-perf net-target` (vdpu's virtio-net device behind its vhost-user server).

    python3 tests/integration/test_net_testpmd.py --perf build/bin/vdpu-perf [-v] [--only NAME]

Exit 0 = all passed, 1 = a case failed, 77 = skipped (no testpmd, no
hugepages, not root). Each case runs a few seconds; vdpu runs on core 0,
testpmd forwards on core 1.

Cases (counts checked end to end):
  txonly_drop    testpmd txonly 64 B  -> vdpu drop backend: vdpu counted what testpmd sent
  rxonly_gen     vdpu gen backend (1500 B) -> testpmd rxonly: testpmd received what vdpu delivered
  io_loopback    testpmd io --tx-first through vdpu's loopback backend: frames circulate
  txonly_packed  as txonly_drop on packed virtqueues with mergeable buffers off
  tap_txonly     testpmd txonly -> vdpu -> TAP representor: the TAP's rx_packets grew by exactly
                 what vdpu transmitted, and that matches testpmd's TX count
  tap_rxonly     N frames injected into the TAP with a raw socket -> vdpu -> testpmd rxonly: N received
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKIP = 77
HUGE_DIR = "/dev/hugepages"
PAGES_NEEDED = 300            # 2 MiB pages; testpmd uses -m 256
QUEUE_SIZE = 1024
RUN_S = 3.0


class Skip(Exception):
    pass


def log(verbose: bool, *a):
    if verbose:
        print(*a, flush=True)


# --------------------------------------------------------------------------- hugepages

class Hugepages:
    """Reserves 2 MiB hugepages for the run, mounts hugetlbfs if needed, restores after."""

    def __init__(self):
        self.orig = None
        self.mounted = False

    def __enter__(self):
        if os.geteuid() != 0:
            raise Skip("needs root (hugepages, TAP)")
        nr = Path("/proc/sys/vm/nr_hugepages")
        if not nr.exists():
            raise Skip("no hugepage support in this kernel")
        self.orig = int(nr.read_text())
        free = self._free()
        if free < PAGES_NEEDED:
            try:
                nr.write_text(str(self.orig + PAGES_NEEDED - free))
            except OSError as e:
                raise Skip(f"cannot reserve hugepages: {e}")
            if self._free() < PAGES_NEEDED:
                raise Skip(f"only {self._free()} free 2 MiB hugepages after reserving (need {PAGES_NEEDED})")
        if not self._hugetlbfs_mounted():
            os.makedirs(HUGE_DIR, exist_ok=True)
            r = subprocess.run(["mount", "-t", "hugetlbfs", "nodev", HUGE_DIR], capture_output=True, text=True)
            if r.returncode != 0:
                raise Skip(f"cannot mount hugetlbfs on {HUGE_DIR}: {r.stderr.strip()}")
            self.mounted = True
        return self

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", HUGE_DIR], capture_output=True)
        if self.orig is not None:
            try:
                Path("/proc/sys/vm/nr_hugepages").write_text(str(self.orig))
            except OSError:
                pass

    @staticmethod
    def _free() -> int:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
        return 0

    @staticmethod
    def _hugetlbfs_mounted() -> bool:
        for line in Path("/proc/mounts").read_text().splitlines():
            f = line.split()
            if len(f) > 2 and f[1] == HUGE_DIR and f[2] == "hugetlbfs":
                return True
        return False


def clean_hugefiles(prefix: str):
    for p in glob.glob(f"{HUGE_DIR}/{prefix}map_*") + glob.glob(f"{HUGE_DIR}/{prefix}*"):
        try:
            os.unlink(p)
        except OSError:
            pass


# --------------------------------------------------------------------------- processes

class Target:
    """vdpu-perf net-target."""

    def __init__(self, perf: str, sock: str, args: list[str], verbose: bool):
        self.cmd = [perf, "net-target", "--socket", sock, "--core", "0", "--queue-size", str(QUEUE_SIZE)] + args
        self.sock = sock
        self.verbose = verbose
        self.out = tempfile.TemporaryFile(mode="w+")
        log(verbose, "+", " ".join(self.cmd))
        self.p = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 10
        while not os.path.exists(sock):
            if self.p.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"net-target did not listen on {sock}:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def stop(self) -> dict:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        text = self.output()
        log(self.verbose, text)
        m = re.search(r"^NET-STATS dev=0 (.*)$", text, re.M)
        if not m:
            raise RuntimeError(f"no NET-STATS line from net-target (rc {self.p.returncode}):\n{text}")
        return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


class Testpmd:
    """dpdk-testpmd with a net_virtio_user port, forwarding on lcore 1."""

    def __init__(self, sock: str, mode: str, prefix: str, verbose: bool, pkt: int = 64, extra_vdev: str = "",
                 extra: list[str] | None = None):
        vdev = f"net_virtio_user0,path={sock},queues=1,queue_size={QUEUE_SIZE}{extra_vdev}"
        self.prefix = prefix
        self.cmd = ["stdbuf", "-oL", "dpdk-testpmd", "-l", "0,1", "--main-lcore", "0", "--no-pci",
                    "--file-prefix", prefix, "--single-file-segments", "-m", "256", "--vdev", vdev,
                    "--", f"--forward-mode={mode}", "--nb-cores=1", "--rxq=1", "--txq=1",
                    f"--txd={QUEUE_SIZE}", f"--rxd={QUEUE_SIZE}", f"--txpkts={pkt}", "--stats-period=1",
                    "--auto-start"] + (extra or [])
        self.verbose = verbose
        self.out = tempfile.TemporaryFile(mode="w+")
        log(verbose, "+", " ".join(self.cmd))
        self.p = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.STDOUT, text=True,
                                  stdin=subprocess.DEVNULL)

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def wait_started(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.output()
            if "Port 0: link state change" in t or "Press enter to exit" in t or "forwarding packets" in t.lower():
                return
            if self.p.poll() is not None:
                raise RuntimeError(f"testpmd exited (rc {self.p.returncode}):\n{t}")
            time.sleep(0.1)
        raise RuntimeError(f"testpmd did not start forwarding:\n{self.output()}")

    def stop(self) -> dict:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        clean_hugefiles(self.prefix)
        text = self.output()
        log(self.verbose, text[-4000:])
        # Final "Forward statistics for port 0" block (accumulated).
        blocks = re.findall(r"Forward statistics for port 0.*?RX-packets: (\d+)\s+RX-dropped: (\d+)\s+"
                            r"RX-total: (\d+).*?TX-packets: (\d+)\s+TX-dropped: (\d+)\s+TX-total: (\d+)", text, re.S)
        if not blocks:
            raise RuntimeError(f"no forward statistics from testpmd (rc {self.p.returncode}):\n{text[-3000:]}")
        rx, rxd, _, tx, txd, _ = (int(x) for x in blocks[-1])
        return {"rx": rx, "rx_dropped": rxd, "tx": tx, "tx_dropped": txd}


def sysfs_stat(ifname: str, name: str) -> int:
    return int(Path(f"/sys/class/net/{ifname}/statistics/{name}").read_text())


# --------------------------------------------------------------------------- cases

class Ctx:
    def __init__(self, perf: str, verbose: bool, tmp: str):
        self.perf = perf
        self.verbose = verbose
        self.tmp = tmp
        self.n = 0

    def sock(self) -> str:
        self.n += 1
        return os.path.join(self.tmp, f"net{self.n}.sock")

    def prefix(self) -> str:
        return f"vdpunet{os.getpid()}_{self.n}"


def run_pair(ctx: Ctx, target_args: list[str], mode: str, pkt: int = 64, extra_vdev: str = "",
             extra: list[str] | None = None, during=None):
    sock = ctx.sock()
    tgt = Target(ctx.perf, sock, target_args, ctx.verbose)
    pmd = None
    try:
        pmd = Testpmd(sock, mode, ctx.prefix(), ctx.verbose, pkt, extra_vdev, extra)
        pmd.wait_started()
        if during:
            during()
        else:
            time.sleep(RUN_S)
        ps = pmd.stop()
        pmd = None
        ts = tgt.stop()
        return ps, ts
    finally:
        if pmd:
            pmd.p.kill()
            pmd.p.wait()
            clean_hugefiles(pmd.prefix)
        if tgt.p.poll() is None:
            tgt.p.kill()
            tgt.p.wait()


def check(cond: bool, what: str):
    if not cond:
        raise AssertionError(what)


def case_txonly_drop(ctx: Ctx):
    ps, ts = run_pair(ctx, ["--backend", "drop"], "txonly", 64)
    check(ps["tx"] > 10000, f"testpmd sent only {ps['tx']}")
    # vdpu polls until testpmd stops the port: at most one ring of difference.
    check(0 <= ps["tx"] - ts["tx_pkts"] <= QUEUE_SIZE, f"testpmd TX {ps['tx']} vs vdpu {ts['tx_pkts']}")
    check(ts["tx_bytes"] == ts["tx_pkts"] * 64, f"vdpu bytes {ts['tx_bytes']} for {ts['tx_pkts']} x 64 B")
    check(ts["bad_desc"] == 0, "bad descriptors")
    return f"testpmd TX {ps['tx']}, vdpu TX {int(ts['tx_pkts'])}"


def case_txonly_packed(ctx: Ctx):
    ps, ts = run_pair(ctx, ["--backend", "drop"], "txonly", 1500, ",packed_vq=1,mrg_rxbuf=0")
    # More than one ring's worth: used descriptors must be seen by the driver.
    check(ps["tx"] > 4 * QUEUE_SIZE, f"testpmd sent only {ps['tx']} (packed used descriptors not seen?)")
    check(0 <= ps["tx"] - ts["tx_pkts"] <= QUEUE_SIZE, f"testpmd TX {ps['tx']} vs vdpu {ts['tx_pkts']}")
    check(ts["tx_bytes"] == ts["tx_pkts"] * 1500, "bytes")
    return f"packed ring, testpmd TX {ps['tx']}, vdpu TX {int(ts['tx_pkts'])}"


def case_rxonly_gen(ctx: Ctx):
    ps, ts = run_pair(ctx, ["--backend", "gen", "--pkt-size", "1500"], "rxonly")
    check(ps["rx"] > 1000, f"testpmd received only {ps['rx']}")
    # vdpu counts a frame when it puts it in the used ring; testpmd stops
    # counting first, and its port stop/close refills the ring a few times
    # (seen: 3 rings' worth) before the device is stopped.
    check(0 <= ts["rx_pkts"] - ps["rx"] <= 4 * QUEUE_SIZE, f"vdpu RX {ts['rx_pkts']} vs testpmd RX {ps['rx']}")
    check(ts["rx_bytes"] == ts["rx_pkts"] * 1500, "bytes")
    return f"vdpu RX {int(ts['rx_pkts'])}, testpmd RX {ps['rx']}"


def case_io_loopback(ctx: Ctx):
    ps, ts = run_pair(ctx, ["--backend", "loopback"], "io", 64, extra=["--tx-first"])
    check(ps["rx"] > 1000 and ps["tx"] > 1000, f"testpmd rx {ps['rx']} tx {ps['tx']}")
    check(ts["rx_pkts"] <= ts["tx_pkts"], "vdpu delivered more than it was given")
    check(abs(ps["rx"] - ts["rx_pkts"]) <= 4 * QUEUE_SIZE, f"testpmd RX {ps['rx']} vs vdpu RX {ts['rx_pkts']}")
    return f"testpmd io: RX {ps['rx']} TX {ps['tx']}; vdpu TX {int(ts['tx_pkts'])} RX {int(ts['rx_pkts'])}"


def tap_name(ctx: Ctx) -> str:
    return f"vdpunt{os.getpid() % 10000}"


def case_tap_txonly(ctx: Ctx):
    if not os.path.exists("/dev/net/tun"):
        raise Skip("/dev/net/tun missing")
    tap = tap_name(ctx)
    box = {}

    def during():
        box["before"] = sysfs_stat(tap, "rx_packets")
        time.sleep(RUN_S)

    ps, ts = run_pair(ctx, ["--backend", "tap", "--tap-name", tap], "txonly", 64, during=during)
    # The TAP is gone with the target; vdpu's backend counters saw every write.
    check(ps["tx"] > 1000, f"testpmd sent only {ps['tx']}")
    check(0 <= ps["tx"] - ts["tx_pkts"] <= QUEUE_SIZE, f"testpmd TX {ps['tx']} vs vdpu {ts['tx_pkts']}")
    return f"testpmd TX {ps['tx']}, written to {tap}: {int(ts['tx_pkts'])}"


def case_tap_txonly_sysfs(ctx: Ctx):
    """As tap_txonly, but counts on the TAP itself (sysfs) while it exists."""
    if not os.path.exists("/dev/net/tun"):
        raise Skip("/dev/net/tun missing")
    tap = tap_name(ctx)
    sock = ctx.sock()
    tgt = Target(ctx.perf, sock, ["--backend", "tap", "--tap-name", tap], ctx.verbose)
    try:
        before = sysfs_stat(tap, "rx_packets")
        pmd = Testpmd(sock, "txonly", ctx.prefix(), ctx.verbose, 64)
        pmd.wait_started()
        time.sleep(RUN_S)
        ps = pmd.stop()
        time.sleep(0.2)
        delta = sysfs_stat(tap, "rx_packets") - before
        ts = tgt.stop()
    finally:
        if tgt.p.poll() is None:
            tgt.p.kill()
            tgt.p.wait()
    check(delta == ts["tx_pkts"], f"TAP rx_packets grew by {delta}, vdpu wrote {ts['tx_pkts']}")
    check(0 <= ps["tx"] - delta <= QUEUE_SIZE, f"testpmd TX {ps['tx']} vs TAP rx_packets {delta}")
    return f"testpmd TX {ps['tx']} -> {tap} rx_packets +{delta}"


def case_tap_rxonly(ctx: Ctx):
    if not os.path.exists("/dev/net/tun"):
        raise Skip("/dev/net/tun missing")
    tap = tap_name(ctx)
    sock = ctx.sock()
    n_frames = 2000
    tgt = Target(ctx.perf, sock, ["--backend", "tap", "--tap-name", tap, "--tap-down"], ctx.verbose)
    pmd = None
    try:
        # No IPv6 autoconfiguration chatter on the TAP: only our frames count.
        Path(f"/proc/sys/net/ipv6/conf/{tap}/disable_ipv6").write_text("1") \
            if os.path.exists(f"/proc/sys/net/ipv6/conf/{tap}") else None
        subprocess.run(["ip", "link", "set", tap, "up"], check=True)
        pmd = Testpmd(sock, "rxonly", ctx.prefix(), ctx.verbose, 64)
        pmd.wait_started()
        time.sleep(0.5)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((tap, 0))
        dst = bytes.fromhex("020000000001")       # the device's MAC (net-target default)
        src = bytes.fromhex("020000000099")
        for i in range(n_frames):
            frame = dst + src + b"\x88\xb5" + i.to_bytes(4, "big") + bytes(60)
            while True:
                try:
                    s.send(frame)
                    break
                except BlockingIOError:
                    time.sleep(0.001)
            if i % 200 == 199:
                time.sleep(0.01)  # stay under the TAP queue length
        s.close()
        time.sleep(1.0)
        ps = pmd.stop()
        pmd = None
        tap_tx = sysfs_stat(tap, "tx_packets")
        tap_drop = sysfs_stat(tap, "tx_dropped")
        ts = tgt.stop()
    finally:
        if pmd:
            pmd.p.kill()
            pmd.p.wait()
            clean_hugefiles(pmd.prefix)
        if tgt.p.poll() is None:
            tgt.p.kill()
            tgt.p.wait()
    check(tap_drop == 0, f"the TAP dropped {tap_drop} frames (queue full)")
    check(ts["rx_pkts"] == n_frames, f"vdpu delivered {ts['rx_pkts']} of {n_frames} (TAP tx_packets {tap_tx})")
    check(ps["rx"] == n_frames, f"testpmd received {ps['rx']} of {n_frames}")
    return f"{n_frames} frames injected into {tap}, vdpu delivered {int(ts['rx_pkts'])}, testpmd RX {ps['rx']}"


CASES = [
    ("txonly_drop", case_txonly_drop),
    ("rxonly_gen", case_rxonly_gen),
    ("io_loopback", case_io_loopback),
    ("txonly_packed", case_txonly_packed),
    ("tap_txonly", case_tap_txonly_sysfs),
    ("tap_rxonly", case_tap_rxonly),
]


def find_perf(arg: str | None) -> str:
    if arg:
        return arg
    root = Path(__file__).resolve().parents[2]
    for b in sorted(root.glob("build*/bin/vdpu-perf")):
        return str(b)
    raise Skip("vdpu-perf not found (pass --perf)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perf")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--only", action="append")
    a = ap.parse_args()
    try:
        perf = find_perf(a.perf)
        if not shutil.which("dpdk-testpmd"):
            raise Skip("dpdk-testpmd not installed (Debian package dpdk)")
        if (os.cpu_count() or 1) < 2:
            raise Skip("needs 2 CPUs (vdpu on core 0, testpmd on core 1)")
        with Hugepages(), tempfile.TemporaryDirectory(prefix="vdpu-net-") as tmp:
            ctx = Ctx(perf, a.verbose, tmp)
            passed = failed = skipped = 0
            for name, fn in CASES:
                if a.only and name not in a.only:
                    continue
                t0 = time.time()
                try:
                    detail = fn(ctx)
                    passed += 1
                    print(f"PASS {name} ({time.time() - t0:.1f}s): {detail}", flush=True)
                except Skip as e:
                    skipped += 1
                    print(f"SKIP {name}: {e}", flush=True)
                except Exception as e:  # noqa: BLE001 - report and go on
                    failed += 1
                    print(f"FAIL {name} ({time.time() - t0:.1f}s): {e}", flush=True)
            print(f"{passed} passed, {failed} failed, {skipped} skipped")
            return 1 if failed else (SKIP if passed == 0 else 0)
    except Skip as e:
        print(f"SKIP: {e}")
        return SKIP


if __name__ == "__main__":
    sys.exit(main())
