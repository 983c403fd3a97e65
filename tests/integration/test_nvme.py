#!/usr/bin/env python3
"""Integration test of the NVMe manager through a real vdpu-snap daemon
(spec snap-storage §6; nvme-emulation §9): the configuration is made with the
real CLI (snap_rpc / spdk_rpc = vdpu-rpc of the build tree), following the
§6.1 ordering rule (controller created suspended, namespace attached,
resumed); then I/O runs through the function's vfio-user socket with
`vdpu-perf nvme` (write + read-back verification, then a short randread).
The error cases check the JSON-RPC error code.

    VDPU_BIN_DIR=build/bin python3 tests/integration/test_nvme.py -v

Python 3 stdlib only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from common import EBUSY, EEXIST, EINVAL, ENODEV, ESTATE, SNAP, Daemon, RpcError, find_bin

PERF = find_bin("vdpu-perf")
CLI = find_bin("snap_rpc") if find_bin("snap_rpc").exists() else find_bin("vdpu-rpc")

NQN = "nqn.2022-10.io.nvda.nvme:0"
NQN2 = "nqn.2016-06.io.spdk:cnode1"
UUID = "263826ad-19a3-4feb-bc25-4bc81ee7749e"

EMU_CONF = """\
# test layout: 1 NVMe PF, 1 virtio-blk PF, 3 hotplug slots
PCI_SWITCH_EMULATION_ENABLE=1
PCI_SWITCH_EMULATION_NUM_PORT=4
NVME_EMULATION_ENABLE=1
NVME_EMULATION_NUM_PF=1
VIRTIO_BLK_EMULATION_ENABLE=1
VIRTIO_BLK_EMULATION_NUM_PF=1
"""


@unittest.skipUnless(SNAP.exists() and CLI.exists(), f"{SNAP} or {CLI} not built")
class NvmeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix="vdpu-nvme-it-"))
        cls.d = Daemon(cls.work, EMU_CONF)
        cls.d.start()
        cls.rpc = cls.d.rpc

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        if rc not in (0, None):
            print((cls.work / "vdpu-snap.log").read_text()[-3000:])
        shutil.rmtree(cls.work, ignore_errors=True)

    # ---- helpers
    def cli(self, *args, ok=True):
        """Runs the real CLI (snap_rpc) against the daemon; returns parsed stdout."""
        p = subprocess.run([str(CLI), "-s", self.d.sock, *map(str, args)],
                           capture_output=True, text=True, timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, f"{args}: {p.stdout}{p.stderr}")
            out = p.stdout.strip()
            try:
                return json.loads(out) if out else None
            except ValueError:
                return out
        self.assertNotEqual(p.returncode, 0, f"{args} unexpectedly succeeded: {p.stdout}")
        return p.stdout + p.stderr

    def rpc_err(self, code, method, **params):
        with self.assertRaises(RpcError) as cm:
            self.rpc(method, **params)
        self.assertEqual(cm.exception.code, code, cm.exception.message)
        return cm.exception.message

    def perf(self, *args, timeout=180):
        if not PERF.exists():
            self.skipTest(f"{PERF} not built")
        return subprocess.run([str(PERF), "nvme", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout)

    def perf_bg(self, *args):
        if not PERF.exists():
            self.skipTest(f"{PERF} not built")
        return subprocess.Popen([str(PERF), "nvme", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def wait_io(self, get, cond, timeout=30):
        """Polls get() until cond(result) holds; returns the result."""
        end = time.monotonic() + timeout
        while True:
            r = get()
            if cond(r) or time.monotonic() > end:
                self.assertTrue(cond(r), r)
                return r
            time.sleep(0.1)

    def wait_socket(self, path, present=True):
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if os.path.exists(path) == present:
                return
            time.sleep(0.02)
        self.fail(f"socket {path} {'missing' if present else 'still there'}")

    # ---- tests (run in name order: test_1..., test_2...)
    def test_1_snap_flow_io_and_errors(self):
        self.cli("bdev_malloc_create", "-b", "Malloc0", 64, 512)
        self.cli("bdev_malloc_create", "-b", "Malloc1", 16, 512)
        self.cli("nvme_subsystem_create", "-s", NQN, "-nn", 16, "--mnan", 8, "-sn", "VDPUIT0001",
                 "-mn", "vdpu integration")
        self.cli("nvme_namespace_create", "-s", NQN, "-b", "Malloc0", "-n", 1, "--uuid", UUID)
        res = self.cli("nvme_controller_create", "--nqn", NQN, "--pf_id", 0, "--suspended",
                       "--num_queues", 2)
        self.assertEqual(res, {"ctrl_id": "NVMeCtrl1"})
        self.assertIs(self.cli("nvme_controller_attach_ns", "-c", "NVMeCtrl1", "-n", 1), True)
        self.cli("nvme_controller_resume", "-c", "NVMeCtrl1")
        ctrls = self.cli("nvme_controller_list", "-c", "NVMeCtrl1")
        self.assertEqual(len(ctrls), 1)
        c = ctrls[0]
        for k in ("ctrl_id", "nqn", "vhca_id", "num_queues", "mdts", "namespaces"):
            self.assertIn(k, c)
        self.assertEqual(c["namespaces"], [{"nsid": 1, "bdev": "Malloc0", "uuid": UUID}])
        sock = c["socket"]
        self.wait_socket(sock)
        fl = self.rpc("emulation_function_list")
        nvme_pf = [f for f in fl if f["emulation_type"] == "NVME"][0]
        self.assertEqual(nvme_pf["ctrl_id"], "NVMeCtrl1")
        self.assertEqual(nvme_pf["socket"], sock)

        # I/O through the vfio-user socket: pattern written, read back, compared.
        p = self.perf("--socket", sock, "--verify", 4, "-q", 16, "--queues", 2, "--json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        v = json.loads(p.stdout)
        self.assertEqual(v["errors"], 0)
        self.assertEqual(v["mismatches"], 0)
        self.assertEqual(v["bytes"], 4 << 20)
        # The counters live with the I/O queues: read them while a run goes on.
        bg = self.perf_bg("--socket", sock, "-w", "randrw", "-q", 8, "-t", 3, "--json")
        st = self.wait_io(lambda: self.cli("nvme_controller_dbg_io_stats_get", "-c", "NVMeCtrl1"),
                          lambda s: s["read_io_count"] > 0 and s["write_io_count"] > 0)
        out, err = bg.communicate(timeout=120)
        self.assertEqual(bg.returncode, 0, out + err)
        self.assertGreater(json.loads(out)["ios"], 0)
        self.assertEqual(st["ctrl_id"], "NVMeCtrl1")
        self.assertEqual(st["read_io_count"], sum(q["read_io_count"] for q in st["queues"]))
        self.assertEqual(st["write_io_count"], sum(q["write_io_count"] for q in st["queues"]))

        # Bad cases (CLI fails; the daemon answers the right code).
        self.cli("nvme_namespace_create", "-s", NQN, "-b", "Malloc1", "-n", 2)
        # Attach/detach on the running controller: quiesced around the change.
        self.assertIs(self.cli("nvme_controller_attach_ns", "-c", "NVMeCtrl1", "-n", 2), True)
        ns = self.cli("nvme_controller_list", "-c", "NVMeCtrl1")[0]
        self.assertEqual([n["nsid"] for n in ns["namespaces"]], [1, 2])
        self.assertFalse(ns["suspended"])
        self.rpc_err(EEXIST, "nvme_controller_attach_ns", ctrl="NVMeCtrl1", nsid=2)
        self.assertIs(self.cli("nvme_controller_detach_ns", "-c", "NVMeCtrl1", "-n", 2), True)
        self.rpc_err(ENODEV, "nvme_controller_detach_ns", ctrl="NVMeCtrl1", nsid=2)
        self.cli("nvme_namespace_create", "-s", NQN, "-b", "Malloc1", "-n", 1, ok=False)
        self.rpc_err(EEXIST, "nvme_namespace_create", nqn=NQN, bdev_name="Malloc1", nsid=2)
        self.rpc_err(ENODEV, "nvme_namespace_create", nqn=NQN, bdev_name="NoSuchBdev", nsid=3)
        self.cli("nvme_controller_resume", "-c", "NVMeCtrl9", ok=False)
        self.rpc_err(ENODEV, "nvme_controller_resume", ctrl="NVMeCtrl9")
        self.rpc_err(ENODEV, "nvme_controller_attach_ns", ctrl_id="NVMeCtrl9", nsid=1)
        self.cli("nvme_namespace_create", "-s", NQN, "-b", "Malloc1", "-n", 17, ok=False)
        self.rpc_err(EINVAL, "nvme_namespace_create", nqn=NQN, bdev_name="Malloc1", nsid=17)
        self.rpc_err(EINVAL, "nvme_controller_create", nqn=NQN, pf_id=0, num_queues=32)
        self.rpc_err(EINVAL, "nvme_controller_create", nqn=NQN, pf_id=0, mdts=8)
        # Not implemented: refused, not silently dropped.
        self.rpc_err(EINVAL, "nvme_controller_create", nqn=NQN, pf_id=0, compare_write=True)
        self.rpc_err(EINVAL, "nvme_controller_create", nqn=NQN, pf_id=0, write_uncor=True)
        self.rpc_err(EEXIST, "nvme_controller_create", nqn=NQN, pf_id=0)  # function taken
        self.rpc_err(ENODEV, "nvme_controller_create", nqn="nqn.x:none", pf_id=0)
        self.rpc_err(EBUSY, "nvme_subsystem_destroy", nqn=NQN)  # not empty, no force

        # save_config replays the §6.1 order.
        cfg = self.rpc("save_config")
        nv = [s for s in cfg["subsystems"] if s["subsystem"] == "nvme"][0]["config"]
        methods = [e["method"] for e in nv]
        self.assertEqual(methods[:2], ["nvme_subsystem_create", "nvme_namespace_create"])
        i = methods.index("nvme_controller_create")
        self.assertEqual(methods[i:i + 3], ["nvme_controller_create", "nvme_controller_attach_ns",
                                            "nvme_controller_resume"])
        self.assertTrue(nv[i]["params"]["suspended"])

        # Cleanup in the spec's order (§6.7): detach (running), destroy, ns, subsystem.
        self.assertIs(self.cli("nvme_controller_detach_ns", "-c", "NVMeCtrl1", "-n", 1), True)
        self.cli("nvme_controller_destroy", "-c", "NVMeCtrl1")
        self.wait_socket(sock, present=False)
        self.cli("nvme_namespace_destroy", "-n", 1, "--nqn", NQN)
        self.cli("nvme_subsystem_destroy", "--nqn", NQN, "--force")
        self.assertEqual(self.cli("nvme_subsystem_list"), [])
        self.cli("bdev_malloc_delete", "Malloc1")

    def test_2_nvmf_emulation_transport(self):
        self.cli("bdev_malloc_create", "-b", "Malloc2", 32, 512)
        self.cli("nvmf_create_transport", "-t", "doca")
        self.rpc_err(EEXIST, "nvmf_create_transport", trtype="vfio_user")
        tr = self.cli("nvmf_get_transports")
        self.assertEqual(tr[0]["trtype"], "DOCA")
        self.assertEqual(tr[0]["max_queue_depth"], 512)
        mgrs = self.cli("nvmf_doca_get_managers")
        dev = mgrs[0]["name"]
        created = self.cli("nvmf_doca_create_function", "-d", dev)
        vuid = created["Created a function with vuid"]
        self.assertIn(vuid, [f["Function VUID: "] for f in self.cli("nvmf_doca_list_functions", "-d", dev)])
        self.cli("nvmf_create_subsystem", NQN2, "-a", "-s", "SPDK00000000000001")
        nsid = self.cli("nvmf_subsystem_add_ns", NQN2, "Malloc2")
        self.assertEqual(nsid, 1)
        self.cli("nvmf_subsystem_add_listener", NQN2, "-t", "doca", "-a", vuid)
        subs = self.cli("nvmf_get_subsystems")
        s = [x for x in subs if x["nqn"] == NQN2][0]
        self.assertEqual(s["subtype"], "NVMe")
        self.assertEqual(s["listen_addresses"][0]["traddr"], vuid)
        self.assertEqual(s["namespaces"][0]["bdev_name"], "Malloc2")
        fn = [f for f in self.rpc("emulation_function_list") if f["vuid"] == vuid][0]
        self.assertEqual(fn["hotplug state"], "POWER_ON")
        self.wait_socket(fn["socket"])
        p = self.perf("--socket", fn["socket"], "--verify", 2, "-q", 4, "--json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["mismatches"], 0)
        bg = self.perf_bg("--socket", fn["socket"], "-w", "randread", "-q", 4, "-t", 3)
        self.wait_io(lambda: self.cli("nvmf_get_stats"),
                     lambda s: s["poll_groups"][0]["completed_nvme_io"] > 0
                     and s["poll_groups"][0]["current_io_qpairs"] == 1)
        bg.communicate(timeout=120)
        self.assertEqual(bg.returncode, 0)
        self.rpc_err(ENODEV, "nvmf_subsystem_add_listener", nqn=NQN2,
                     listen_address={"trtype": "DOCA", "traddr": "NOSUCHVUID"})
        self.cli("nvmf_subsystem_remove_listener", NQN2, "-t", "doca", "-a", vuid)
        self.wait_socket(fn["socket"], present=False)
        self.cli("nvmf_delete_subsystem", NQN2)
        self.assertIs(self.cli("nvmf_doca_destroy_function", "-d", dev, "-v", vuid), True)
        self.cli("bdev_malloc_delete", "Malloc2")


if __name__ == "__main__":
    unittest.main()
