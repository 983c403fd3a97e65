#!/usr/bin/env bash
# virtio-net data path benchmark: vdpu's virtio-net device (vdpu-perf
# net-target) beside DPDK's net_vhost PMD, both driven by the same DPDK
# testpmd net_virtio_user front-end in the same run. Backend on core 0,
# front-end forwarding on core 1. Results: bench/net.md.
#
#   bench/run-net.sh [--perf PATH] [--time SECONDS] [--sizes "64 1500"] [--only vdpu|dpdk]
#
# Scenarios, per frame size:
#   g2b  guest -> backend: front-end txonly; vdpu drop backend | net_vhost + testpmd rxonly
#   b2g  backend -> guest: front-end rxonly; vdpu gen backend  | net_vhost + testpmd txonly
#   d2d  device -> device: front-end io with two ports ("start tx_first 16");
#        vdpu: two devices cross-connected by the loopback backend;
#        DPDK: two net_vhost ports forwarded by testpmd io
# The rate reported is the front-end's (testpmd --stats-period 1: Tx-pps for
# g2b, Rx-pps for b2g, Rx-pps summed over both ports for d2d), median of the
# steady-state seconds; the backend's own rate is printed beside it.
# Needs root (hugepages) and Debian's dpdk package.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import argparse, glob, os, re, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--perf", default=None)
ap.add_argument("--time", type=float, default=8)
ap.add_argument("--sizes", default="64 1500")
ap.add_argument("--only", choices=["vdpu", "dpdk"])
ap.add_argument("--queue-size", type=int, default=1024)
a = ap.parse_args()
perf = a.perf or next(iter(sorted(glob.glob("build*/bin/vdpu-perf"))), None)
if not perf:
    sys.exit("vdpu-perf not found; pass --perf")
QS = a.queue_size
tmp = tempfile.mkdtemp(prefix="vdpu-netbench-")

def hugepages():
    import atexit
    nr = Path("/proc/sys/vm/nr_hugepages")
    orig = int(nr.read_text())
    if orig < 1024:
        nr.write_text("1024")
        atexit.register(lambda: nr.write_text(str(orig)))
    if not any(l.split()[1] == "/dev/hugepages" and l.split()[2] == "hugetlbfs"
               for l in Path("/proc/mounts").read_text().splitlines()):
        os.makedirs("/dev/hugepages", exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "nodev", "/dev/hugepages"], check=True)
        atexit.register(lambda: subprocess.run(["umount", "/dev/hugepages"]))

def clean(prefix):
    for p in glob.glob(f"/dev/hugepages/{prefix}*"):
        try: os.unlink(p)
        except OSError: pass

def spawn(cmd, stdin=None):
    out = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=stdin, text=True)
    return p, out

def text(out):
    out.seek(0); return out.read()

def wait_sock(path, p, out):
    t = time.time() + 15
    while not os.path.exists(path):
        if p.poll() is not None or time.time() > t:
            raise SystemExit(f"backend did not create {path}:\n{text(out)}")
        time.sleep(0.05)

def stop(p, sig=signal.SIGINT, t=20):
    if p.poll() is None:
        p.send_signal(sig)
        try: p.wait(t)
        except subprocess.TimeoutExpired: p.kill(); p.wait()

def pmd_rates(s, key, nports):
    """Per-second samples of key (Rx-pps/Tx-pps) summed over nports ports."""
    v = [int(x) for x in re.findall(rf"{key}:\s+(\d+)", s)]
    sums = [sum(v[i:i + nports]) for i in range(0, len(v) - nports + 1, nports)]
    return sums

def vdpu_rates(s, what):
    """vdpu-perf --stats-interval lines: sum of devN <what> Mpps per sample time."""
    by_t = {}
    for t, dev, tx, rx in re.findall(r"\[\s*([\d.]+)s\] dev(\d+) tx ([\d.]+) Mpps [\d.]+ Gbit/s  rx ([\d.]+) Mpps", s):
        by_t.setdefault(t, 0.0)
        by_t[t] += float(tx if what == "tx" else rx)
    return [by_t[k] * 1e6 for k in sorted(by_t, key=float)]

def steady(samples, drop_head=2):
    s = [x for x in samples[drop_head:] if x > 0]
    return statistics.median(s) if s else 0.0

FRONT_EAL = ["-l", "0,1", "--main-lcore", "0", "--no-pci", "--single-file-segments", "-m", "512"]
BACK_EAL = ["-l", "0,1", "--main-lcore", "1", "--no-pci", "--single-file-segments", "-m", "512"]

def frontend(socks, mode, size, interactive=False):
    cmd = ["stdbuf", "-oL", "dpdk-testpmd"] + FRONT_EAL + ["--file-prefix", "fe"]
    for i, s in enumerate(socks):
        cmd += ["--vdev", f"net_virtio_user{i},path={s},queues=1,queue_size={QS}"]
    cmd += ["--", f"--forward-mode={mode}", "--nb-cores=1", f"--txd={QS}", f"--rxd={QS}",
            f"--txpkts={size}", "--stats-period=1" if not interactive else "-i", "--burst=32"]
    if not interactive:
        cmd.append("--auto-start")
    return cmd

def run(backend_cmd, socks, mode, size, d2d=False, backend_is_vdpu=True):
    clean("fe"); clean("be")
    bp, bout = spawn(backend_cmd)
    try:
        for s in socks: wait_sock(s, bp, bout)
        if d2d:
            # interactive: inject 16 bursts per port, forward, print stats each second
            fcmd = frontend(socks, mode, size, interactive=True)
            fp = subprocess.Popen(fcmd, stdin=subprocess.PIPE, stdout=(fo := tempfile.TemporaryFile(mode="w+")),
                                  stderr=subprocess.STDOUT, text=True)
            time.sleep(3)
            fp.stdin.write("start tx_first 16\n"); fp.stdin.flush()
            samples = []
            last = None
            for _ in range(int(a.time)):
                time.sleep(1)
                fp.stdin.write("show port stats all\n"); fp.stdin.flush()
            time.sleep(0.5)
            fp.stdin.write("stop\nquit\n"); fp.stdin.flush()
            try: fp.wait(20)
            except subprocess.TimeoutExpired: fp.kill(); fp.wait()
            ftxt = text(fo)
            fr = pmd_rates(ftxt, "Rx-pps", len(socks))
        else:
            fp, fo = spawn(frontend(socks, mode, size))
            time.sleep(a.time)
            stop(fp)
            ftxt = text(fo)
            fr = pmd_rates(ftxt, "Tx-pps" if mode == "txonly" else "Rx-pps", len(socks))
    finally:
        stop(bp, signal.SIGINT if not backend_is_vdpu else signal.SIGTERM)
        clean("fe"); clean("be")
    btxt = text(bout)
    if backend_is_vdpu:
        br = vdpu_rates(btxt, "tx" if mode == "txonly" else "rx")
    else:
        br = pmd_rates(btxt, "Rx-pps" if mode in ("txonly", "io") else "Tx-pps", len(socks))
    if not fr:
        print(ftxt[-3000:], file=sys.stderr)
        print(btxt[-3000:], file=sys.stderr)
    return steady(fr), steady(br)

def vdpu_cmd(backend, socks, size):
    c = [perf, "net-target", "--core", "0", "--queue-size", str(QS), "--stats-interval", "1",
         "--backend", backend, "--socket", socks[0], "--pkt-size", str(size)]
    if len(socks) > 1: c += ["--socket2", socks[1]]
    if size > 1500: c += ["--mtu", str(size)]
    return c

def dpdk_cmd(mode, socks, size):
    c = ["stdbuf", "-oL", "dpdk-testpmd"] + BACK_EAL + ["--file-prefix", "be"]
    for i, s in enumerate(socks):
        c += ["--vdev", f"net_vhost{i},iface={s},queues=1"]
    c += ["--", f"--forward-mode={mode}", "--nb-cores=1", f"--txd={QS}", f"--rxd={QS}",
          f"--txpkts={size}", "--stats-period=1", "--auto-start", "--burst=32"]
    return c

hugepages()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"CPU: {cpu}; {os.cpu_count()} cpus; kernel {os.uname().release}")
print(f"dpdk: {subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'dpdk'], capture_output=True, text=True).stdout}")
print(f"vdpu-perf: {perf}; queue size {QS}; {a.time:.0f} s per run\n")
print(f"| scenario | size | backend | front-end Mpps | backend-side Mpps |")
print(f"|---|---|---|---|---|")
n = 0
for size in [int(x) for x in a.sizes.split()]:
    for scen in ["g2b", "b2g", "d2d"]:
        for who in ["vdpu", "dpdk"]:
            if a.only and who != a.only: continue
            n += 1
            socks = [f"{tmp}/s{n}a.sock"] + ([f"{tmp}/s{n}b.sock"] if scen == "d2d" else [])
            if scen == "g2b":
                fmode = "txonly"
                bcmd = vdpu_cmd("drop", socks, size) if who == "vdpu" else dpdk_cmd("rxonly", socks, size)
            elif scen == "b2g":
                fmode = "rxonly"
                bcmd = vdpu_cmd("gen", socks, size) if who == "vdpu" else dpdk_cmd("txonly", socks, size)
            else:
                fmode = "io"
                bcmd = vdpu_cmd("loopback", socks, size) if who == "vdpu" else dpdk_cmd("io", socks, size)
            f, b = run(bcmd, socks, fmode, size, d2d=(scen == "d2d"), backend_is_vdpu=(who == "vdpu"))
            name = "vdpu (net-target)" if who == "vdpu" else "DPDK net_vhost"
            print(f"| {scen} | {size} | {name} | {f/1e6:.2f} | {b/1e6:.2f} |", flush=True)
PY
