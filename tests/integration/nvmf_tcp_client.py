"""A small NVMe/TCP host in Python (stdlib only) for tests: ICReq, Connect,
Property Get/Set, admin and I/O commands with in-capsule data, R2T/H2CData
and C2HData, optional header/data digests, and raw bytes for bad-input
tests. NVMe/TCP Transport 1.0 §3.6; Base 2.0 §6 (fabrics commands)."""

from __future__ import annotations

import socket
import struct

# PDU types
ICREQ, ICRESP, H2C_TERM, C2H_TERM, CMD, RSP, H2C_DATA, C2H_DATA, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9
F_HDGST, F_DDGST, F_LAST, F_SUCCESS = 1, 2, 4, 8
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def crc32c(b: bytes) -> int:
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Closed(Exception):
    pass


class Pdu:
    def __init__(self, ptype, flags, hdr: bytes, data: bytes):
        self.type, self.flags, self.hdr, self.data = ptype, flags, hdr, data

    def cqe(self):
        """(dw0, dw1, sqhd, sqid, cid, status) of a CapsuleResp; status
        without the phase bit: SC | SCT << 8 | DNR << 14 (our code form)."""
        dw0, dw1, sqhd, sqid, cid, st = struct.unpack_from("<IIHHHH", self.hdr, 8)
        return dw0, dw1, sqhd, sqid, cid, (st >> 1)

    def __repr__(self):
        return f"Pdu(type={self.type}, flags={self.flags:#x}, hlen={len(self.hdr)}, data={len(self.data)})"


def sqe(opc, cid=0, nsid=0, cdw10=0, cdw11=0, cdw12=0, fctype=None, extra: bytes = b""):
    s = bytearray(64)
    s[0] = opc
    struct.pack_into("<HI", s, 2, cid, nsid)
    struct.pack_into("<III", s, 40, cdw10, cdw11, cdw12)
    if fctype is not None:
        s[4] = fctype
    if extra:
        s[40:40 + len(extra)] = extra
    return s


def set_sgl(s: bytearray, length: int, incapsule: bool):
    s[1] |= 0x40  # PSDT 01b: SGL
    struct.pack_into("<QI", s, 24, 0, length)
    s[28 + 8:39] = b"\0\0\0"
    s[39] = 0x01 if incapsule else 0x5A


class NvmeTcpHost:
    def __init__(self, addr, port, hdgst=False, ddgst=False, timeout=10.0):
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hd, self.dd = hdgst, ddgst
        self.buf = b""
        self.cid = 0
        self.maxh2c = 0

    def close(self):
        self.sock.close()

    # ---- raw I/O
    def send(self, b: bytes):
        self.sock.sendall(b)

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_pdu(self) -> Pdu:
        ch = self._recv_exact(8)
        ptype, flags, hlen, pdo, plen = struct.unpack("<BBBBI", ch)
        rest = self._recv_exact(plen - 8)
        hdr = ch + rest[: hlen - 8]
        digests = ptype in (RSP, C2H_DATA, R2T, CMD, H2C_DATA)
        off = hlen - 8
        if digests and self.hd:
            (d,) = struct.unpack_from("<I", rest, off)
            assert d == crc32c(hdr), "bad header digest from target"
            off += 4
        data = b""
        if ptype in (C2H_TERM, H2C_TERM):
            data = rest[off:]
        elif plen > hlen + (4 if digests and self.hd else 0):
            start = pdo - 8
            end = len(rest) - (4 if self.dd else 0)
            data = rest[start:end]
            if self.dd:
                (d,) = struct.unpack_from("<I", rest, end)
                assert d == crc32c(data), "bad data digest from target"
        return Pdu(ptype, flags, hdr, data)

    def is_closed(self, timeout=5.0) -> bool:
        """True when the target closed the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # ---- PDU builders
    def _hdr(self, ptype, flags, body: bytes, data: bytes = b""):
        hlen = 8 + len(body)
        digests = ptype in (CMD, H2C_DATA)
        hdl = 4 if (digests and self.hd) else 0
        if digests and self.hd:
            flags |= F_HDGST
        pdo = 0
        plen = hlen + hdl
        if data:
            if self.dd:
                flags |= F_DDGST
            pdo = hlen + hdl
            plen = pdo + len(data) + (4 if self.dd else 0)
        h = struct.pack("<BBBBI", ptype, flags, hlen, pdo, plen) + body
        out = h + (struct.pack("<I", crc32c(h)) if hdl else b"")
        if data:
            out += data + (struct.pack("<I", crc32c(data)) if self.dd else b"")
        return out

    def icreq(self, pfv=0, hpda=0):
        dg = (1 if self.hd else 0) | (2 if self.dd else 0)
        self.send(struct.pack("<BBBBIHBBI", ICREQ, 0, 128, 0, 128, pfv, hpda, dg, 0) + bytes(112))
        p = self.recv_pdu()
        assert p.type == ICRESP, p
        pfv, cpda, dgst, maxh2c = struct.unpack_from("<HBBI", p.hdr, 8)
        self.maxh2c = maxh2c
        return pfv, cpda, dgst, maxh2c

    def capsule(self, s: bytearray, data: bytes = b""):
        self.send(self._hdr(CMD, 0, bytes(s), data))

    def next_cid(self):
        self.cid = (self.cid + 1) & 0xFFFF
        return self.cid

    # ---- commands
    def connect(self, subnqn, hostnqn, qid=0, sqsize=31, cntlid=0xFFFF, kato=30000):
        s = sqe(0x7F, self.next_cid(), fctype=0x01,
                extra=struct.pack("<HHHBBI", 0, qid, sqsize, 0, 0, kato))
        data = bytearray(1024)
        struct.pack_into("<H", data, 16, cntlid)
        data[256:256 + len(subnqn)] = subnqn.encode()
        data[512:512 + len(hostnqn)] = hostnqn.encode()
        set_sgl(s, 1024, True)
        self.capsule(s, bytes(data))
        return self.recv_pdu().cqe()

    def prop_set(self, ofst, value, size8=False):
        s = sqe(0x7F, self.next_cid(), fctype=0x00,
                extra=struct.pack("<B3xIQ", 1 if size8 else 0, ofst, value))
        self.capsule(s)
        return self.recv_pdu().cqe()

    def prop_get(self, ofst, size8=False):
        s = sqe(0x7F, self.next_cid(), fctype=0x04, extra=struct.pack("<B3xI", 1 if size8 else 0, ofst))
        self.capsule(s)
        dw0, dw1, _, _, _, st = self.recv_pdu().cqe()
        return st, dw0 | (dw1 << 32)

    def enable(self):
        _, _, _, _, _, st = self.prop_set(0x14, 1)
        assert st == 0, hex(st)

    def read_cmd(self, s: bytearray, length: int):
        """A command with controller -> host data: (status, data)."""
        s[2:4] = struct.pack("<H", self.next_cid())
        set_sgl(s, length, False)
        self.capsule(s)
        data = b""
        while True:
            p = self.recv_pdu()
            if p.type == C2H_DATA:
                data += p.data
                if p.flags & F_SUCCESS:
                    return 0, data
            elif p.type == RSP:
                return p.cqe()[5], data
            else:
                raise AssertionError(f"unexpected {p}")

    def write_cmd(self, s: bytearray, data: bytes, incapsule=False):
        """A command with host -> controller data: status."""
        s[2:4] = struct.pack("<H", self.next_cid())
        cid = struct.unpack_from("<H", s, 2)[0]
        set_sgl(s, len(data), incapsule)
        if incapsule:
            self.capsule(s, data)
            return self.recv_pdu().cqe()[5]
        self.capsule(s)
        p = self.recv_pdu()
        if p.type == RSP:
            return p.cqe()[5]
        assert p.type == R2T, p
        _cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", p.hdr, 8)
        chunk = self.maxh2c or 65536
        off = 0
        while off < r2tl:
            n = min(chunk, r2tl - off)
            last = F_LAST if off + n == r2tl else 0
            body = struct.pack("<HHIII", cid, ttag, r2to + off, n, 0)
            self.send(self._hdr(H2C_DATA, last, body, data[off:off + n]))
            off += n
        return self.recv_pdu().cqe()[5]

    def identify(self, cns, nsid=0):
        return self.read_cmd(sqe(0x06, nsid=nsid, cdw10=cns), 4096)

    def rw(self, opc, slba, nlb, nsid=1):
        return sqe(opc, nsid=nsid, cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32, cdw12=nlb - 1)


def admin_session(addr, port, subnqn, hostnqn, **kw):
    """Connected, enabled admin queue: (host, cntlid)."""
    h = NvmeTcpHost(addr, port, **kw)
    h.icreq()
    dw0, _, _, _, _, st = h.connect(subnqn, hostnqn)
    assert st == 0, f"connect status {st:#x}"
    h.enable()
    return h, dw0 & 0xFFFF
