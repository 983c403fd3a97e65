#!/usr/bin/env python3
"""Write tiny stub shared libraries for a binary's optional dependencies.

Debian's fio links ~80 MB of libraries it only uses for exotic ioengines
(ceph rados/rbd, glusterfs, libnbd, rdma, pmem) and is built with BIND_NOW, so
every imported symbol must resolve at load time. For each SONAME given, this
writes a stub with the same SONAME and symbol versions that defines exactly
the symbols the binary imports from it (as no-op functions / zeroed data).
The ioengines backed by stubs must not be used in the guest; psync, libaio,
io_uring, sync, mmap ... are unaffected.

usage: stub_libs.py BINARY OUTDIR SONAME...
Writes OUTDIR/<SONAME>. Exits non-zero on any problem (the caller then falls
back to copying the real libraries).
"""

import os
import re
import subprocess
import sys
import tempfile

SYM_RE = re.compile(
    r"^\s*\d+:\s+[0-9a-f]+\s+(\d+|0x[0-9a-f]+)\s+(\w+)\s+(\w+)\s+\w+\s+(\w+)\s+(\S+)")


def dynsyms(path):
    """-> list of (name, version or None, defined, type, size)."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", path], check=True,
                         capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        m = SYM_RE.match(line)
        if not m:
            continue
        size, typ, bind, ndx, name = m.groups()
        if bind not in ("GLOBAL", "WEAK"):
            continue
        ver = None
        if "@" in name:
            name, _, ver = name.partition("@")
            ver = ver.lstrip("@")
        syms.append((name, ver, ndx != "UND", typ, int(size, 0), bind))
    return syms


def ldd_paths(binary):
    out = subprocess.run(["ldd", binary], check=True, capture_output=True,
                         text=True).stdout
    paths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            paths[parts[0]] = parts[2]
    return paths


def main():
    binary, outdir, sonames = sys.argv[1], sys.argv[2], sys.argv[3:]
    libs = ldd_paths(binary)
    imports = [(n, v) for n, v, d, t, s, b in dynsyms(binary)
               if not d and b == "GLOBAL"]
    os.makedirs(outdir, exist_ok=True)
    for so in sonames:
        if so not in libs:
            print(f"stub_libs: {so} is not a dependency of {binary}", file=sys.stderr)
            return 1
        defined = {}
        for n, v, d, t, s, b in dynsyms(libs[so]):
            if d:
                defined.setdefault((n, v), (t, s))
                defined.setdefault((n, None), (t, s))
        chosen = {}  # name -> (version, type, size)
        for n, v in imports:
            if (n, v) in defined:
                t, s = defined[(n, v)]
                chosen[n] = (v, t, s)
        if not chosen:
            print(f"stub_libs: nothing imported from {so}?", file=sys.stderr)
            return 1
        c_lines, versions = [], {}
        for n, (v, t, s) in sorted(chosen.items()):
            if t == "OBJECT":
                c_lines.append(f"char {n}[{max(s, 1)}];")
            else:
                c_lines.append(f"long {n}(void) {{ return -1; }}")
            versions.setdefault(v, []).append(n)
        with tempfile.TemporaryDirectory() as td:
            c = os.path.join(td, "stub.c")
            with open(c, "w") as f:
                f.write("\n".join(c_lines) + "\n")
            cmd = ["cc", "-shared", "-fPIC", "-O0", "-w", "-nostdlib",
                   f"-Wl,-soname,{so}", "-o", os.path.join(outdir, so), c]
            vers = [v for v in versions if v]
            if vers:
                vs = os.path.join(td, "stub.map")
                # unversioned imports bind to a default (@@) version too,
                # so they go into the first node
                versions[vers[0]] += versions.pop(None, [])
                with open(vs, "w") as f:
                    for v in vers:
                        f.write(f"{v} {{ global: {'; '.join(versions[v])}; }};\n")
                cmd.insert(-1, f"-Wl,--version-script={vs}")
            subprocess.run(cmd, check=True)
        print(f"stub_libs: {so}: {len(chosen)} symbols", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
