#!/usr/bin/env python3
"""Integration test of the virtio-net controller: a real `vdpu-virtnet`
(with its HA supervisor) driven by the real `virtnet` CLI (virtio-net spec
§2, §4, §11, §13).

    VDPU_BIN_DIR=build/bin python3 tests/integration/test_virtnet.py [-v] [--only NAME]

Needs root (TAP representors). The driver-bound cases use DPDK testpmd
(net_virtio_user) as the vhost-user front-end when it is installed and
hugepages can be reserved (helpers from test_net_testpmd.py); otherwise they
are skipped. Exit 0 = all passed, 1 = a case failed, 77 = skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BIN = Path(os.environ.get("VDPU_BIN_DIR", HERE.parent.parent / "build" / "bin"))
SKIP = 77

# virtio-net spec §5
ERR = {"FEATURE_VALIDATE": -1000, "DEV_NOT_FOUND": -1001, "DEV_NOT_HOTPLUG": -1002, "DRIVER_LOADED": -1004,
       "INVALID_MAC": -1008, "INVALID_MTU": -1010, "PORT_CTX_NOT_FOUND": -1011, "INVALID_QUEUE_SIZE": -1033,
       "QUEUE_SIZE_POW2": -1042, "HOTPLUG_SF_NUM_RANGE": -1048, "SF_NUM_IN_USE": -1049,
       "DEV_NOT_READY_UNPLUG": -1065, "INVALID_QUEUES": -1073, "INVALID_HASH_TYPES": -1052,
       "INVALID_RSS_KEY_SIZE": -1053}

MAC = "0C:C4:7A:FF:22:93"


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Env:
    def __init__(self, tmp: str, verbose: bool):
        self.tmp = Path(tmp)
        self.verbose = verbose
        self.rpc = str(self.tmp / "virtnet.sock")
        self.sockdir = self.tmp / "sockets"
        self.state = self.tmp / "state"
        self.recovery = self.state / "recovery"
        self.prefix = f"vt{os.getpid() % 10000}sf"
        self.conf = self.tmp / "virtnet.conf"
        self.emu = self.tmp / "emu.conf"
        self.conf.write_text(json.dumps({"ib_dev_p0": "mlx5_0", "ib_dev_p1": "mlx5_1",
                                         "static_pf": {"mac_base": "08:11:22:33:44:55"}}))
        self.emu.write_text("VIRTIO_NET_EMULATION_ENABLE=1\nVIRTIO_NET_EMULATION_NUM_PF=1\n"
                            "PCI_SWITCH_EMULATION_ENABLE=1\nPCI_SWITCH_EMULATION_NUM_PORT=4\n")
        self.proc = None
        self.log = open(self.tmp / "daemon.log", "a+")

    def rep(self, sf: int) -> str:
        return f"{self.prefix}{sf}"

    def daemon_cmd(self, conf=None):
        return [str(BIN / "vdpu-virtnet"), "-c", str(conf or self.conf), "--emu-config", str(self.emu),
                "--rpc-socket", self.rpc, "--socket-dir", str(self.sockdir), "--state-dir", str(self.state),
                "--rep-prefix", self.prefix, "-m", "0x1", "-e"]

    def start(self):
        cmd = self.daemon_cmd()
        if self.verbose:
            print("+", " ".join(cmd), flush=True)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vdpu-virtnet exited ({self.proc.returncode}):\n{self.daemon_log()}")
            rc, _, out = self.cli("list", check_rc=False)
            if rc == 0 and isinstance(out, dict) and "controller" in out:
                return
            time.sleep(0.1)
        raise RuntimeError("vdpu-virtnet did not answer `virtnet list`:\n" + self.daemon_log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL) if False else self.proc.kill()
                self.proc.wait()
        self.proc = None

    def daemon_log(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def cli(self, *args, check_rc=True, expect_rc=None):
        cmd = [str(BIN / "virtnet"), "--rpc-socket", self.rpc, *map(str, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        lines = r.stdout.splitlines()
        echo = None
        if lines and lines[0].startswith("{'"):
            echo = lines.pop(0)
        text = "\n".join(lines).strip()
        try:
            out = json.loads(text) if text else None
        except json.JSONDecodeError:
            out = text
        if self.verbose:
            print("+ virtnet", " ".join(map(str, args)), f"-> rc {r.returncode}", (echo or ""), text[:400],
                  r.stderr.strip()[:300], flush=True)
        if expect_rc is not None:
            check(r.returncode == expect_rc, f"virtnet {args}: rc {r.returncode}, wanted {expect_rc}: {r.stdout}"
                  f"{r.stderr}")
        elif check_rc:
            check(r.returncode == 0, f"virtnet {args}: rc {r.returncode}: {r.stdout}{r.stderr}")
        return r.returncode, echo, out


def ifindex(name: str) -> int:
    return int(Path(f"/sys/class/net/{name}/ifindex").read_text())


def exists_if(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def hotplug(env: Env, mac=MAC, extra=()):
    return env.cli("hotplug", "-i", "mlx5_0", "-m", mac, "-t", "1500", "-n", "3", "-s", "1024", *extra,
                   check_rc=False)


def device(env: Env, pf: int) -> dict:
    _, _, out = env.cli("query", "-p", pf, "-b")
    return out["devices"][0]


# --------------------------------------------------------------------------- cases

def case_list_static(env: Env):
    _, echo, out = env.cli("list")
    c = out["controller"]
    check(c["emulation_manager"] == "mlx5_0", c)
    check(c["max_hotplug_devices"] == "4", c)
    check(c["max_virt_queues"] == "256", c)
    check(c["supported_virt_queue_types"]["value"] == "0x1", c)
    check(c["supported_event_modes"] == {"value": "0x5", " 0": "NO_MSIX_MODE", " 2": "MSIX_MODE"}, c)
    check(len(out["devices"]) == 1, out)
    d = out["devices"][0]
    check(d["pf_id"] == 0 and d["function_type"] == "static PF", d)
    check(d["sf_num"] == 1000 and d["sf_rep_net_device"] == env.rep(1000), d)
    check(d["mac"] == "08:11:22:33:44:55", d)  # static_pf.mac_base
    check(exists_if(env.rep(1000)), "static PF representor missing")
    check(d["sf_rep_net_ifindex"] == ifindex(env.rep(1000)), d)
    check(Path(d["vhost_user_socket"]).is_socket(), d)
    return f"static PF {d['vuid']} rep {d['sf_rep_net_device']}"


def case_hotplug(env: Env):
    rc, echo, out = hotplug(env)
    check(rc == 0 and out["errno"] == 0 and out["errstr"] == "Success", out)
    check(echo.startswith("{'ib_device': 'mlx5_0', 'mac': '0C:C4:7A:FF:22:93', 'mtu': '0x5dc'"), echo)
    check(out["id"] == 1 and out["transitional"] == 0 and out["mac"] == MAC, out)
    rep = out["sf_rep_net_device"]
    check(rep == env.rep(2000), out)
    check(exists_if(rep), f"representor {rep} missing")
    check(Path(out["vhost_user_socket"]).is_socket(), out)
    check(out["vhost_user_socket"] == str(env.sockdir / out["vuid"]), out)
    rec = json.loads((env.recovery / out["vuid"]).read_text())
    for k, v in {"port_ib_dev": "mlx5_0", "pf_id": 1, "function_type": "pf", "device_type": "hotplug",
                 "mac": MAC.lower(), "sf_num": 2000, "mq": 3}.items():
        check(rec[k] == v, f"recovery {k}: {rec}")
    return f"{out['vuid']} bdf {out['bdf']} rep {rep}"


def case_query(env: Env):
    _, echo, out = env.cli("query", "-p", 1)
    check(echo == "{'all': '0x0', 'pf': '0x1', 'dbg_stats': '0x0', 'brief': '0x0', 'latency_stats': '0x0', "
                  "'stats_clear': '0x0'}", echo)
    d = out["devices"][0]
    for k in ("pci_dev_id", "pci_vendor_id", "device_feature", "driver_feature", "status", "reset", "enabled",
              "enabled-queues-info", "num_queues", "max_queue_size", "mtu", "ctrl_mac", "sf_rep_net_device"):
        check(k in d, f"query lacks {k}")
    check(d["num_queues"] == "3" and d["max_queue_size"] == "1024" and d["mtu"] == "1500", d)
    check(d["pci_dev_id"] == "0x1041" and d["pci_vendor_id"] == "0x1af4", d)
    check(d["device_feature"]["value"].startswith("0x"), d)
    # RSS / HASH_REPORT / NOTF_COAL offered; their config fields (§4.4).
    feats = set(d["device_feature"].values())
    for name in ("VIRTIO_NET_F_RSS", "VIRTIO_NET_F_HASH_REPORT", "VIRTIO_NET_F_NOTF_COAL"):
        check(name in feats, f"device_feature lacks {name}: {d['device_feature']}")
    check(d["rss_max_key_size"] == "40" and d["supported_hash_types"] == "0x3f", d)
    check(d["dim"] == "disabled", d)
    rc, _, miss = env.cli("query", "-p", 9, check_rc=False)
    check(rc == 1 and miss == {"Error": "Device doesn't exist"}, miss)
    _, _, s = env.cli("stats", "-p", 1)
    check(s["device"]["pf_id"] == 1 and s["device"]["packet_counters"] == "Disabled", s)
    check(len(s["device"]["queues-stats"]) == 2, s)
    _, _, h = env.cli("health", "-p", 1, "show")
    check(h["health_status"] == "Good" and h["type"] == "hotplug PF", h)
    return "query/stats/health fields present; missing device -> Error"


def case_errors(env: Env):
    cases = [
        (("-m", "0C:C4:7A:FF:22", "-t", 1500, "-n", 3, "-s", 1024), "INVALID_MAC"),
        (("-m", "0C:C4:7A:FF:22:XX", "-t", 1500, "-n", 3, "-s", 1024), "INVALID_MAC"),
        (("-m", MAC, "-t", 1500, "-n", 3, "-s", 1024), "INVALID_MAC"),  # not unique
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 10000, "-n", 3, "-s", 1024), "INVALID_MTU"),
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 3, "-s", 1000), "QUEUE_SIZE_POW2"),
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 3, "-s", 0x10000), "INVALID_QUEUE_SIZE"),
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 1, "-s", 256), "INVALID_QUEUES"),
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 3, "-s", 256, "-u", 1500), "HOTPLUG_SF_NUM_RANGE"),
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 3, "-s", 256, "-u", 2000), "SF_NUM_IN_USE"),
        (("-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 3, "-s", 256, "-f", "0x10"), "FEATURE_VALIDATE"),
    ]
    for args, name in cases:
        rc, _, out = env.cli("hotplug", "-i", "mlx5_0", *args, check_rc=False)
        check(rc == 1 and out["errno"] == ERR[name], f"hotplug {args}: {out}")
    rc, _, out = env.cli("hotplug", "-i", "mlx5_7", "-m", "0C:C4:7A:FF:22:A0", "-t", 1500, "-n", 3, "-s", 256,
                         check_rc=False)
    check(out["errno"] == ERR["PORT_CTX_NOT_FOUND"], out)
    rc, _, out = env.cli("modify", "-p", 1, "device", "-t", 20000, check_rc=False)
    check(rc == 1 and out == {"errno": -1010, "errstr": "Failed - MTU is invalid"}, out)
    rc, _, out = env.cli("modify", "-p", 1, "device", "-m", "zz:zz", check_rc=False)
    check(out["errno"] == ERR["INVALID_MAC"], out)
    rc, _, out = env.cli("modify", "-p", 1, "device", "-q", 100, check_rc=False)
    check(out["errno"] == ERR["QUEUE_SIZE_POW2"], out)
    rc, _, out = env.cli("modify", "-p", 1, "device", "-o", "0x40", check_rc=False)  # IP_EX: not hashed
    check(rc == 1 and out == {"errno": -1052, "errstr": "Hash type is invalid, check help menu for supported hash types"},
          out)
    rc, _, out = env.cli("modify", "-p", 1, "device", "-k", 52, check_rc=False)
    check(rc == 1 and out == {"errno": -1053, "errstr": "RSS max key size is invalid, supported key size is 40"}, out)
    rc, _, out = env.cli("unplug", "-p", 0, check_rc=False)
    check(rc == 1 and out["errno"] == ERR["DEV_NOT_HOTPLUG"], out)
    rc, _, out = env.cli("unplug", "-p", 7, check_rc=False)
    check(out["errno"] == ERR["DEV_NOT_FOUND"], out)
    r = subprocess.run([str(BIN / "virtnet"), "--rpc-socket", env.rpc, "hotplug", "-i", "mlx5_0"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "required" in r.stderr, r.stderr)
    _, _, l = env.cli("list")
    check(len(l["devices"]) == 2, "a refused hotplug left a device behind")
    return f"{len(cases) + 9} refusals with the spec's errno"


def case_modify(env: Env):
    _, echo, out = env.cli("modify", "-p", 1, "device", "-m", "02:AA:BB:CC:DD:01", "-t", 9000)
    check(echo == "{'pf': '0x1', 'all': '0x0', 'subcmd': '0x0', 'mac': '02:AA:BB:CC:DD:01', 'mtu': '0x2328'}", echo)
    check(out == {"errno": 0, "errstr": "Success"}, out)
    d = device(env, 1)
    check(d["mac"] == "02:AA:BB:CC:DD:01" and d["mtu"] == "9000", d)
    env.cli("modify", "-p", 1, "device", "-qp", 2, "-dim", "enable")
    d = device(env, 1)
    check(d["max_queue_pairs"] == "2" and d["num_queues"] == "5" and d["dim"] == "enabled", d)
    env.cli("modify", "-p", 1, "device", "-o", "0x7", "-k", 40)
    d = device(env, 1)
    check(d["supported_hash_types"] == "0x7" and d["rss_max_key_size"] == "40", d)
    feats = set(d["device_feature"].values())
    check("VIRTIO_NET_F_RSS" in feats, d["device_feature"])
    env.cli("modify", "-p", 1, "device", "-o", "0x0")
    feats = set(device(env, 1)["device_feature"].values())
    check("VIRTIO_NET_F_RSS" not in feats and "VIRTIO_NET_F_HASH_REPORT" not in feats, "hash types 0: no RSS offered")
    env.cli("modify", "-p", 1, "device", "-o", "0x3f")
    check(exists_if(env.rep(2000)), "representor lost by a device rebuild")
    env.cli("modify", "-p", 1, "queue", "-e", "event", "-n", 10, "-c", 30)
    _, _, lvl = env.cli("log", "-l", "info")
    check(lvl == "Success", lvl)
    _, _, v = env.cli("version")
    check(isinstance(v, list) and "Original Controller" in v[0] and "Destination Controller" in v[1], v)
    return "MAC/MTU/QPs/dim/hash types changed, representor kept"


def case_bound(env: Env):
    """Driver bound (DPDK testpmd net_virtio_user): modify refused, unplug refused."""
    if not shutil.which("dpdk-testpmd"):
        raise Skip("dpdk-testpmd not installed")
    try:
        from test_net_testpmd import Hugepages, Testpmd, clean_hugefiles  # noqa: E402
    except ImportError as e:
        raise Skip(f"test_net_testpmd helpers: {e}")
    sock = device(env, 1)["vhost_user_socket"]
    prefix = f"vtnet{os.getpid()}"
    with Hugepages():
        pmd = Testpmd(sock, "rxonly", prefix, env.verbose)
        try:
            pmd.wait_started()
            deadline = time.time() + 10
            while time.time() < deadline and json.loads(json.dumps(device(env, 1)))["status"]["value"] != "0xf":
                time.sleep(0.2)
            _, _, q = env.cli("query", "-p", 1)
            d = q["devices"][0]
            check(d["status"]["value"] == "0xf", d["status"])
            check(len(d["enabled-queues-info"]) >= 2, d["enabled-queues-info"])
            check(d["driver_feature"]["value"] != "0x0", d)
            rc, _, out = env.cli("modify", "-p", 1, "device", "-t", 1500, check_rc=False)
            check(rc == 1 and out["errno"] == ERR["DRIVER_LOADED"], out)
            rc, _, out = env.cli("modify", "-p", 1, "device", "-m", "02:AA:BB:CC:DD:02", check_rc=False)
            check(out["errno"] == ERR["DRIVER_LOADED"], out)
            for opt in (("-o", "0x7"), ("-dim", "disable")):
                rc, _, out = env.cli("modify", "-p", 1, "device", *opt, check_rc=False)
                check(rc == 1 and out["errno"] == ERR["DRIVER_LOADED"], f"{opt}: {out}")
            _, _, out = env.cli("modify", "-p", 1, "device", "-l", 0)  # link is allowed
            _, _, out = env.cli("modify", "-p", 1, "device", "-l", 1)
            rc, _, out = env.cli("unplug", "-p", 1, check_rc=False)
            check(rc == 1 and out["errno"] == ERR["DEV_NOT_READY_UNPLUG"], out)
            check("please check host" in out["errstr"], out)
        finally:
            try:
                pmd.stop()
            except Exception:  # noqa: BLE001
                pmd.p.kill()
            clean_hugefiles(prefix)
    # Driver gone: modify allowed again.
    deadline = time.time() + 10
    while time.time() < deadline and device(env, 1)["status"]["value"] == "0xf":
        time.sleep(0.2)
    env.cli("modify", "-p", 1, "device", "-t", 1500)
    return "MTU/MAC modify -> -1004 and unplug -> -1065 while testpmd drove the device"


def case_validate(env: Env):
    bad = env.tmp / "bad.conf"
    bad.write_text('{"ib_dev_p0": "mlx5_0", "packed_vq": 3}')
    r = subprocess.run([str(BIN / "virtnet"), "validate", "-f", str(bad)], capture_output=True, text=True)
    check(r.returncode == 1 and "packed_vq" in r.stdout and "invalid" in r.stdout, r.stdout)
    r = subprocess.run([str(BIN / "virtnet"), "validate", "-f", str(env.conf)], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.strip() == f"{env.conf} is valid", r.stdout)
    broken = env.tmp / "broken.conf"
    broken.write_text('{"ib_dev_p0": "mlx5_0",,}')
    r = subprocess.run([str(BIN / "virtnet"), "validate", "-f", str(broken)], capture_output=True, text=True)
    check(r.returncode == 1 and "invalid JSON" in r.stdout, r.stdout)
    unknown = env.tmp / "unknown.conf"
    unknown.write_text('{"vf": {"mac_base": "CC:48:15:FF:00:00"}}')
    # The daemon refuses to start with a bad file and names the key.
    cmd = env.daemon_cmd(unknown)
    cmd[cmd.index("--rpc-socket") + 1] = str(env.tmp / "other.sock")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "vf.vfs_per_pf" in (r.stdout + r.stderr), r.stdout + r.stderr)
    return "validate: valid / invalid key / invalid JSON; daemon refuses a bad file naming the key"


def case_restart_recovery(env: Env):
    before = device(env, 1)
    env.stop()
    check(not exists_if(env.rep(2000)), "representor outlived the daemon")
    env.start()
    after = device(env, 1)
    for k in ("vuid", "mac", "mtu", "max_queue_pairs", "max_queue_size", "sf_rep_net_device", "pci_bdf", "dim",
              "supported_hash_types"):
        check(before[k] == after[k], f"{k}: {before[k]} -> {after[k]}")
    check(exists_if(env.rep(2000)), "representor not restored")
    check(Path(after["vhost_user_socket"]).is_socket(), after)
    return f"daemon stop/start: {after['vuid']} restored (mac {after['mac']}, mtu {after['mtu']})"


def worker_pid(env: Env) -> int:
    _, _, d = env.cli("debug")
    return d["pid"]


def case_ha_crash(env: Env):
    idx = ifindex(env.rep(2000))
    pid = worker_pid(env)
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 30
    while time.time() < deadline:
        rc, _, d = env.cli("debug", check_rc=False)
        if rc == 0 and d.get("pid") not in (None, pid):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("worker not restarted:\n" + env.daemon_log())
    check(ifindex(env.rep(2000)) == idx, "representor was recreated (ifindex changed)")
    d = device(env, 1)
    check(d["mtu"] == "1500" and d["mac"] == "02:AA:BB:CC:DD:01", d)
    check(env.proc.poll() is None, "supervisor exited")
    return f"worker {pid} killed; restarted, representor {env.rep(2000)} kept ifindex {idx}"


def case_fast_restart(env: Env):
    idx = ifindex(env.rep(1000))
    pid = worker_pid(env)
    _, _, out = env.cli("restart")
    check(out == "SUCCESS", out)
    check(worker_pid(env) != pid, "same worker")
    check(ifindex(env.rep(1000)) == idx, "representor recreated")
    _, echo, out = env.cli("update", "-s")
    check(echo == "{'start': '0x1'}" and out.startswith("Update started"), out)
    deadline = time.time() + 30
    st = None
    while time.time() < deadline:
        rc, _, st = env.cli("update", "-t", check_rc=False)
        if rc == 0 and isinstance(st, dict) and st.get("status") == "inactive" and \
                st.get("last live update status") == "success":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"update status: {st}")
    check(ifindex(env.rep(1000)) == idx, "representor recreated by live update")
    return f"restart -> SUCCESS; update -t {st}"


def case_unplug(env: Env):
    vuid = device(env, 1)["vuid"]
    _, echo, out = env.cli("unplug", "-p", 1)
    check(echo == "{'id': '0x1'}" and out == {"errno": 0, "errstr": "Success"}, (echo, out))
    check(not exists_if(env.rep(2000)), "representor still there")
    check(not (env.sockdir / vuid).exists(), "socket still there")
    check(not (env.recovery / vuid).exists(), "recovery file still there")
    rc, _, out = env.cli("query", "-u", vuid, check_rc=False)
    check(rc == 1 and "Error" in out, out)
    return f"{vuid}: representor, socket and recovery file removed"


CASES = [("list_static", case_list_static), ("hotplug", case_hotplug), ("query", case_query),
         ("errors", case_errors), ("modify", case_modify), ("bound", case_bound), ("validate", case_validate),
         ("restart_recovery", case_restart_recovery), ("ha_crash", case_ha_crash),
         ("fast_restart_update", case_fast_restart), ("unplug", case_unplug)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--only", action="append")
    a = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("SKIP: needs root and /dev/net/tun (TAP representors)")
        return SKIP
    for b in ("vdpu-virtnet", "virtnet"):
        if not (BIN / b).exists():
            print(f"SKIP: {BIN / b} not built")
            return SKIP
    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory(prefix="vdpu-virtnet-") as tmp:
        env = Env(tmp, a.verbose)
        try:
            env.start()
            for name, fn in CASES:
                if a.only and name not in a.only:
                    continue
                t0 = time.time()
                try:
                    detail = fn(env)
                    passed += 1
                    print(f"PASS {name} ({time.time() - t0:.1f}s): {detail}", flush=True)
                except Skip as e:
                    skipped += 1
                    print(f"SKIP {name}: {e}", flush=True)
                except Exception as e:  # noqa: BLE001
                    failed += 1
                    print(f"FAIL {name} ({time.time() - t0:.1f}s): {e}", flush=True)
                    if env.proc is None or env.proc.poll() is not None:
                        print(env.daemon_log())
                        break
        finally:
            env.stop()
            if a.verbose or failed:
                print("--- daemon log (tail) ---\n" + env.daemon_log())
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else (SKIP if passed == 0 else 0)


if __name__ == "__main__":
    sys.exit(main())
