#!/usr/bin/env python3
"""Guest test harness for vdpu end-to-end tests (Python 3 stdlib only).

Boots a Debian 6.1 kernel under QEMU/TCG with the base initramfs built by
setup-guest.sh plus a small per-run cpio carrying the test script as
/run-test.sh. The guest's /init loads virtio/nvme modules, runs the script and
powers off. The script reports with marker lines::

    VDPU-RESULT <name> PASS|FAIL <detail>

(or, after ``. /lib/vdpu.sh``: ``vdpu_result NAME PASS detail`` /
``vdpu_check NAME cmd args...``). /init ends with ``VDPU-EXIT <rc>``.

Library use::

    import guest
    args = guest.vhost_user_blk_args("/tmp/vhost.sock", num_queues=2)
    res = guest.boot(args, script, timeout_s=60)
    ok, log = res                 # a 2-tuple ...
    res.results["fio"].passed     # ... with extra attributes

For tests that must act while the guest runs (kill/restart a backend), use
``Guest(...).start()``, ``g.wait_for(r"regex", timeout)``, ``g.send("go\n")``
(the guest script blocks on ``read x``) and ``g.wait()``.

CLI: ``python3 guest.py setup`` / ``python3 guest.py run --help``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

HERE = Path(__file__).resolve().parent
SETUP_SCRIPT = HERE / "setup-guest.sh"
CACHE_DIR = Path(os.environ.get("VDPU_E2E_CACHE", "/var/tmp/vdpu-e2e"))
QEMU = os.environ.get("VDPU_E2E_QEMU", "qemu-system-x86_64")
DEFAULT_APPEND = ("console=ttyS0 quiet panic=-1 mitigations=off "
                  "cryptomgr.notests 8250.nr_uarts=1")

RESULT_RE = re.compile(r"VDPU-RESULT\s+(\S+)\s+(PASS|FAIL)\b[ \t]*(.*)")
EXIT_RE = re.compile(r"VDPU-EXIT\s+(\d+)")
BOOTED_RE = re.compile(r"VDPU-BOOTED\b")

# --------------------------------------------------------------------------
# Setup (kernel + base initramfs)
# --------------------------------------------------------------------------

@dataclass
class GuestImage:
    kver: str
    kernel: Path
    initrd: Path


_image: Optional[GuestImage] = None


def ensure_setup(force: bool = False, quiet: bool = True) -> GuestImage:
    """Run setup-guest.sh once per process (it is idempotent and cached)."""
    global _image
    if _image is not None and not force:
        return _image
    proc = subprocess.run(
        ["bash", str(SETUP_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if quiet else None,
        text=True,
        env={**os.environ, "VDPU_E2E_CACHE": str(CACHE_DIR)},
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"setup-guest.sh failed (rc={proc.returncode}):\n{proc.stderr or ''}")
    env = dict(
        line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    _image = GuestImage(env["VDPU_E2E_KVER"], Path(env["VDPU_E2E_KERNEL"]),
                        Path(env["VDPU_E2E_INITRD"]))
    return _image


# --------------------------------------------------------------------------
# Per-run cpio (newc) writer
# --------------------------------------------------------------------------

FileSpec = Union[str, bytes, Path, tuple]


def _newc_entry(name: str, mode: int, data: bytes = b"", ino: int = 0) -> bytes:
    nameb = name.encode() + b"\0"
    hdr = "070701" + "".join(
        f"{v:08x}" for v in (ino, mode, 0, 0, 1, int(time.time()), len(data),
                             0, 0, 0, 0, len(nameb), 0))
    out = hdr.encode() + nameb
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(data) % 4)
    return out


def make_cpio(files: Mapping[str, FileSpec]) -> bytes:
    """Build a newc archive. Values: str/bytes (mode 0644, 0755 if it starts
    with '#!'), a host Path (copied, keeps exec bit), or (content, mode)."""
    out = bytearray()
    ino = itertools.count(0x7000_0000)
    dirs: set[str] = set()
    for path in sorted(files):
        spec = files[path]
        rel = path.lstrip("/")
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                out += _newc_entry(d, 0o040755, ino=next(ino))
        mode = None
        if isinstance(spec, tuple):
            spec, mode = spec
        if isinstance(spec, Path):
            data = spec.read_bytes()
            if mode is None:
                mode = 0o755 if os.access(spec, os.X_OK) else 0o644
        elif isinstance(spec, str):
            data = spec.encode()
        else:
            data = bytes(spec)
        if mode is None:
            mode = 0o755 if data.startswith(b"#!") else 0o644
        out += _newc_entry(rel, 0o100000 | mode, data, ino=next(ino))
    out += _newc_entry("TRAILER!!!", 0)
    out += b"\0" * (-len(out) % 512)
    return bytes(out)


# --------------------------------------------------------------------------
# QEMU argument helpers
# --------------------------------------------------------------------------

_ids = itertools.count()


def _props(d: Mapping[str, object]) -> str:
    return "".join(f",{k}={v}" for k, v in d.items() if v is not None)


def vhost_user_blk_args(sock: str, num_queues: Optional[int] = None,
                        reconnect: Union[bool, int] = False,
                        dev_id: Optional[str] = None, **dev_props) -> list:
    """A vhost-user-blk-pci device connected (as client) to a backend's unix
    socket. reconnect=True/N adds `reconnect=N` (seconds) to the chardev so
    QEMU re-connects when the backend restarts. Extra device properties
    (e.g. queue_size=256 -> queue-size=256, vectors=0) are passed through."""
    i = dev_id or f"vublk{next(_ids)}"
    chardev = f"socket,id={i}-chr,path={sock}"
    if reconnect:
        chardev += f",reconnect={int(reconnect)}"
    dev = f"vhost-user-blk-pci,id={i},chardev={i}-chr"
    if num_queues is not None:
        dev += f",num-queues={num_queues}"
    dev += _props({k.replace("_", "-"): v for k, v in dev_props.items()})
    return ["-chardev", chardev, "-device", dev]


def vhost_user_net_args(sock: str, queues: int = 1, mac: str = "52:54:00:12:34:56",
                        reconnect: Union[bool, int] = False, server: bool = False,
                        dev_id: Optional[str] = None, vectors: Optional[int] = 0,
                        **dev_props) -> list:
    """A virtio-net-pci on a vhost-user netdev. vectors=0 (no MSI-X) is the
    default because QEMU 7.2/TCG segfaults when the guest's virtio_net
    initialises such a device with MSI-X (see shared/TESTING-NOTES.md).
    server=True makes QEMU listen on `sock` (the backend then connects); note
    that QEMU 7.2 then blocks at startup until a backend connects, even with
    wait=off, so start the backend first (or in parallel)."""
    i = dev_id or f"vunet{next(_ids)}"
    chardev = f"socket,id={i}-chr,path={sock}"
    if server:
        chardev += ",server=on,wait=off"
    elif reconnect:
        chardev += f",reconnect={int(reconnect)}"
    netdev = f"vhost-user,id={i},chardev={i}-chr"
    # romfile= : no iPXE option ROM (faster boot, quieter console)
    dev = f"virtio-net-pci,id={i}-dev,netdev={i},mac={mac},romfile="
    if queues > 1:
        netdev += f",queues={queues}"
        dev += ",mq=on"
    if vectors is not None:
        dev += f",vectors={vectors}"
    dev += _props(dev_props)
    return ["-chardev", chardev, "-netdev", netdev, "-device", dev]


def user_net_args(mac: str = "52:54:00:12:34:60", hostfwd: Iterable[str] = (),
                  dev_id: Optional[str] = None, model: str = "virtio-net-pci") -> list:
    """QEMU user networking (slirp). In the guest: 10.0.2.15/24, gateway and
    host 10.0.2.2 -- the guest reaches the host's 127.0.0.1:P as 10.0.2.2:P
    (use `vdpu_net_user` from /lib/vdpu.sh to configure eth0).
    hostfwd entries like "tcp:127.0.0.1:2222-:22" forward host->guest."""
    i = dev_id or f"unet{next(_ids)}"
    netdev = f"user,id={i}" + "".join(f",hostfwd={h}" for h in hostfwd)
    return ["-netdev", netdev, "-device", f"{model},netdev={i},mac={mac},romfile="]


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for hostfwd or a host target)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nvmet_user_net_args(host_port: int, guest_port: int = 4420, **kw) -> list:
    """User networking with host 127.0.0.1:host_port forwarded to the guest's
    guest_port: for a kernel nvmet-tcp target started in the guest with
    `vdpu_nvmet_start NQN guest_port` (after `vdpu_net_user`), reachable from
    the host as 127.0.0.1:host_port."""
    return user_net_args(hostfwd=[f"tcp:127.0.0.1:{host_port}-:{guest_port}"], **kw)


def tap_net_args(ifname: str, mac: str = "52:54:00:12:34:70", vhost: bool = False,
                 dev_id: Optional[str] = None, vectors: Optional[int] = None) -> list:
    """A virtio-net-pci on a tap netdev (QEMU creates/opens `ifname`; it must
    be configured on the host side by the test, script=no)."""
    i = dev_id or f"tap{next(_ids)}"
    netdev = f"tap,id={i},ifname={ifname},script=no,downscript=no"
    if vhost:
        netdev += ",vhost=on"
    dev = f"virtio-net-pci,netdev={i},mac={mac},romfile="
    if vectors is not None:
        dev += f",vectors={vectors}"
    return ["-netdev", netdev, "-device", dev]


def qemu_cmd(kernel: Path, initrd: Path, extra_qemu_args: Sequence[str],
             mem_mb: int = 1024, smp: int = 1, append: str = "") -> list:
    return [
        QEMU, "-accel", "tcg", "-M", "q35", "-cpu", "max",
        "-m", str(mem_mb), "-smp", str(smp),
        "-object", f"memory-backend-memfd,id=mem,size={mem_mb}M,share=on",
        "-numa", "node,memdev=mem",
        "-nographic", "-nodefaults", "-no-user-config", "-serial", "stdio",
        "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", (DEFAULT_APPEND + " " + append).strip(),
        *extra_qemu_args,
    ]


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    status: str
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def parse_results(log: str) -> dict:
    """name -> Result, from VDPU-RESULT lines (a later line with the same name
    wins, except that a FAIL is never overwritten by a PASS)."""
    res: dict = {}
    for line in log.splitlines():
        m = RESULT_RE.search(line)
        if m:
            name, status, detail = m.group(1), m.group(2), m.group(3).strip()
            if name in res and not res[name].passed:
                continue
            res[name] = Result(name, status, detail)
    return res


class BootResult(tuple):
    """A (ok, log) tuple with extra attributes: results, exit_code,
    timed_out, booted, elapsed_s, boot_s, qemu_rc, cmd, reason."""

    def __new__(cls, ok: bool, log: str, **attrs):
        self = super().__new__(cls, (ok, log))
        self.__dict__.update(attrs)
        return self

    ok = property(lambda self: self[0])
    log = property(lambda self: self[1])

    def summary(self) -> str:
        lines = [f"guest: ok={self.ok} reason={self.reason} exit={self.exit_code} "
                 f"boot={self.boot_s and round(self.boot_s, 1)}s "
                 f"total={self.elapsed_s:.1f}s"]
        for r in self.results.values():
            lines.append(f"  {r.status} {r.name} {r.detail}".rstrip())
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Running a guest
# --------------------------------------------------------------------------

class Guest:
    """One QEMU guest run. start() returns immediately; wait_for() blocks on
    a console regex; wait() enforces the overall timeout and returns a
    BootResult."""

    def __init__(self, extra_qemu_args: Sequence[str], script: str,
                 timeout_s: float = 120, mem_mb: int = 1024, smp: int = 1,
                 files: Optional[Mapping[str, FileSpec]] = None, append: str = "",
                 expect: Iterable[str] = (), log_path: Optional[os.PathLike] = None,
                 echo: Union[bool, Callable[[str], None]] = False,
                 keep_workdir: bool = False):
        self.extra = list(extra_qemu_args)
        self.script = script
        self.timeout_s = timeout_s
        self.mem_mb, self.smp = mem_mb, smp
        self.files = dict(files or {})
        self.append = append
        self.expect = list(expect)
        self.log_path = Path(log_path) if log_path else None
        self.echo = echo
        self.keep_workdir = keep_workdir
        self.proc: Optional[subprocess.Popen] = None
        self._lines: list = []
        self._cv = threading.Condition()
        self._eof = False
        self._t0 = 0.0
        self._boot_s: Optional[float] = None
        self._killed_timeout = False
        self.workdir: Optional[Path] = None
        self.cmd: list = []

    # -- lifecycle --
    def start(self) -> "Guest":
        img = ensure_setup()
        (CACHE_DIR / "runs").mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE_DIR / "runs"))
        files = dict(self.files)
        files["run-test.sh"] = (self.script, 0o755)
        initrd = self.workdir / "initrd.cpio"
        shutil.copyfile(img.initrd, initrd)          # base archive ...
        with open(initrd, "ab") as f:                # ... + per-run archive
            f.write(make_cpio(files))
        self.cmd = qemu_cmd(img.kernel, initrd, self.extra, self.mem_mb,
                            self.smp, self.append)
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        self._logf = open(self.log_path, "w") if self.log_path else None
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _reader(self) -> None:
        assert self.proc and self.proc.stdout
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
            if self._boot_s is None and BOOTED_RE.search(line):
                self._boot_s = time.monotonic() - self._t0
            if self._logf:
                self._logf.write(line + "\n")
                self._logf.flush()
            if self.echo:
                (self.echo if callable(self.echo) else
                 lambda s: print(s, file=sys.stderr, flush=True))(line)
            with self._cv:
                self._lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    @property
    def log(self) -> str:
        with self._cv:
            return "\n".join(self._lines)

    def _deadline(self) -> float:
        return self._t0 + self.timeout_s

    def wait_for(self, pattern: str, timeout_s: Optional[float] = None,
                 start_line: int = 0) -> Optional[re.Match]:
        """Block until a console line matches `pattern` (regex search), the
        guest exits, or the timeout (default: the run's remaining time)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout_s if timeout_s is not None else self._deadline()
        end = min(end, self._deadline())
        i = start_line
        with self._cv:
            while True:
                while i < len(self._lines):
                    m = rx.search(self._lines[i])
                    i += 1
                    if m:
                        return m
                left = end - time.monotonic()
                if self._eof or left <= 0:
                    return None
                self._cv.wait(left)

    def send(self, text: str) -> None:
        """Type `text` on the guest's serial console (the script's stdin):
        a guest script can block on `read line` until the host says so.
        The tty echoes it back into the log."""
        assert self.proc and self.proc.stdin
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def wait(self) -> BootResult:
        assert self.proc is not None, "start() first"
        try:
            self.proc.wait(timeout=max(0.0, self._deadline() - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._killed_timeout = True
            self.proc.kill()
            self.proc.wait()
        try:
            self.proc.stdin.close()
        except (OSError, AttributeError):
            pass
        with self._cv:   # let the reader drain the pipe
            self._cv.wait_for(lambda: self._eof, timeout=5)
        elapsed = time.monotonic() - self._t0
        if self._logf:
            self._logf.close()
        log = self.log
        results = parse_results(log)
        m = None
        for m in EXIT_RE.finditer(log):
            pass
        exit_code = int(m.group(1)) if m else None
        failed = [r.name for r in results.values() if not r.passed]
        missing = [n for n in self.expect if n not in results]
        if self._killed_timeout:
            reason = f"timeout after {self.timeout_s}s" + (
                "" if self._boot_s is not None else " (guest never reached /init)")
        elif exit_code is None:
            reason = f"guest died without VDPU-EXIT (qemu rc={self.proc.returncode})"
        elif exit_code != 0:
            reason = f"script exit code {exit_code}"
        elif failed:
            reason = "FAIL: " + " ".join(failed)
        elif missing:
            reason = "missing results: " + " ".join(missing)
        else:
            reason = "ok"
        ok = reason == "ok"
        if self.workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return BootResult(ok, log, results=results, exit_code=exit_code,
                          timed_out=self._killed_timeout,
                          booted=self._boot_s is not None, boot_s=self._boot_s,
                          elapsed_s=elapsed, qemu_rc=self.proc.returncode,
                          cmd=self.cmd, reason=reason)

    def __enter__(self) -> "Guest":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def boot(extra_qemu_args: Sequence[str], script: str, timeout_s: float = 120,
         mem_mb: int = 1024, smp: int = 1, **kw) -> BootResult:
    """Boot a guest, run `script` as /run-test.sh, return (ok, log).

    ok is True iff the guest reached VDPU-EXIT 0 within timeout_s, no
    VDPU-RESULT line said FAIL, and every name in `expect` (kw) reported.
    Other kw: files={guest_path: str|bytes|Path|(content, mode)}, append=
    (kernel cmdline), log_path=, echo=True (stream console to stderr)."""
    g = Guest(extra_qemu_args, script, timeout_s, mem_mb, smp, **kw)
    g.start()
    return g.wait()


# --------------------------------------------------------------------------
# Host-side helpers
# --------------------------------------------------------------------------

def wait_for_socket(path: str, timeout_s: float = 10,
                    proc: Optional[subprocess.Popen] = None) -> None:
    """Wait until a backend created its unix socket (or its process died)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if os.path.exists(path):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"backend exited (rc={proc.returncode}) before creating {path}")
        time.sleep(0.05)
    raise TimeoutError(f"socket {path} did not appear within {timeout_s}s")


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _parse_dev_opts(spec: str) -> tuple:
    """'PATH[,k=v,flag...]' -> (PATH, {k: v})."""
    path, *rest = spec.split(",")
    opts = {}
    for r in rest:
        k, _, v = r.partition("=")
        opts[k.replace("-", "_")] = int(v) if v.isdigit() else (v or True)
    return path, opts


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup", help="install packages, fetch kernel, build base initramfs")
    r = sub.add_parser("run", help="boot a guest and run a script",
                       epilog="Arguments after `--` are passed to QEMU verbatim.")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--script", help="guest script file (becomes /run-test.sh)")
    src.add_argument("-c", "--cmd", help="guest shell commands")
    r.add_argument("--timeout", type=float, default=120)
    r.add_argument("--mem", type=int, default=1024, help="MiB")
    r.add_argument("--smp", type=int, default=1)
    r.add_argument("--vhost-user-blk", action="append", default=[], metavar="SOCK[,num-queues=N][,reconnect=1]")
    r.add_argument("--vhost-user-net", action="append", default=[], metavar="SOCK[,queues=N][,server=1][,mac=M]")
    r.add_argument("--user-net", action="store_true", help="virtio-net on QEMU user networking (host = 10.0.2.2)")
    r.add_argument("--tap", action="append", default=[], metavar="IFNAME")
    r.add_argument("--append", default="", help="extra kernel command line")
    r.add_argument("--expect", action="append", default=[], help="result name that must be reported")
    r.add_argument("--log", help="write console log here")
    r.add_argument("-q", "--quiet", action="store_true", help="do not stream the console")
    r.add_argument("qemu_args", nargs="*")
    a = ap.parse_args(argv)

    if a.cmd == "setup":
        img = ensure_setup(quiet=False)
        print(f"VDPU_E2E_KVER={img.kver}\nVDPU_E2E_KERNEL={img.kernel}\nVDPU_E2E_INITRD={img.initrd}")
        return 0

    script = Path(a.script).read_text() if a.script else "#!/bin/sh\n" + a.cmd + "\n"
    extra: list = []
    for spec in a.vhost_user_blk:
        path, o = _parse_dev_opts(spec)
        extra += vhost_user_blk_args(path, **o)
    for spec in a.vhost_user_net:
        path, o = _parse_dev_opts(spec)
        extra += vhost_user_net_args(path, **o)
    if a.user_net:
        extra += user_net_args()
    for t in a.tap:
        extra += tap_net_args(t)
    extra += a.qemu_args
    res = boot(extra, script, a.timeout, a.mem, a.smp, append=a.append,
               expect=a.expect, log_path=a.log, echo=not a.quiet)
    if a.quiet:
        print(res.log)
    print(res.summary(), file=sys.stderr)
    print("qemu: " + shlex.join(res.cmd), file=sys.stderr)
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())


class RpcError(RuntimeError):
    """A JSON-RPC error answer (or a connection closed before one)."""


def rpc(sock: str, method: str, **params):
    """One JSON-RPC 2.0 request to the vdpu daemon on unix socket `sock`."""
    req = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params:
        req["params"] = params
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(sock)
        s.sendall(json.dumps(req).encode())
        buf, dec = b"", json.JSONDecoder()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise RpcError(f"{method}: connection closed")
            buf += chunk
            try:
                resp, _ = dec.raw_decode(buf.decode())
                break
            except ValueError:
                pass
    if "error" in resp:
        raise RpcError(f"{method}: {resp['error']}")
    return resp["result"]


def record_guest_checks(checks: list, res, expect, daemon_proc, verbose: bool) -> None:
    """Appends (name, ok, detail) for every expected guest result, the guest
    run itself and the daemon's survival; prints the console tail on failure."""
    for name in expect:
        r = res.results.get(name)
        checks.append((name, bool(r and r.passed), r.detail if r else "not reported"))
    checks.append(("guest_run", res.ok, res.reason))
    checks.append(("daemon_alive", daemon_proc.poll() is None, f"rc={daemon_proc.returncode}"))
    if not res.ok and not verbose:
        print("---- console (tail) ----\n" + "\n".join(res.log.splitlines()[-60:]))


def report_checks(checks: list, t0: float) -> bool:
    """Prints one PASS/FAIL line per check and a summary; True when all passed."""
    failed = [c for c in checks if not c[1]]
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'} {name} {detail}".rstrip())
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed ({time.monotonic() - t0:.0f}s)")
    return not failed
