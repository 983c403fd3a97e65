#!/usr/bin/env python3
"""Integration test of the NVMe-oF/TCP target through a real vdpu-snap: the
configuration is made over JSON-RPC the SPDK way (nvmf_create_transport -t
tcp, nvmf_create_subsystem, nvmf_subsystem_add_ns, _add_listener, _add_host),
then a raw NVMe/TCP host written in Python (nvmf_tcp_client.py) speaks to it:
ICReq, Connect, Property Get/Set, Identify, discovery log, writes (R2T and
in-capsule) and reads (C2HData SUCCESS) with and without digests, and bad
input (unknown PDU type, truncated and oversized PDUs, wrong digests,
unknown opcodes, a host that is not allowed) - each answered by the spec's
status or a C2HTermReq and a clean close, while the daemon keeps serving.

    VDPU_BIN_DIR=build/bin python3 tests/integration/test_nvmf_tcp.py -v
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SNAP, Daemon, RpcError  # noqa: E402
import nvmf_tcp_client as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:cnode1"
HOST = "nqn.2014-08.org.nvmexpress:uuid:0f8e2c44-1a59-4b2f-9a4e-3c0de1a1b2c3"
OTHER_HOST = "nqn.2014-08.org.nvmexpress:uuid:deadbeef-0000-4000-8000-000000000001"
EMU_CONF = "NVME_EMULATION_ENABLE=0\nVIRTIO_BLK_EMULATION_ENABLE=0\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(SNAP.exists(), f"{SNAP} not built")
class NvmfTcpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix="vdpu-nvmf-tcp-it-"))
        cls.d = Daemon(cls.work, EMU_CONF)
        cls.d.start()
        cls.rpc = cls.d.rpc
        cls.port = free_port()
        r = cls.rpc
        r("bdev_malloc_create", name="Malloc0", num_blocks=32768, block_size=512)
        r("nvmf_create_transport", trtype="TCP", max_queue_depth=64, in_capsule_data_size=8192,
          max_io_size=131072, io_unit_size=32768)
        r("nvmf_create_subsystem", nqn=NQN, serial_number="VDPU00000000001", allow_any_host=True)
        r("nvmf_subsystem_add_ns", nqn=NQN, namespace={"bdev_name": "Malloc0"})
        r("nvmf_subsystem_add_listener", nqn=NQN,
          listen_address={"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                          "trsvcid": str(cls.port)})

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        if rc not in (0, None):
            print((cls.work / "vdpu-snap.log").read_text()[-3000:])
        shutil.rmtree(cls.work, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError(f"vdpu-snap exited with {rc}")

    def host(self, **kw):
        h = nt.NvmeTcpHost("127.0.0.1", self.port, **kw)
        self.addCleanup(h.close)
        return h

    def session(self, **kw):
        h, cntlid = nt.admin_session("127.0.0.1", self.port, NQN, HOST, **kw)
        self.addCleanup(h.close)
        return h, cntlid

    def io_queue(self, cntlid, **kw):
        q = self.host(**kw)
        q.icreq()
        st = q.connect(NQN, HOST, qid=1, sqsize=31, cntlid=cntlid)[5]
        self.assertEqual(st, 0, hex(st))
        return q

    # ---------------------------------------------------------------- RPC view
    def test_rpc_view(self):
        subs = self.rpc("nvmf_get_subsystems")
        mine = [s for s in subs if s["nqn"] == NQN][0]
        la = mine["listen_addresses"][0]
        self.assertEqual(la["trtype"], "TCP")
        self.assertEqual(la["traddr"], "127.0.0.1")
        self.assertEqual(la["trsvcid"], str(self.port))
        tr = self.rpc("nvmf_get_transports", trtype="tcp")[0]
        self.assertEqual(tr["trtype"], "TCP")
        self.assertEqual(tr["max_queue_depth"], 64)
        self.assertEqual(tr["io_unit_size"], 32768)
        with self.assertRaises(RpcError):
            self.rpc("nvmf_create_transport", trtype="TCP")  # exists
        with self.assertRaises(RpcError):
            self.rpc("nvmf_create_transport", trtype="RDMA")
        # A second listener on an address that is not ours fails cleanly.
        with self.assertRaises(RpcError):
            self.rpc("nvmf_subsystem_add_listener", nqn=NQN,
                     listen_address={"trtype": "tcp", "traddr": "not-an-ip", "trsvcid": "4420"})
        stats = self.rpc("nvmf_get_stats")
        self.assertIn("TCP", [t["trtype"] for t in stats["poll_groups"][0]["transports"]])

    # ---------------------------------------------------------------- good path
    def test_identify_and_io(self):
        pfv, cpda, dgst, maxh2c = self.host().icreq()
        self.assertEqual((pfv, cpda, dgst, maxh2c), (0, 0, 0, 32768))
        h, cntlid = self.session()
        st, cap = h.prop_get(0x0, size8=True)
        self.assertEqual(st, 0)
        self.assertEqual(cap & 0xFFFF, 63)  # MQES = max_queue_depth - 1
        st, data = h.identify(1)
        self.assertEqual(st, 0)
        self.assertEqual(struct.unpack_from("<H", data, 78)[0], cntlid)
        self.assertEqual(data[768:768 + len(NQN)].decode(), NQN)
        self.assertEqual(data[4:24].decode().strip(), "VDPU00000000001")
        ioccsz = struct.unpack_from("<I", data, 1792)[0]
        self.assertEqual(ioccsz, (64 + 8192) // 16)
        st, ns = h.identify(0, nsid=1)
        self.assertEqual(st, 0)
        self.assertEqual(struct.unpack_from("<Q", ns, 0)[0], 32768)
        st, lst = h.identify(2)
        self.assertEqual(struct.unpack_from("<I", lst, 0)[0], 1)

        q = self.io_queue(cntlid)
        payload = os.urandom(128 * 1024)
        self.assertEqual(q.write_cmd(q.rw(0x01, 100, 256), payload), 0)
        st, back = q.read_cmd(q.rw(0x02, 100, 256), len(payload))
        self.assertEqual(st, 0)
        self.assertEqual(back, payload)
        small = os.urandom(8192)
        self.assertEqual(q.write_cmd(q.rw(0x01, 7, 16), small, incapsule=True), 0)
        self.assertEqual(q.read_cmd(q.rw(0x02, 7, 16), 8192)[1], small)
        # Flush, Write Zeroes, Dataset Management.
        q.capsule(nt.sqe(0x00, q.next_cid(), nsid=1))
        self.assertEqual(q.recv_pdu().cqe()[5], 0)
        # Errors that are statuses, not disconnects.
        st, _ = q.read_cmd(q.rw(0x02, 32760, 16), 8192)
        self.assertEqual(st & 0x7FF, 0x80)  # LBA Out of Range
        st, _ = q.read_cmd(q.rw(0x02, 0, 1, nsid=9), 512)
        self.assertEqual(st & 0x7FF, 0x0B)  # Invalid Namespace or Format
        q.capsule(nt.sqe(0x7E, q.next_cid(), nsid=1))
        self.assertEqual(q.recv_pdu().cqe()[5] & 0x7FF, 0x01)  # Invalid Opcode
        st, _ = q.read_cmd(q.rw(0x02, 0, 512), 512 * 512)  # beyond MDTS
        self.assertEqual(st & 0x7FF, 0x02)
        self.assertEqual(q.read_cmd(q.rw(0x02, 100, 8), 4096)[1], payload[:4096])

    def test_digests(self):
        h, cntlid = self.session(hdgst=True, ddgst=True)
        self.assertEqual(h.identify(1)[0], 0)
        q = self.io_queue(cntlid, hdgst=True, ddgst=True)
        payload = os.urandom(65536)
        self.assertEqual(q.write_cmd(q.rw(0x01, 300, 128), payload), 0)
        self.assertEqual(q.read_cmd(q.rw(0x02, 300, 128), 65536)[1], payload)
        # Wrong data digest on in-capsule data: Transient Transport Error.
        s = q.rw(0x01, 300, 8)
        s[2:4] = struct.pack("<H", q.next_cid())
        nt.set_sgl(s, 4096, True)
        raw = bytearray(q._hdr(nt.CMD, 0, bytes(s), os.urandom(4096)))
        raw[-1] ^= 0xFF
        q.send(bytes(raw))
        self.assertEqual(q.recv_pdu().cqe()[5] & 0x7FF, 0x22)
        # Wrong header digest: C2HTermReq (FES 3) and close.
        raw = bytearray(q._hdr(nt.CMD, 0, bytes(q.rw(0x02, 0, 1))))
        raw[72] ^= 1
        q.send(bytes(raw))
        p = q.recv_pdu()
        self.assertEqual(p.type, nt.C2H_TERM)
        self.assertEqual(struct.unpack_from("<H", p.hdr, 8)[0], 3)
        self.assertTrue(q.is_closed())

    def test_discovery(self):
        h = self.host()
        h.icreq()
        st = h.connect(nt.DISCOVERY_NQN, HOST, kato=0)[5]
        self.assertEqual(st, 0)
        h.enable()
        s = nt.sqe(0x02, cdw10=0x70 | ((4096 // 4 - 1) << 16))
        st, log = h.read_cmd(s, 4096)
        self.assertEqual(st, 0)
        genctr, numrec = struct.unpack_from("<QQ", log, 0)
        self.assertGreaterEqual(numrec, 1)
        entries = [log[1024 * (i + 1):1024 * (i + 2)] for i in range(numrec)]
        mine = [e for e in entries if e[256:256 + len(NQN)] == NQN.encode()]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0][0], 3)  # TCP
        self.assertEqual(mine[0][32:32 + len(str(self.port))].decode(), str(self.port))

    # ---------------------------------------------------------------- bad input
    def assert_term(self, h, fes):
        p = h.recv_pdu()
        self.assertEqual(p.type, nt.C2H_TERM, p)
        self.assertEqual(struct.unpack_from("<H", p.hdr, 8)[0], fes)
        self.assertTrue(h.is_closed())

    def test_bad_pdus(self):
        # Unknown PDU type as the first PDU.
        h = self.host()
        h.send(struct.pack("<BBBBI", 0x0F, 0, 24, 0, 24) + bytes(16))
        self.assert_term(h, 1)
        # Unsupported PFV.
        h = self.host()
        h.send(struct.pack("<BBBBIHBBI", 0, 0, 128, 0, 128, 7, 0, 0, 0) + bytes(112))
        self.assert_term(h, 6)
        # A capsule before the ICReq.
        h = self.host()
        h.send(h._hdr(nt.CMD, 0, bytes(nt.sqe(0x06))))
        self.assert_term(h, 2)
        # Oversized in-capsule data (PLEN beyond in_capsule_data_size).
        h, _ = self.session()
        q = self.host()
        q.icreq()
        s = q.rw(0x01, 0, 8)
        q.send(struct.pack("<BBBBI", nt.CMD, 0, 72, 72, 72 + 1_000_000) + bytes(s))
        self.assert_term(q, 5)
        # A truncated PDU and a closed socket: no answer, no crash.
        t = self.host()
        t.icreq()
        t.send(struct.pack("<BBBBI", nt.CMD, 0, 72, 0, 72) + bytes(20))
        t.close()
        # Unknown admin opcode is a status.
        st = h.read_cmd(nt.sqe(0xC2), 4096)[0]
        self.assertEqual(st & 0x7FF, 0x01)
        # The daemon still answers.
        self.assertEqual(self.session()[0].identify(1)[0], 0)
        self.rpc("spdk_get_version")

    def test_host_access(self):
        r = self.rpc
        r("nvmf_subsystem_allow_any_host", nqn=NQN, allow_any_host=False)
        try:
            h = self.host()
            h.icreq()
            dw0, _, _, _, _, st = h.connect(NQN, OTHER_HOST)
            self.assertEqual(st & 0x7FF, 0x184)  # Connect Invalid Host
            r("nvmf_subsystem_add_host", nqn=NQN, host=OTHER_HOST)
            subs = [s for s in r("nvmf_get_subsystems") if s["nqn"] == NQN][0]
            self.assertEqual(subs["hosts"], [{"nqn": OTHER_HOST}])
            self.assertFalse(subs["allow_any_host"])
            with self.assertRaises(RpcError):
                r("nvmf_subsystem_add_host", nqn=NQN, host=OTHER_HOST)
            self.assertEqual(h.connect(NQN, OTHER_HOST)[5], 0)
            r("nvmf_subsystem_remove_host", nqn=NQN, host=OTHER_HOST)
        finally:
            r("nvmf_subsystem_allow_any_host", nqn=NQN, allow_any_host=True)
        # Unknown subsystem: Connect Invalid Parameters (IATTR 1, IPO 256).
        h = self.host()
        h.icreq()
        dw0, _, _, _, _, st = h.connect("nqn.2016-06.io.spdk:nope", HOST)
        self.assertEqual(st & 0x7FF, 0x182)
        self.assertEqual(dw0, (1 << 16) | 256)

    def test_zz_listener_removal_disconnects(self):
        port = free_port()
        r = self.rpc
        nqn2 = "nqn.2016-06.io.spdk:cnode2"
        r("bdev_null_create", name="Null0", num_blocks=65536, block_size=512)
        r("nvmf_create_subsystem", nqn=nqn2, allow_any_host=True)
        r("nvmf_subsystem_add_ns", nqn=nqn2, namespace={"bdev_name": "Null0"})
        la = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}
        r("nvmf_subsystem_add_listener", nqn=nqn2, listen_address=la)
        h, cntlid = nt.admin_session("127.0.0.1", port, nqn2, HOST)
        self.addCleanup(h.close)
        q = nt.NvmeTcpHost("127.0.0.1", port)
        self.addCleanup(q.close)
        q.icreq()
        self.assertEqual(q.connect(nqn2, HOST, qid=1, cntlid=cntlid)[5], 0)
        self.assertEqual(q.read_cmd(q.rw(0x02, 0, 8), 4096)[0], 0)
        # Removing the namespace disconnects the hosts first (they reconnect).
        r("nvmf_subsystem_remove_ns", nqn=nqn2, nsid=1)
        self.assertTrue(q.is_closed())
        self.assertTrue(h.is_closed())
        r("nvmf_subsystem_remove_listener", nqn=nqn2, listen_address=la)
        with self.assertRaises(OSError):
            nt.NvmeTcpHost("127.0.0.1", port, timeout=2).icreq()
        r("nvmf_delete_subsystem", nqn=nqn2)


if __name__ == "__main__":
    unittest.main()
