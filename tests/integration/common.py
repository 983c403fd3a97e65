"""Helpers shared by the integration tests that drive a real vdpu-snap daemon
with an emulation layout (test_nvme.py, test_vblk.py): where the binaries
are, the JSON-RPC error codes, a minimal JSON-RPC client and the daemon
itself. Python 3 stdlib only; imported as `common` (the tests run as
scripts from this folder).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(os.environ.get("VDPU_BIN_DIR", HERE.parent.parent / "build" / "bin"))
SNAP = BIN / "vdpu-snap"

# Errc -> JSON-RPC code (src/rpc/rpc.h)
EINVAL = -32602
ENODEV = -19
EEXIST = -17
EBUSY = -16
ESTATE = -1
ETIMEDOUT = -110


def find_bin(name: str) -> Path:
    """A binary of the build tree: bin/ first, then the folder it is built in."""
    for p in (BIN / name, BIN.parent / "src" / "apps" / "vdpu-perf" / name,
              BIN.parent / "src" / "apps" / "rpc_cli" / name):
        if p.exists():
            return p
    return BIN / name


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Rpc:
    """Minimal JSON-RPC 2.0 client (one request per connection)."""

    def __init__(self, path: str):
        self.path = path
        self.next_id = 1

    def __call__(self, method: str, **params):
        req = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        self.next_id += 1
        if params:
            req["params"] = params
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(60)
            s.connect(self.path)
            s.sendall(json.dumps(req).encode())
            buf = b""
            dec = json.JSONDecoder()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError(f"{method}: connection closed")
                buf += chunk
                try:
                    resp, _ = dec.raw_decode(buf.decode())
                    break
                except ValueError:
                    continue
        if "error" in resp:
            raise RpcError(resp["error"]["code"], resp["error"]["message"])
        return resp["result"]


class Daemon:
    """vdpu-snap on <work>/spdk.sock with the emulation layout `emu_conf`
    (state, emulation files and log under `work`), none of the caller's
    SNAP/SPDK init variables, and the RPC log off, on the cores of `mask`. start() returns once
    spdk_get_version answers; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, work: Path, emu_conf: str, args=(), start_timeout: float = 30, mask: str = "0x1"):
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.mask = mask
        self.sock = str(work / "spdk.sock")
        self.args = [str(a) for a in args]
        self.start_timeout = start_timeout
        self.log_path = work / "vdpu-snap.log"
        self.env = dict(os.environ)
        self.env.update({
            "VDPU_STATE_DIR": str(work / "state"),
            "VDPU_EMU_DIR": str(work / "emu"),
            "VDPU_EMU_CONFIG": str(work / "emu.conf"),
            "SNAP_RPC_LOG_ENABLE": "0",
        })
        for k in ("SNAP_RPC_INIT_CONF", "SPDK_RPC_INIT_CONF", "SNAP_RPC_INIT_CONF_JSON",
                  "SPDK_RPC_INIT_CONF_JSON", "SNAP_EMULATION_MANAGER", "APP_ARGS"):
            self.env.pop(k, None)
        (work / "emu.conf").write_text(emu_conf)
        self.proc = None
        self.log = None
        self.rpc = Rpc(self.sock)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(SNAP), "-m", self.mask, "-r", self.sock, *self.args],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vdpu-snap exited rc={self.proc.returncode}: "
                                   + self.log_path.read_text()[-2000:])
            try:
                self.rpc("spdk_get_version")
                return
            except (OSError, RpcError, RuntimeError):
                time.sleep(0.05)
        raise TimeoutError("vdpu-snap did not answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None
