#!/usr/bin/env python3
"""Writes seed inputs for pdu_fuzz.cc into corpus/: a config byte, then an
NVMe/TCP byte stream (ICReq + capsules + H2CData, ICResp + C2HData + R2T +
CapsuleResp, with and without digests, plus a few broken ones)."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

def crc32c(b: bytes) -> int:
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF

def ch(t, flags, hlen, pdo, plen):
    return struct.pack("<BBBBI", t, flags, hlen, pdo, plen)

def ic(t, hd, dd):
    return ch(t, 0, 128, 0, 128) + struct.pack("<HBBI", 0, 0, (hd and 1) | (dd and 2), 0) + bytes(112)

def data_pdu(t, hdr_rest, data, hd, dd, flags=0):
    hlen = 8 + len(hdr_rest)
    hdl = 4 if hd else 0
    f = flags | (1 if hd else 0)
    if data:
        f |= 2 if dd else 0
        pdo = hlen + hdl
        plen = pdo + len(data) + (4 if dd else 0)
    else:
        pdo, plen = 0, hlen + hdl
    h = ch(t, f, hlen, pdo, plen) + hdr_rest
    out = h + (struct.pack("<I", crc32c(h)) if hd else b"")
    if data:
        out += data + (struct.pack("<I", crc32c(data)) if dd else b"")
    return out

def sqe(opc, cid, nsid=1, sgl_id=0x5A, sgl_len=4096):
    s = bytearray(64)
    s[0] = opc
    s[1] = 0x40
    struct.pack_into("<HI", s, 2, cid, nsid)
    struct.pack_into("<I", s, 32, sgl_len)
    s[39] = sgl_id
    return bytes(s)

def target_stream(hd, dd):
    s = ic(0, hd, dd)
    s += data_pdu(4, sqe(1, 1, sgl_id=0x01, sgl_len=512), bytes(range(256)) * 2, hd, dd)
    s += data_pdu(4, sqe(2, 2), b"", hd, dd)
    s += data_pdu(6, struct.pack("<HHIII", 3, 0, 0, 1024, 0), b"\xaa" * 1024, hd, dd, flags=4)
    s += data_pdu(2, struct.pack("<HI", 1, 0) + bytes(10), b"", False, False)
    return s

def host_stream(hd, dd):
    s = ic(1, hd, dd)
    s += data_pdu(7, struct.pack("<HHIII", 2, 0, 0, 512, 0), b"\x55" * 512, hd, dd, flags=0xC)
    s += data_pdu(9, struct.pack("<HHIII", 1, 0, 0, 4096, 0), b"", hd, dd)
    s += data_pdu(5, bytes(16), b"", hd, dd)
    return s

def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    seeds = {}
    for hd in (False, True):
        for dd in (False, True):
            cfg = (2 if hd else 0) | (4 if dd else 0)
            seeds[f"target_hd{int(hd)}_dd{int(dd)}"] = bytes([cfg]) + target_stream(hd, dd)
            seeds[f"target_hd{int(hd)}_dd{int(dd)}_bytewise"] = bytes([cfg | 0x10 | 0x80]) + target_stream(hd, dd)
            seeds[f"host_hd{int(hd)}_dd{int(dd)}"] = bytes([cfg | 1]) + host_stream(hd, dd)
    t = target_stream(True, True)
    seeds["bad_hdgst"] = bytes([6]) + t[:128] + bytes([t[128] ^ 1]) + t[129:]
    seeds["bad_type"] = bytes([0]) + b"\x08" + t[1:]
    seeds["truncated"] = bytes([6]) + t[: len(t) // 2]
    seeds["huge_plen"] = bytes([0]) + ic(0, False, False) + ch(4, 0, 72, 72, 0xFFFFFFFF) + sqe(1, 1)
    seeds["pda7"] = bytes([8]) + ic(0, False, False) + ch(4, 0, 72, 96, 96 + 64) + sqe(1, 1, 1, 0x01, 64) + bytes(24) + bytes(64)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out}", file=sys.stderr)

if __name__ == "__main__":
    main()
