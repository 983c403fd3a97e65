#!/usr/bin/env python3
"""End-to-end: a Linux guest's virtio_net driver on a vdpu-virtnet device.

    VDPU_BIN_DIR=build/bin python3 tests/e2e/test_net_guest.py [-v]

vdpu-virtnet (with its HA supervisor) runs with a temporary virtnet.conf and
directories; `virtnet hotplug` creates one device (vhost-user-net socket +
TAP representor). The representor is moved into a network namespace created
by the test and given 192.0.2.1/24 there (the namespace is isolated: nothing
leaves it). QEMU (TCG) boots a Debian 6.1 guest with virtio-net-pci on the
device's socket (vectors=0, see TESTING-NOTES); the guest sets 192.0.2.2/24
on eth0 and pings the representor (busybox ping -c 3 -i 0.2). While the
guest waits on a marker, the host checks that `virtnet query` shows the
driver bound (status 0xf, queues enabled, RX/TX counters moving) and that
unplug is refused (-1065); after the guest powers off the device is
unplugged and the representor is gone.

Needs root (netns, TAP) and QEMU; exit 0 = pass, 1 = fail, 77 = skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import guest  # noqa: E402

BIN = Path(os.environ.get("VDPU_BIN_DIR", HERE.parent.parent / "build" / "bin"))
SKIP = 77
MAC = "52:54:00:12:34:56"
HOST_IP, GUEST_IP = "192.0.2.1", "192.0.2.2"

GUEST_SCRIPT = f"""
if ! vdpu_wait_for /sys/class/net/eth0 20; then vdpu_result nic_present FAIL "no eth0"; exit 1; fi
vdpu_result nic_present PASS "$(cat /sys/class/net/eth0/address)"
mac=$(cat /sys/class/net/eth0/address)
[ "$mac" = "{MAC.lower()}" ] && vdpu_result mac PASS "$mac" || vdpu_result mac FAIL "$mac"
vdpu_net_static eth0 {GUEST_IP}/24
vdpu_check ping ping -c 3 -i 0.2 -W 5 {HOST_IP}
echo VDPU-WAIT bound
read -r go
vdpu_check ping_after_checks ping -c 2 -i 0.2 -W 5 {HOST_IP}
"""


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: rc {r.returncode}: {r.stdout}{r.stderr}")
    return r


class Daemon:
    def __init__(self, tmp: Path, verbose: bool):
        self.tmp = tmp
        self.rpc = str(tmp / "virtnet.sock")
        self.prefix = f"vg{os.getpid() % 10000}sf"
        (tmp / "virtnet.conf").write_text("{}")
        (tmp / "emu.conf").write_text("PCI_SWITCH_EMULATION_ENABLE=1\nPCI_SWITCH_EMULATION_NUM_PORT=2\n")
        self.log = open(tmp / "daemon.log", "w+")
        cmd = [str(BIN / "vdpu-virtnet"), "-c", str(tmp / "virtnet.conf"), "--emu-config", str(tmp / "emu.conf"),
               "--rpc-socket", self.rpc, "--socket-dir", str(tmp / "sockets"), "--state-dir", str(tmp / "state"),
               "--rep-prefix", self.prefix, "-m", "0x1", "-e"]
        if verbose:
            print("+", " ".join(cmd), flush=True)
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.verbose = verbose
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"vdpu-virtnet exited ({self.p.returncode}): {self.output()}")
            if self.cli("list", check=False)[0] == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("vdpu-virtnet did not start: " + self.output())

    def cli(self, *args, check=True):
        r = run([str(BIN / "virtnet"), "--rpc-socket", self.rpc, *map(str, args)], check=False, timeout=60)
        lines = r.stdout.splitlines()
        if lines and lines[0].startswith("{'"):
            lines.pop(0)
        text = "\n".join(lines).strip()
        try:
            out = json.loads(text) if text else None
        except json.JSONDecodeError:
            out = text
        if self.verbose:
            print("+ virtnet", *args, "->", r.returncode, text[:300], flush=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"virtnet {args}: rc {r.returncode}: {r.stdout}{r.stderr}")
        return r.returncode, out

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("SKIP: needs root and /dev/net/tun")
        return SKIP
    if not shutil.which(guest.QEMU) or not shutil.which("ip"):
        print("SKIP: qemu-system-x86_64 / ip not installed")
        return SKIP
    for b in ("vdpu-virtnet", "virtnet"):
        if not (BIN / b).exists():
            print(f"SKIP: {BIN / b} not built")
            return SKIP
    ns = f"vdpunet{os.getpid()}"
    checks: list[tuple[str, bool, str]] = []

    def check(name, ok, detail=""):
        checks.append((name, bool(ok), detail))
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    with tempfile.TemporaryDirectory(prefix="vdpu-net-guest-") as tmpd:
        tmp = Path(tmpd)
        d = Daemon(tmp, a.verbose)
        netns_made = False
        try:
            # QEMU handles a vhost-user-net control queue itself and forwards
            # VIRTIO_NET_F_GUEST_ANNOUNCE without VIRTIO_NET_F_CTRL_VQ; the
            # device model (virtio/net/net_device.cc set_features) refuses
            # that combination, so the device is hotplugged without bit 21.
            _, lst = d.cli("list")
            feats = int(lst["controller"]["supported_features"]["value"], 16) & ~(1 << 21)
            _, hp = d.cli("hotplug", "-i", "mlx5_0", "-m", MAC, "-t", 1500, "-n", 3, "-s", 256, "-f", hex(feats))
            rep, sock = hp["sf_rep_net_device"], hp["vhost_user_socket"]
            check("hotplug", hp["errno"] == 0 and Path(f"/sys/class/net/{rep}").exists(), f"{rep} on {sock}")
            run(["ip", "netns", "add", ns])
            netns_made = True
            run(["ip", "link", "set", rep, "netns", ns])
            run(["ip", "-n", ns, "addr", "add", f"{HOST_IP}/24", "dev", rep])
            run(["ip", "-n", ns, "link", "set", rep, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            guest.wait_for_socket(sock, 10, d.p)
            args = guest.vhost_user_net_args(sock, mac=MAC, reconnect=1, vectors=0)
            with guest.Guest(args, GUEST_SCRIPT, timeout_s=150, echo=a.verbose) as g:
                if g.wait_for(r"VDPU-WAIT bound", 120):
                    _, q = d.cli("query", "-p", 0)
                    dev = q["devices"][0]
                    check("driver_bound", dev["status"]["value"] == "0xf" and
                          len(dev["enabled-queues-info"]) >= 2, f"status {dev['status']['value']}, "
                          f"{len(dev['enabled-queues-info'])} queues, driver {dev['driver_feature']['value']}")
                    _, s = d.cli("stats", "-p", 0)
                    qs = s["device"]["queues-stats"]
                    rx = sum(int(x["total_bytes"]) for x in qs if x["VQ Index"] % 2 == 0)
                    tx = sum(int(x["total_bytes"]) for x in qs if x["VQ Index"] % 2 == 1)
                    check("counters", rx > 0 and tx > 0, f"RX {rx} B to the guest, TX {tx} B from it")
                    rc, u = d.cli("unplug", "-p", 0, check=False)
                    check("unplug_refused", rc == 1 and u["errno"] == -1065, str(u))
                    g.send("go\n")
                res = g.wait()
            for name, r in res.results.items():
                check(f"guest_{name}", r.passed, r.detail)
            check("guest_run", res.ok, f"{res.reason}, boot {res.boot_s}s, {res.elapsed_s:.1f}s")
            if not res.ok and not a.verbose:
                print(res.log[-3000:])
            # The driver is gone with QEMU: unplug works and removes the representor.
            deadline = time.time() + 10
            rc, u = 1, None
            while time.time() < deadline:
                rc, u = d.cli("unplug", "-p", 0, check=False)
                if rc == 0:
                    break
                time.sleep(0.2)
            gone = run(["ip", "-n", ns, "link", "show", rep], check=False).returncode != 0
            check("unplug", rc == 0 and gone, f"{u}, representor gone: {gone}")
        except Exception as e:  # noqa: BLE001
            check("run", False, repr(e))
        finally:
            d.stop()
            if netns_made:
                run(["ip", "netns", "del", ns], check=False)
            if any(not ok for _, ok, _ in checks):
                print("--- daemon log (tail) ---\n" + d.output())
    failed = [n for n, ok, _ in checks if not ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
