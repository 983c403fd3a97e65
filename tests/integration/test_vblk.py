#!/usr/bin/env python3
"""Integration test of the VBLK manager through a real vdpu-snap daemon
(spec snap-storage §4.1-4.3, §5): JSON-RPC over the unix socket, the
vhost-user socket of each function, and a short I/O run with
`vdpu-perf blk` (the vhost-user front-end) when it is built.

    VDPU_BIN_DIR=build/bin python3 tests/integration/test_vblk.py -v

Python 3 stdlib only. Every error case checks the JSON-RPC error code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from common import EBUSY, EEXIST, EINVAL, ENODEV, ESTATE, ETIMEDOUT, SNAP, Daemon, RpcError, find_bin

PERF = find_bin("vdpu-perf")

EMU_CONF = """\
# test layout: 1 virtio-blk PF with 2 VFs, 1 NVMe PF, 3 hotplug slots
SRIOV_EN=1
PCI_SWITCH_EMULATION_ENABLE=1
PCI_SWITCH_EMULATION_NUM_PORT=4
VIRTIO_BLK_EMULATION_ENABLE=1
VIRTIO_BLK_EMULATION_NUM_PF=1
VIRTIO_BLK_EMULATION_NUM_VF=2
NVME_EMULATION_ENABLE=1
NVME_EMULATION_NUM_PF=1
"""


def perf_blk_available() -> bool:
    if not PERF.exists():
        return False
    r = subprocess.run([str(PERF), "blk", "--help"], capture_output=True, text=True)
    return r.returncode == 0 and "--socket" in r.stdout


@unittest.skipUnless(SNAP.exists(), f"{SNAP} not built")
class VblkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix="vdpu-vblk-it-"))
        cls.d = Daemon(cls.work, EMU_CONF, args=("--rpc-log", cls.work / "rpc-log"),
                       start_timeout=20)
        cls.d.start()
        cls.rpc = cls.d.rpc

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        if os.environ.get("VDPU_KEEP") != "1":
            shutil.rmtree(cls.work, ignore_errors=True)

    # ---- helpers ----
    def assertRpcError(self, code, method, **params):
        with self.assertRaises(RpcError, msg=f"{method} {params}") as cm:
            self.rpc(method, **params)
        self.assertEqual(cm.exception.code, code, cm.exception.message)
        return cm.exception.message

    def functions(self, all_=True):
        return self.rpc("emulation_function_list", all=all_)

    def vblk_pf(self):
        return next(f for f in self.functions() if f["emulation_type"] == "VBLK"
                    and not f["hotplugged"])

    def malloc(self, name, mb=16, bs=512):
        return self.rpc("bdev_malloc_create", name=name, num_blocks=mb * 1024 * 1024 // bs,
                        block_size=bs)

    def destroy(self, ctrl):
        self.rpc("virtio_blk_controller_destroy", ctrl=ctrl)

    # ---- tests ----
    def test_function_list_shape(self):
        fl = self.functions()
        types = sorted(f["emulation_type"] for f in fl if not f["hotplugged"])
        self.assertEqual(types, ["NVME", "VBLK"])
        pf = self.vblk_pf()
        for k in ("hotplugged", "hotplug state", "emulation_type", "pf_index", "pci_bdf",
                  "vhca_id", "vuid", "num_vfs", "vfs", "socket"):
            self.assertIn(k, pf)
        self.assertEqual(pf["hotplug state"], "POWER_ON")
        self.assertTrue(pf["vuid"].endswith("VBLKS0D0F0"), pf["vuid"])
        self.assertEqual(len(pf["vfs"]), 2)                       # --all shows inactive VFs
        self.assertEqual(pf["vfs"][1]["vf_index"], 1)
        self.assertEqual(len(self.functions(False)[0]["vfs"]), 0)  # inactive VFs hidden
        vhcas = [f["vhca_id"] for f in fl] + [v["vhca_id"] for f in fl for v in f["vfs"]]
        self.assertEqual(len(vhcas), len(set(vhcas)))

    def test_controller_lifecycle_and_io(self):
        self.malloc("ItM0", 32)
        self.malloc("ItM1", 32)
        pf = self.vblk_pf()
        name = self.rpc("virtio_blk_controller_create", pf_id=0, bdev="ItM0", num_queues=2,
                        vblk_id="it-serial")
        self.assertRegex(name, r"^VblkCtrl\d+$")
        try:
            self.assertTrue(os.path.exists(pf["socket"]), pf["socket"])
            self.assertEqual(self.vblk_pf()["ctrl_id"], name)
            lst = self.rpc("virtio_blk_controller_list", ctrl=name)
            self.assertEqual(len(lst), 1)
            e = lst[0]
            for k in ("ctrl_id", "vhca_id", "num_queues", "queue_size", "seg_max", "size_max",
                      "bdev", "plugged", "indirect_desc", "num_msix", "min configurable num_msix",
                      "max configurable num_msix", "vblk_id", "force_in_order", "admin_q",
                      "dbg_local_optimized", "read_only"):
                self.assertIn(k, e)
            self.assertEqual((e["num_queues"], e["queue_size"], e["seg_max"], e["size_max"]),
                             (2, 256, 1, 4096))
            self.assertEqual(e["bdev"], "ItM0")
            self.assertTrue(e["plugged"])
            self.assertEqual(e["vblk_id"], "it-serial")
            # bdev in use cannot be deleted (claimed)
            self.assertRpcError(EBUSY, "bdev_malloc_delete", name="ItM0")

            if perf_blk_available():
                r = subprocess.run([str(PERF), "blk", "--socket", pf["socket"], "-t", "1",
                                    "--queues", "2", "-q", "8", "-w", "randrw", "--json"],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                st = self.rpc("virtio_blk_controller_dbg_io_stats_get", ctrl=name)
                self.assertEqual(len(st["queues"]), 2)
                for k in ("read_io_count", "write_io_count", "flush_io_count"):
                    self.assertEqual(st[k], sum(q[k] for q in st["queues"]))  # §5.4 MUST
                self.assertGreater(st["read_io_count"] + st["write_io_count"], 0)
            else:
                print("note: vdpu-perf blk not built: I/O run skipped", file=sys.stderr)

            dbg = self.rpc("virtio_blk_controller_dbg_debug_stats_get", ctrl=name)
            self.assertEqual(dbg["ctrl_id"], name)
            self.assertEqual(len(dbg["queues"]), 2)

            # suspend / resume
            self.assertRpcError(ESTATE, "virtio_blk_controller_resume", ctrl=name)
            self.assertTrue(self.rpc("virtio_blk_controller_suspend", ctrl=name))
            self.assertTrue(self.rpc("virtio_blk_controller_list", ctrl=name)[0]["suspended"])
            state = str(self.work / "state.json")
            self.assertTrue(self.rpc("virtio_blk_controller_state_save", ctrl=name, filename=state))
            with open(state) as f:
                saved = json.load(f)
            self.assertEqual(saved["num_queues"], 2)
            self.assertEqual([q["qid"] for q in saved["queues"]], [0, 1])
            for q in saved["queues"]:   # ring position + what is to be redone, per queue
                for k in ("started", "last_avail_idx", "last_used_idx", "inflight"):
                    self.assertIn(k, q)
            # A malformed or foreign state is refused, naming the file.
            bad_state = str(self.work / "state-bad.json")
            for queues in ([dict(q, inflight=["x"]) for q in saved["queues"]],
                           [dict(q, last_avail_idx=70000) for q in saved["queues"]],
                           [dict(q, qid=0) for q in saved["queues"]]):
                with open(bad_state, "w") as f:
                    json.dump(dict(saved, queues=queues), f)
                msg = self.assertRpcError(EINVAL, "virtio_blk_controller_state_restore",
                                          ctrl=name, filename=bad_state)
                self.assertIn("state-bad.json", msg)
            self.assertTrue(self.rpc("virtio_blk_controller_state_restore", ctrl=name,
                                     filename=state))
            self.assertTrue(self.rpc("virtio_blk_controller_resume", ctrl=name))
            self.assertRpcError(ESTATE, "virtio_blk_controller_state_save", ctrl=name,
                                filename=state)

            # bdev detach / attach (swap)
            self.assertTrue(self.rpc("virtio_blk_controller_bdev_detach", ctrl=name))
            e = self.rpc("virtio_blk_controller_list", ctrl=name)[0]
            self.assertEqual(e["bdev"], "none")
            self.assertTrue(e["suspended"])
            self.assertRpcError(ESTATE, "virtio_blk_controller_bdev_detach", ctrl=name)
            self.assertRpcError(ENODEV, "virtio_blk_controller_bdev_attach", ctrl=name,
                                bdev="NoSuchBdev")
            self.assertTrue(self.rpc("virtio_blk_controller_bdev_attach", ctrl=name, bdev="ItM1"))
            e = self.rpc("virtio_blk_controller_list", ctrl=name)[0]
            self.assertEqual(e["bdev"], "ItM1")
            self.assertFalse(e["suspended"])
            self.assertTrue(self.rpc("bdev_malloc_delete", name="ItM0"))  # no longer claimed
            self.assertRpcError(EBUSY, "virtio_blk_controller_bdev_attach", ctrl=name, bdev="ItM1")

            # save_config recreates the controller
            cfg = self.rpc("save_config")
            vblk = [s for s in cfg["subsystems"] if s["subsystem"] == "vblk"]
            self.assertEqual(len(vblk), 1)
            creates = [c["params"] for c in vblk[0]["config"]
                       if c["method"] == "virtio_blk_controller_create"]
            mine = [p for p in creates if p["ctrl"] == name]
            self.assertEqual(len(mine), 1)
            self.assertEqual(mine[0]["bdev"], "ItM1")
            self.assertEqual(mine[0]["vuid"], pf["vuid"])
        finally:
            self.destroy(name)
        self.assertFalse(os.path.exists(pf["socket"]))
        self.assertNotIn("ctrl_id", self.vblk_pf())
        self.assertTrue(self.rpc("bdev_malloc_delete", name="ItM1"))

    def test_error_cases(self):
        self.malloc("ItE0")
        self.malloc("ItE1")
        # §5.1: the bdev must exist
        self.assertRpcError(ENODEV, "virtio_blk_controller_create", pf_id=0, bdev="NoSuchBdev")
        # no function given / unknown function
        self.assertRpcError(EINVAL, "virtio_blk_controller_create", bdev="ItE0")
        self.assertRpcError(ENODEV, "virtio_blk_controller_create", vuid="NOPE", bdev="ItE0")
        self.assertRpcError(EINVAL, "virtio_blk_controller_create", vf_id=0, bdev="ItE0")
        # queue_size: schema range and power of two
        for qs in (0, 257, 100):
            msg = self.assertRpcError(EINVAL, "virtio_blk_controller_create", pf_id=0,
                                      bdev="ItE0", queue_size=qs)
            self.assertIn("queue_size", msg)
        self.assertRpcError(EINVAL, "virtio_blk_controller_create", pf_id=0, bdev="ItE0",
                            num_queues=65)
        name = self.rpc("virtio_blk_controller_create", pf_id=0, bdev="ItE0", queue_size=128,
                        read_only=1)
        try:
            # one controller per function
            self.assertRpcError(EEXIST, "virtio_blk_controller_create", pf_id=0, bdev="ItE1")
            # duplicate name on another function
            self.assertRpcError(EEXIST, "virtio_blk_controller_create", pf_id=0, vf_id=0,
                                bdev="ItE1", ctrl=name)
            # §5.4 (*): modify needs a controller
            self.assertRpcError(EINVAL, "virtio_blk_controller_modify", num_queues=2)
            self.assertRpcError(ENODEV, "virtio_blk_controller_modify", ctrl="VblkCtrl999",
                                num_queues=2)
            self.assertTrue(self.rpc("virtio_blk_controller_modify", ctrl=name, num_queues=4))
            self.assertEqual(self.rpc("virtio_blk_controller_list", ctrl=name)[0]["num_queues"], 4)
            self.assertTrue(self.rpc("virtio_blk_controller_list", ctrl=name)[0]["read_only"])
            self.assertRpcError(ENODEV, "virtio_blk_controller_list", ctrl="VblkCtrl999")
            # hotplug of a static function
            self.assertRpcError(EINVAL, "virtio_blk_controller_hotplug", ctrl=name)
            self.assertRpcError(EINVAL, "virtio_blk_controller_create", unknown_param=1,
                                pf_id=0)
        finally:
            self.destroy(name)
        self.assertRpcError(ENODEV, "virtio_blk_controller_destroy", ctrl=name)
        self.assertRpcError(ENODEV, "virtio_blk_controller_destroy", ctrl="VblkCtrl999")
        self.assertRpcError(ENODEV, "virtio_blk_controller_suspend", ctrl="VblkCtrl999")
        self.assertRpcError(ENODEV, "virtio_blk_controller_dbg_io_stats_get", ctrl="VblkCtrl999")
        for b in ("ItE0", "ItE1"):
            self.rpc("bdev_malloc_delete", name=b)

    def test_two_step_hotplug(self):
        self.malloc("ItH0")
        fn = self.rpc("virtio_blk_function_create")
        vuid = fn["vuid"]
        self.assertIn("vhca_id", fn)
        f = next(x for x in self.functions() if x["vuid"] == vuid)
        self.assertTrue(f["hotplugged"])
        self.assertEqual(f["hotplug state"], "POWER_OFF")
        self.assertRpcError(ENODEV, "virtio_blk_controller_hotplug", ctrl="VblkCtrl999")
        name = self.rpc("virtio_blk_controller_create", vuid=vuid, bdev="ItH0")
        self.assertFalse(os.path.exists(f["socket"]))   # not visible before hotplug
        self.assertFalse(self.rpc("virtio_blk_controller_list", ctrl=name)[0]["plugged"])
        self.assertRpcError(EINVAL, "virtio_blk_controller_hotplug", ctrl=name, timeout=10)
        self.assertTrue(self.rpc("virtio_blk_controller_hotplug", ctrl=name))
        self.assertTrue(os.path.exists(f["socket"]))
        f = next(x for x in self.functions() if x["vuid"] == vuid)
        self.assertEqual(f["hotplug state"], "POWER_ON")
        self.assertEqual(f["ctrl_id"], name)
        self.assertRpcError(ESTATE, "virtio_blk_controller_hotplug", ctrl=name)
        self.assertRpcError(EBUSY, "virtio_blk_function_destroy", vuid=vuid)
        self.assertTrue(self.rpc("virtio_blk_controller_hotunplug", ctrl=name, wait_for_done=True))
        self.assertFalse(os.path.exists(f["socket"]))
        self.destroy(name)
        self.assertTrue(self.rpc("virtio_blk_function_destroy", vuid=vuid))
        self.assertFalse(any(x["vuid"] == vuid for x in self.functions()))
        self.assertRpcError(ENODEV, "virtio_blk_function_destroy", vuid=vuid)
        self.rpc("bdev_malloc_delete", name="ItH0")

    def test_hotplug_wait_times_out_without_host(self):
        self.malloc("ItW0")
        vuid = self.rpc("virtio_blk_function_create")["vuid"]
        name = self.rpc("virtio_blk_controller_create", vuid=vuid, bdev="ItW0")
        self.assertRpcError(ETIMEDOUT, "virtio_blk_controller_hotplug", ctrl=name, wait_for_done=True,
                            timeout=200)
        self.assertTrue(self.rpc("virtio_blk_controller_hotunplug", ctrl=name))
        self.destroy(name)
        self.rpc("virtio_blk_function_destroy", vuid=vuid)
        self.rpc("bdev_malloc_delete", name="ItW0")

    def test_legacy_attach_detach(self):
        self.malloc("ItL0")
        res = self.rpc("virtio_blk_emulation_device_attach", num_queues=2)
        vuid = res["vuid"]
        f = next(x for x in self.functions() if x["vuid"] == vuid)
        self.assertEqual(f["hotplug state"], "POWER_ON")
        self.assertRpcError(ESTATE, "emulation_device_detach_prepare", vuid=vuid)  # no controller
        name = self.rpc("virtio_blk_controller_create", vuid=vuid, bdev="ItL0")
        self.assertTrue(os.path.exists(f["socket"]))   # exposed at once
        self.assertRpcError(EBUSY, "emulation_device_detach", vuid=vuid)
        self.assertTrue(self.rpc("emulation_device_detach_prepare", vuid=vuid))
        self.assertFalse(os.path.exists(f["socket"]))
        self.destroy(name)
        self.assertTrue(self.rpc("emulation_device_detach", vuid=vuid))
        self.assertFalse(any(x["vuid"] == vuid for x in self.functions()))
        self.assertRpcError(EINVAL, "emulation_device_detach")
        self.rpc("bdev_malloc_delete", name="ItL0")

    def test_vf_dynamic_msix(self):
        self.malloc("ItV0")
        self.malloc("ItV1")
        pfc = self.rpc("virtio_blk_controller_create", pf_id=0, bdev="ItV0", dynamic_msix=True)
        try:
            self.assertTrue(self.rpc("virtio_blk_controller_vfs_msix_reclaim", ctrl=pfc))
            e = self.rpc("virtio_blk_controller_list", ctrl=pfc)[0]
            for k in ("free_msix", "free_queues", "vf_min_msix", "vf_max_msix",
                      "vf_min_queues", "vf_max_queues"):
                self.assertIn(k, e)
            free = e["free_msix"]
            self.assertGreater(free, 0)
            self.assertRpcError(EINVAL, "virtio_blk_controller_create", pf_id=0, vf_id=1,
                                bdev="ItV1", vf_num_msix=free + 1, num_queues=1)
            vfc = self.rpc("virtio_blk_controller_create", pf_id=0, vf_id=1, bdev="ItV1",
                           vf_num_msix=2, num_queues=1)
            self.assertEqual(self.rpc("virtio_blk_controller_list", ctrl=pfc)[0]["free_msix"],
                             free - 2)
            self.assertRpcError(EINVAL, "virtio_blk_controller_vfs_msix_reclaim", ctrl=vfc)
            self.rpc("virtio_blk_controller_destroy", ctrl=vfc, release_msix=True)
            self.assertEqual(self.rpc("virtio_blk_controller_list", ctrl=pfc)[0]["free_msix"],
                             free)
        finally:
            self.destroy(pfc)
        for b in ("ItV0", "ItV1"):
            self.rpc("bdev_malloc_delete", name=b)

    def test_vuid_stable_across_restart(self):
        before = {f["vuid"] for f in self.functions()}
        vuid = self.rpc("virtio_blk_function_create")["vuid"]
        type(self).d.stop()
        type(self).d.start()
        after = {f["vuid"] for f in self.functions()}
        self.assertEqual(after, before | {vuid})   # hotplug functions persist (§1.4)
        self.rpc("virtio_blk_function_destroy", vuid=vuid)


if __name__ == "__main__":
    unittest.main()
