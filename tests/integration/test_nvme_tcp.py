#!/usr/bin/env python3
"""vdpu's NVMe/TCP initiator against vdpu's NVMe/TCP target over loopback:
two vdpu-snap daemons, the target serving a malloc namespace
(nvmf_create_transport -t tcp, nvmf_create_subsystem, nvmf_subsystem_add_ns,
nvmf_subsystem_add_listener) and the initiator attaching it with
bdev_nvme_attach_controller and serving nvme0n1 as a virtio-blk device that
`vdpu-perf blk` drives (with --verify when it has it). Then the error
answers, save_config, and the controller loss after the target dies.

    VDPU_BIN_DIR=build/bin python3 tests/integration/test_nvme_tcp.py -v

Exits 77 (skipped) when the target side (nvmf_create_transport -t tcp) is
not in this build.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from common import BIN, EEXIST, EINVAL, ENODEV, SNAP, Daemon, RpcError

PERF = BIN / "vdpu-perf"

NQN = "nqn.2016-06.io.spdk:cnode1"
EIO = -5
EMU_CONF = "VIRTIO_BLK_EMULATION_ENABLE=1\nVIRTIO_BLK_EMULATION_NUM_PF=1\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(pred, seconds=60.0, step=0.1):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


@unittest.skipUnless(SNAP.exists(), f"{SNAP} not built")
class NvmeTcpLoopback(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix="vdpu-nvmetcp-it-"))
        cls.tgt = Daemon(cls.work / "target", EMU_CONF, mask="0x2")
        cls.ini = Daemon(cls.work / "initiator", EMU_CONF, mask="0x1")
        cls.tgt.start()
        cls.ini.start()
        cls.port = free_port()
        t = cls.tgt.rpc
        try:
            t("nvmf_create_transport", trtype="TCP")
        except RpcError as e:
            if e.code == -32601:  # method not found: no target in this build
                cls.tearDownClass()
                raise unittest.SkipTest("nvmf_create_transport -t tcp not available")
            raise
        t("bdev_malloc_create", name="Malloc0", num_blocks=65536, block_size=512)
        t("nvmf_create_subsystem", nqn=NQN, allow_any_host=True, serial_number="VDPU0001")
        t("nvmf_subsystem_add_ns", nqn=NQN, namespace={"bdev_name": "Malloc0"})
        t("nvmf_subsystem_add_listener", nqn=NQN,
          listen_address={"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                          "trsvcid": str(cls.port)})

    @classmethod
    def tearDownClass(cls):
        cls.ini.stop()
        cls.tgt.stop()
        if os.environ.get("VDPU_KEEP") != "1":
            shutil.rmtree(cls.work, ignore_errors=True)

    def attach(self, name="nvme0", **kw):
        p = dict(name=name, trtype="tcp", traddr="127.0.0.1", adrfam="ipv4",
                 trsvcid=str(self.port), subnqn=NQN)
        p.update(kw)
        return self.ini.rpc("bdev_nvme_attach_controller", **p)

    def assertRpcError(self, code, method, **params):
        with self.assertRaises(RpcError, msg=f"{method} {params}") as cm:
            self.ini.rpc(method, **params)
        self.assertEqual(cm.exception.code, code, cm.exception.message)
        return cm.exception.message

    def test_1_attach_io_detach(self):
        rpc = self.ini.rpc
        self.assertEqual(self.attach(), ["nvme0n1"])
        try:
            b = rpc("bdev_get_bdevs", name="nvme0n1")[0]
            self.assertEqual((b["block_size"], b["num_blocks"]), (512, 65536))
            c = rpc("bdev_nvme_get_controllers", name="nvme0")
            self.assertEqual(c[0]["name"], "nvme0")
            ctrl = c[0]["ctrlrs"][0]
            self.assertEqual(ctrl["state"], "enabled")
            self.assertEqual(ctrl["trid"]["trsvcid"], str(self.port))
            self.assertEqual(ctrl["trid"]["subnqn"], NQN)

            # Errors name the problem.
            msg = self.assertRpcError(EEXIST, "bdev_nvme_attach_controller", name="nvme0",
                                      trtype="tcp", traddr="127.0.0.1", trsvcid=str(self.port),
                                      subnqn=NQN)
            self.assertIn("nvme0", msg)
            with self.assertRaises(RpcError) as cm:
                self.attach("bad0", subnqn="nqn.2016-06.io.spdk:nosuch")
            self.assertIn("Connect", cm.exception.message)
            msg = self.assertRpcError(EIO, "bdev_nvme_attach_controller", name="bad1",
                                      trtype="tcp", traddr="127.0.0.1", trsvcid=str(free_port()),
                                      subnqn=NQN)
            self.assertIn("cannot connect", msg)
            self.assertRpcError(ENODEV, "bdev_nvme_detach_controller", name="nosuch")
            self.assertRpcError(EINVAL, "bdev_nvme_attach_controller", name="bad2", trtype="tcp",
                                traddr="127.0.0.1", trsvcid=str(self.port), subnqn=NQN,
                                ctrlr_loss_timeout_sec=-5)

            # save_config writes the attach back.
            cfg = rpc("save_config")
            calls = [e for s in cfg["subsystems"] for e in (s.get("config") or [])
                     if e["method"] == "bdev_nvme_attach_controller"]
            self.assertEqual(len(calls), 1)
            self.assertEqual(calls[0]["params"]["name"], "nvme0")
            self.assertEqual(calls[0]["params"]["trsvcid"], str(self.port))

            # Served as a virtio-blk device and driven by vdpu-perf blk.
            pf = next(f for f in rpc("emulation_function_list", all=True)
                      if f["emulation_type"] == "VBLK" and not f["hotplugged"])
            ctrl = rpc("virtio_blk_controller_create", pf_id=0, bdev="nvme0n1", num_queues=1)
            try:
                if PERF.exists():
                    help_ = subprocess.run([str(PERF), "blk", "--help"], capture_output=True,
                                           text=True).stdout
                    args = [str(PERF), "blk", "--socket", pf["socket"], "-t", "2", "-q", "8",
                            "-w", "randrw", "--json"]
                    if "--verify" in help_:
                        args.append("--verify")
                    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                st = rpc("bdev_get_iostat", name="nvme0n1")
                self.assertTrue(st)
            finally:
                rpc("virtio_blk_controller_destroy", ctrl=ctrl)
        finally:
            rpc("bdev_nvme_detach_controller", name="nvme0")
        self.assertEqual(rpc("bdev_nvme_get_controllers"), [])
        self.assertRpcError(ENODEV, "bdev_get_bdevs", name="nvme0n1")

    def test_2_controller_loss(self):
        rpc = self.ini.rpc
        self.assertEqual(self.attach("nvme1", ctrlr_loss_timeout_sec=3, reconnect_delay_sec=1),
                         ["nvme1n1"])
        # The target dies: the controller reconnects, then is deleted after
        # the loss timeout along with its bdev.
        self.tgt.proc.send_signal(signal.SIGKILL)
        self.tgt.proc.wait()
        self.assertTrue(eventually(lambda: rpc("bdev_nvme_get_controllers") == [], 60),
                        rpc("bdev_nvme_get_controllers"))
        self.assertRpcError(ENODEV, "bdev_get_bdevs", name="nvme1n1")


if __name__ == "__main__":
    prog = unittest.main(exit=False)
    res = prog.result
    if not res.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if res.skipped and res.testsRun <= len(res.skipped) else 0)
