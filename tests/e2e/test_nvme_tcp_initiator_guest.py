#!/usr/bin/env python3
"""End-to-end: vdpu's NVMe/TCP initiator against the Linux kernel's nvmet-tcp
target running in a QEMU guest, reached from the host through QEMU user
networking (hostfwd 127.0.0.1:P -> guest :4420).

    VDPU_BIN_DIR=build/bin python3 tests/e2e/test_nvme_tcp_initiator_guest.py [-v] [--keep]

One guest boot. The guest configures nvmet through configfs (a 64 MiB brd
RAM disk as namespace 1, any host allowed) and then follows the host's
steps on its console:

  host: `vdpu-perf bdev --bdev nvme --verify` attaches the kernel target in
        process and writes a pattern then reads it back (4 KiB in-capsule
        writes, and 64 KiB writes through R2T/H2CData with header and data
        digests);
  host: vdpu-snap attaches it with bdev_nvme_attach_controller
        (ctrlr_loss_timeout_sec 6, reconnect_delay_sec 1): bdev nvme0n1 of
        the right size, served as a virtio-blk device and driven by
        `vdpu-perf blk` (randrw);
  guest: unlinks the port (nvmet deletes the controllers, closes the
        listener) -> host: the controller is "resetting";
  guest: links it again -> host: "enabled" again, reconnects >= 1;
  guest: unlinks it for good -> host: after the loss timeout the controller
        and nvme0n1 are gone.

Python 3 stdlib only; exit 0 = all passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import guest  # noqa: E402
from guest import RpcError, rpc  # noqa: E402

BIN = Path(os.environ.get("VDPU_BIN_DIR", HERE.parent.parent / "build" / "bin"))
SNAP = BIN / "vdpu-snap"
PERF = BIN / "vdpu-perf"
NQN = "nqn.2026-11.io.vdpu:guest-nvmet"
DISK_MB = 64
EMU_CONF = "VIRTIO_BLK_EMULATION_ENABLE=1\nVIRTIO_BLK_EMULATION_NUM_PF=1\n"

GUEST_SCRIPT = r"""
NQN=@NQN@
P=/sys/kernel/config/nvmet/ports/4420
if vdpu_net_user eth0; then vdpu_result guest_net PASS; else vdpu_result guest_net FAIL; exit 1; fi
if vdpu_nvmet_start "$NQN" 4420 @MB@; then vdpu_result nvmet_up PASS; else vdpu_result nvmet_up FAIL "configfs"; exit 1; fi
echo "VDPU-MARK nvmet-ready"
read x
rm "$P/subsystems/$NQN" && echo "VDPU-MARK nvmet-down"
read x
ln -s "/sys/kernel/config/nvmet/subsystems/$NQN" "$P/subsystems/$NQN" && echo "VDPU-MARK nvmet-up-again"
read x
rm "$P/subsystems/$NQN" && echo "VDPU-MARK nvmet-gone"
read x
vdpu_result guest_done PASS
"""
EXPECT = ["guest_net", "nvmet_up", "guest_done"]


class Snap:
    def __init__(self, work: Path):
        self.work = work
        self.sock = str(work / "spdk.sock")
        (work / "emu.conf").write_text(EMU_CONF)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SNAP_", "SPDK_", "VDPU_EMU", "VDPU_STATE"))}
        self.env.update({"VDPU_EMU_CONFIG": str(work / "emu.conf"),
                         "VDPU_STATE_DIR": str(work / "state"),
                         "VDPU_EMU_DIR": str(work / "emu"),
                         "SNAP_RPC_LOG_ENABLE": "0"})
        self.proc = None

    def start(self) -> None:
        log = open(self.work / "vdpu-snap.log", "wb")
        # -e: event mode, so idle reactors leave the cores to QEMU's TCG.
        self.proc = subprocess.Popen([str(SNAP), "-m", "0x1", "-e", "-r", self.sock],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vdpu-snap exited rc={self.proc.returncode}")
            try:
                rpc(self.sock, "spdk_get_version")
                return
            except (OSError, RpcError):
                time.sleep(0.05)
        raise TimeoutError("vdpu-snap did not answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, method: str, **params):
        return rpc(self.sock, method, **params)


def eventually(pred, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except (OSError, RpcError):
            pass
        time.sleep(0.2)
    return False


def host_ops(g: guest.Guest, snap: Snap, port: int, checks: list) -> None:
    def check(name, ok, detail=""):
        checks.append((name, bool(ok), detail))
        return ok

    def ctrl_state():
        c = snap.call("bdev_nvme_get_controllers")
        return c[0]["ctrlrs"][0] if c else None

    try:
        if not check("nvmet_ready", g.wait_for(r"VDPU-MARK nvmet-ready", 240)):
            return
        base = [str(PERF), "bdev", "--bdev", "nvme", "--traddr", "127.0.0.1", "--trsvcid", str(port),
                "--subnqn", NQN, "--verify", "-m", "0x1"]
        for name, extra in (("perf_verify_4k", ["-o", "4096", "-q", "16"]),
                            ("perf_verify_64k_digests", ["-o", "65536", "-q", "8", "--hdgst", "--ddgst"])):
            r = subprocess.run(base + extra, capture_output=True, text=True, timeout=300)
            out = (r.stdout + r.stderr).strip().splitlines()
            check(name, r.returncode == 0 and " 0 mismatches, 0 errors" in r.stdout,
                  out[-1] if out else f"rc={r.returncode}")

        names = snap.call("bdev_nvme_attach_controller", name="nvme0", trtype="tcp",
                          traddr="127.0.0.1", adrfam="ipv4", trsvcid=str(port), subnqn=NQN,
                          ctrlr_loss_timeout_sec=6, reconnect_delay_sec=1)
        check("attach", names == ["nvme0n1"], str(names))
        b = snap.call("bdev_get_bdevs", name="nvme0n1")[0]
        check("bdev_size", (b["block_size"], b["num_blocks"]) == (512, DISK_MB * 2048),
              f"{b['block_size']} x {b['num_blocks']}")
        fn = next(f for f in snap.call("emulation_function_list") if f["emulation_type"] == "VBLK")
        ctrl = snap.call("virtio_blk_controller_create", pf_id=0, bdev="nvme0n1", num_queues=1)
        r = subprocess.run([str(PERF), "blk", "--socket", fn["socket"], "-t", "2", "--ramp", "0.5",
                            "-q", "8", "-w", "randrw", "--json"],
                           capture_output=True, text=True, timeout=120)
        st = snap.call("bdev_get_iostat", name="nvme0n1")
        dev = st["bdevs"][0] if isinstance(st, dict) and "bdevs" in st else st[0]
        check("vblk_on_nvme0n1", r.returncode == 0 and dev["num_read_ops"] > 0 and dev["num_write_ops"] > 0,
              f"rc={r.returncode} reads={dev.get('num_read_ops')} writes={dev.get('num_write_ops')}")
        snap.call("virtio_blk_controller_destroy", ctrl=ctrl)

        g.send("go\n")
        check("port_removed", g.wait_for(r"VDPU-MARK nvmet-down", 60))
        check("resetting", eventually(lambda: ctrl_state()["state"] == "resetting", 60),
              str(ctrl_state()))
        g.send("go\n")
        check("port_back", g.wait_for(r"VDPU-MARK nvmet-up-again", 60))
        check("reconnected", eventually(lambda: ctrl_state()["state"] == "enabled"
                                        and ctrl_state()["reconnects"] >= 1, 60), str(ctrl_state()))
        g.send("go\n")
        check("port_gone", g.wait_for(r"VDPU-MARK nvmet-gone", 60))
        check("ctrlr_lost", eventually(lambda: snap.call("bdev_nvme_get_controllers") == [], 60))
        check("bdev_removed", eventually(
            lambda: not any(x["name"] == "nvme0n1" for x in snap.call("bdev_get_bdevs")), 30))
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        check("host_ops", False, repr(e))
    finally:
        for _ in range(4):
            try:
                g.send("go\n")
            except Exception:  # noqa: BLE001
                break


def run(verbose: bool = False, keep: bool = False) -> bool:
    for exe in (SNAP, PERF):
        if not exe.exists():
            print(f"SKIP: {exe} not built")
            return True
    guest.ensure_setup()
    work = Path(tempfile.mkdtemp(prefix="vdpu-nvmetcp-e2e-"))
    snap = Snap(work)
    checks: list = []
    t0 = time.monotonic()
    port = guest.free_tcp_port()
    try:
        snap.start()
        script = GUEST_SCRIPT.replace("@NQN@", NQN).replace("@MB@", str(DISK_MB))
        g = guest.Guest(guest.nvmet_user_net_args(port), script, timeout_s=480, smp=1,
                        expect=EXPECT, log_path=work / "console.log", echo=verbose)
        with g:
            th = threading.Thread(target=host_ops, args=(g, snap, port, checks), daemon=True)
            th.start()
            res = g.wait()
            th.join(30)
        guest.record_guest_checks(checks, res, EXPECT, snap.proc, verbose)
    finally:
        snap.stop()
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return guest.report_checks(checks, t0)


def test_nvme_tcp_initiator_guest():  # pytest entry point
    assert run()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="echo the guest console")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    sys.exit(0 if run(a.verbose, a.keep) else 1)
