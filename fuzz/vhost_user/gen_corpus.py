#!/usr/bin/env python3
"""Writes seed inputs for the vhost-user fuzz target (format: see server_fuzz.cc)."""
import os
import struct
import sys

V, NEED = 1, 1 << 3
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def msg(req, payload=b"", fds=0, flags=V | NEED):
    return struct.pack("<III", req, flags, len(payload)) + payload + bytes([fds])


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


MB = 1 << 20
UVA = 0x7f0000000000
region = struct.pack("<QQQQ", 0x40000000, MB, UVA, 0)
table = struct.pack("<II", 1, 0) + region
addr = lambda q, d, u, a: struct.pack("<IIQQQQ", q, 0, d, u, a, 0)

seeds = {
    "negotiate": msg(3) + msg(1) + msg(15) + msg(16, u64(0x1 | 0x8 | 0x200 | 0x1000 | 0x8000)) + msg(17)
    + msg(36) + msg(24, struct.pack("<III", 0, 60, 0) + bytes(60)) + msg(2, u64((1 << 32) | (1 << 30))),
    "split_ring": msg(16, u64(0x8)) + msg(2, u64((1 << 32) | (1 << 30))) + msg(5, table, 1)
    + msg(8, state(0, 64)) + msg(10, state(0, 0)) + msg(9, addr(0, UVA, UVA + 8192, UVA + 4096))
    + msg(12, u64(0x100)) + msg(13, u64(0x100)) + msg(18, state(0, 1)) + msg(11, state(0, 0))
    + msg(18, state(0, 0)),
    "packed_ring": msg(2, u64((1 << 32) | (1 << 30) | (1 << 34))) + msg(5, table, 1)
    + msg(8, state(1, 100)) + msg(10, state(1, 5 | (7 << 16))) + msg(9, addr(1, UVA, UVA + 8192, UVA + 4096))
    + msg(12, u64(0x101)) + msg(18, state(1, 1)) + msg(11, state(1, 0)),
    "mem_slots": msg(16, u64(0x8008)) + msg(37, u64(0) + region, 1) + msg(38, u64(0) + region)
    + msg(37, u64(0) + region, 1),
    "inflight": msg(16, u64(0x1008)) + msg(31, struct.pack("<QQHH", 0, 0, 2, 64))
    + msg(32, struct.pack("<QQHH", 4096, 0, 2, 64), 1),
    "reset": msg(5, table, 1) + msg(8, state(0, 64)) + msg(9, addr(0, UVA, UVA + 8192, UVA + 4096))
    + msg(12, u64(0x100)) + msg(34) + msg(4),
    "bad": msg(99, u64(1)) + msg(8, state(9, 64)) + msg(5, struct.pack("<II", 9, 0)) + msg(12, u64(0), 0)
    + msg(25, struct.pack("<III", 250, 16, 0) + bytes(16)),
}
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}", file=sys.stderr)
