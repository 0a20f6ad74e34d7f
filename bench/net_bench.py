#!/usr/bin/env python3
"""TCP throughput and round-trip latency of the MINIX-style guest's network stack (INET
on lwIP, the vnet driver) on ukvm against QEMU, the same image, in one run.

Host <-> guest: each VMM runs in a network namespace this script makes (unshare -n, as
tests/integration/test_net.cpp does), on a tap whose host side is 10.1.0.1/24 and the
guest 10.1.0.2; ukvm creates its tap (backend = "tap"), QEMU gets -netdev tap and
-device virtio-net-pci,disable-legacy=on. From the host side of the namespace: ping
(min/avg), a TCP client streaming BYTES through the guest's echod and reading them back,
and curl fetching httpd's /pattern/BYTES.
Guest <-> guest: two ukvm guests on one built-in switch, against two QEMU guests joined
by -netdev socket (QEMU's own guest-to-guest link): the guest's ping and echoc.

Needs root (namespaces and taps), /dev/kvm, qemu-system-x86_64, curl, ip, unshare and
nsenter; otherwise it prints "skipped: <why>" and exits 0. Usage:
    bench/net_bench.py [--build DIR] [--bytes N] [--pings N]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Guest:
    """A VMM process driven through its console: output collected by a thread."""

    def __init__(self, argv, name):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.text = ""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: os.read(self.proc.stdout.fileno(), 4096), b""):
            with self.lock:
                self.text += chunk.decode("latin-1")

    def output(self):
        with self.lock:
            return self.text

    def mark(self):
        return len(self.output())

    def send(self, line):
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def wait_for(self, pattern, seconds, after=0):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            m = re.search(pattern, self.output()[after:])
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no /{pattern}/ in:\n{self.output()[-2000:]}")

    def run(self, command, pattern, seconds):
        at = self.mark()
        self.send(command + "\n")
        return self.wait_for(pattern, seconds, at)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send("poweroff\n")
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.reader.join(timeout=5)

    def netns(self):
        return f"--net=/proc/{self.proc.pid}/ns/net"


def minix_modules(build):
    """The boot modules of configs/minix.toml (path, args) with this build's paths."""
    text = open(os.path.join(ROOT, "configs", "minix.toml")).read()
    mods = re.findall(r'\[\[module\]\]\npath = "\.\./build/([^"]*)"\nargs = "([^"]*)"', text)
    return [(os.path.join(build, p), a) for p, a in mods]


def ukvm_config(build, name, inet_args, net):
    """configs/minix.toml for this build, without its disk, INET's address and a NIC."""
    text = open(os.path.join(ROOT, "configs", "minix.toml")).read()
    text = text.replace('"../build/', f'"{build}/')
    text = re.sub(r'\[\[disk\]\]\npath = "[^"]*"\n', "", text)
    text = text.replace('guest-servers/inet"\nargs = "', f'guest-servers/inet"\nargs = "{inet_args}')
    text = text.replace('name = "minix"', f'name = "{name}"')
    at = text.index("[console]")
    return text[:at] + net + "\n" + text[at:]


def qemu_argv(build, inet_args, netdev, mac):
    initrd = []
    for path, args in minix_modules(build):
        if path.endswith("/inet"):
            args = inet_args
        initrd.append(path + (" " + args if args else ""))
    return ["qemu-system-x86_64", "-enable-kvm", "-M", "pc", "-m", "64",
            "-kernel", os.path.join(build, "guest-kernel", "kernel.elf"),
            "-append", "start=1", "-initrd", ",".join(initrd), "-display", "none",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-no-reboot", "-netdev", netdev,
            "-device", f"virtio-net-pci,netdev=n0,disable-legacy=on,mac={mac}"]


def nsrun(guest, argv, timeout=120):
    r = subprocess.run(["nsenter", guest.netns(), "--"] + argv, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stdout}{r.stderr}")
    return r.stdout


ECHO_CLIENT = """
import socket, sys, threading, time
n = int(sys.argv[1])
data = bytes((i * 7 + i // 251) & 255 for i in range(n))
c = socket.create_connection(("10.1.0.2", 7), timeout=60)
got = bytearray()
def rx():
    while len(got) < n:
        d = c.recv(65536)
        if not d: break
        got.extend(d)
t0 = time.monotonic()
r = threading.Thread(target=rx); r.start()
c.sendall(data); r.join()
dt = time.monotonic() - t0
print("ok" if bytes(got) == data else "differs", dt)
"""


def host_to_guest(guest, nbytes, pings):
    """The figures for one guest whose namespace's host side is 10.1.0.1."""
    guest.wait_for(r"minix# ", 90)
    nsrun(guest, ["ping", "-c", "3", "-W", "5", "-q", "10.1.0.2"])  # ARP and warm-up
    out = nsrun(guest, ["ping", "-c", str(pings), "-i", "0.05", "-q", "10.1.0.2"])
    rtt = re.search(r"= ([0-9.]+)/([0-9.]+)/", out)
    res = {"ping min (ms)": float(rtt[1]), "ping avg (ms)": float(rtt[2])}
    guest.run("echod 7 &", r"echod: tcp port 7", 30)
    out = nsrun(guest, [sys.executable, "-c", ECHO_CLIENT, str(nbytes)]).split()
    if out[0] != "ok":
        raise RuntimeError(f"{guest.name}: the echoed bytes differ")
    res["echo (KiB/s)"] = nbytes / 1024 / float(out[1])
    guest.run("httpd &", r"httpd: listening on port 80", 30)
    out = nsrun(guest, ["curl", "-sS", "--max-time", "100", "-o", "/dev/null", "-w",
                        "%{size_download} %{time_total}",
                        f"http://10.1.0.2/pattern/{nbytes}"]).split()
    if int(out[0]) != nbytes:
        raise RuntimeError(f"{guest.name}: httpd sent {out[0]} bytes")
    res["http GET (KiB/s)"] = nbytes / 1024 / float(out[1])
    return res


def guest_to_guest(a, b, nbytes, pings):
    for g in (a, b):
        g.wait_for(r"minix# ", 90)
    a.run("echod 7 &", r"echod: tcp port 7", 30)
    b.run("ping 10.9.0.1 2", r"--- 10.9.0.1:", 30)  # ARP and warm-up
    at = b.mark()
    b.run(f"ping 10.9.0.1 {pings}", r"--- 10.9.0.1: .*\n", 30 + 2 * pings)
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", b.output()[at:])]
    if not times:
        raise RuntimeError(f"{b.name}: no ping replies")
    m = b.run(f"echoc 10.9.0.1 7 {nbytes}", r"echoc: ([0-9]+) bytes echoed intact in "
              r"([0-9]+) ms", 60 + nbytes // 2000)
    return {"ping min (ms)": min(times), "ping avg (ms)": sum(times) / len(times),
            "echo (KiB/s)": nbytes / 1024 / (int(m[2]) / 1000)}


def skip_reason(build):
    if os.geteuid() != 0:
        return "not root (a network namespace with a tap needs root)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not usable"
    for tool in ("qemu-system-x86_64", "curl", "ip", "unshare", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not os.access(os.path.join(build, "vmm", "ukvm"), os.X_OK):
        return f"no {build}/vmm/ukvm (build first)"
    r = subprocess.run(["unshare", "-n", "ip", "tuntap", "add", "dev", "t0", "mode", "tap"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "no tap in a new network namespace: " + r.stderr.strip()
    return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--bytes", type=int, default=200000, help="bytes per TCP transfer")
    ap.add_argument("--pings", type=int, default=20, help="pings per latency figure")
    opt = ap.parse_args()
    build = os.path.realpath(opt.build)
    if why := skip_reason(build):
        print(f"net_bench: skipped: {why}")
        return 0
    ukvm = os.path.join(build, "vmm", "ukvm")
    tmp = tempfile.mkdtemp(prefix="ukvm-net-bench-")
    tap_args = "ip=10.1.0.2/24 gw=10.1.0.1"
    guests = []

    def start(argv, name):
        g = Guest(argv, name)
        guests.append(g)
        return g

    def ukvm_guest(name, inet_args, net, prefix=()):
        path = os.path.join(tmp, name + ".toml")
        with open(path, "w") as f:
            f.write(ukvm_config(build, name, inet_args, net))
        return start(list(prefix) + [ukvm, "run", path], "ukvm " + name)

    rows = {}
    try:
        # Host <-> guest over a tap, ukvm then QEMU (one at a time: the machine is small).
        # Each VMM creates its tap in its own namespace; the host side is set up once the
        # guest is up. (A tap made beforehand with `ip tuntap add` passed no frames from the
        # guest on QEMU, so both VMMs make their own.)
        def host_side(g, ifname):
            g.wait_for(r"minix# ", 90)
            nsrun(g, ["sh", "-c", f"ip link set lo up && ip addr add 10.1.0.1/24 dev {ifname}"
                      f" && ip link set {ifname} up"])
            return host_to_guest(g, opt.bytes, opt.pings)

        g = ukvm_guest("nbtap", tap_args, '[[net]]\nbackend = "tap"\nifname = "ukvmt0"\n',
                       ["unshare", "-n"])
        ukvm_tap = host_side(g, "ukvmt0")
        g.stop()
        q = start(["unshare", "-n"] +
                  qemu_argv(build, tap_args, "tap,id=n0,ifname=qt0,script=no,downscript=no",
                            "52:54:00:12:34:56"), "qemu tap")
        qemu_tap = host_side(q, "qt0")
        q.stop()
        rows["host <-> guest (tap)"] = (ukvm_tap, qemu_tap)

        # Guest <-> guest: ukvm's switch, QEMU's -netdev socket link.
        sw = (f'[[net]]\nbackend = "switch"\nswitch = "bench"\n'
              f'switch_dir = "{os.path.join(tmp, "sw")}"\n')
        os.makedirs(os.path.join(tmp, "sw"))
        a = ukvm_guest("nbswa", "ip=10.9.0.1/24", sw)
        b = ukvm_guest("nbswb", "ip=10.9.0.2/24", sw)
        ukvm_sw = guest_to_guest(a, b, opt.bytes, opt.pings)
        a.stop()
        b.stop()
        port = free_port()
        a = start(qemu_argv(build, "ip=10.9.0.1/24", f"socket,id=n0,listen=127.0.0.1:{port}",
                            "52:54:00:12:34:01"), "qemu a")
        time.sleep(1)
        b = start(qemu_argv(build, "ip=10.9.0.2/24", f"socket,id=n0,connect=127.0.0.1:{port}",
                            "52:54:00:12:34:02"), "qemu b")
        qemu_sw = guest_to_guest(a, b, opt.bytes, opt.pings)
        a.stop()
        b.stop()
        rows["guest <-> guest (ukvm switch / QEMU socket)"] = (ukvm_sw, qemu_sw)
    finally:
        for g in guests:
            if g.proc.poll() is None:
                os.killpg(g.proc.pid, signal.SIGKILL)
                g.proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"network: {opt.bytes} bytes per TCP transfer, {opt.pings} pings "
          "(ratio = ukvm / QEMU; for ping lower is better, for KiB/s higher)")
    print(f"{'':48} {'ukvm':>10} {'QEMU':>10} {'ratio':>7}")
    for title, (u, q) in rows.items():
        print(title)
        for key in u:
            print(f"  {key:46} {u[key]:10.3f} {q[key]:10.3f} {u[key] / q[key]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
