#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/ct_load.py: one level of bench/ct_load.sh, run in the client namespace (192.0.2.9-12).

Phases, each printing one JSON line:
  load     plain MAP refreshes from 192.0.2.9 at --rate/s for --seconds, while 192.0.2.10 elects
           and un-elects (toggles CHECKPOINT_REQUIRED on 32 mappings with 2 idle connections each
           from the remote host) at 10/s, and 192.0.2.11
           creates and deletes at 20/s and lets 2 s mappings expire: p50/p99/max of the plain
           requests, pcpd's CPU and its conntrack thread's CPU (from /proc, pid --pcpd)
  elect    5 times: a mapping with one idle established connection from the remote host
           (--wan namespace) through it, elected; ms until its conntrack entry carries
           elected|sticky|mapped
  delete   5 times: that mapping deleted; ms until its entry is gone
  touch    `pcpctl ha primary` with --touch-entries elected entries: ms to the first MAP answer
           and until pcpd_conntrack_touched_total moves, plain MAP p99 meanwhile
Conntrack entries are read and written with the conntrack CLI in the router namespace (--rtr).
Only documentation addresses.
"""
import argparse
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

CKPT = 192


def mapped16(a):
    return b"\x00" * 10 + b"\xff\xff" + socket.inet_aton(a)


def map_req(client, nonce, iport, lifetime, elect=False, ext_port=0):
    r = struct.pack("!BBHI", 2, 1, 0, lifetime) + mapped16(client)
    r += nonce + struct.pack("!B3xHH", 6, iport, ext_port) + mapped16("0.0.0.0")
    if elect:
        r += struct.pack("!BBH", CKPT, 0, 0)
    return r


class Client:
    def __init__(self, addr, server="192.0.2.1"):
        self.addr, self.server = addr, server
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((addr, 0))
        self.s.settimeout(2.0)

    def ask(self, req):
        t = time.monotonic()
        self.s.sendto(req, (self.server, 5351))
        try:
            data, _ = self.s.recvfrom(1100)
        except socket.timeout:
            return None, None
        return (time.monotonic() - t) * 1000.0, data


def ext_port(resp):
    return struct.unpack("!H", resp[42:44])[0]


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))], 3)


def cpu_ns(pid, tid=None):
    """time on a CPU in ns (schedstat: finer than the 10 ms ticks of utime/stime), of one thread
    or of every thread of the process"""
    tids = [tid] if tid else os.listdir(f"/proc/{pid}/task")
    total = 0
    for t in tids:
        with open(f"/proc/{pid}/task/{t}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def worker_tid(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == "pcpd-conntrack":
                return tid
    return None


def rtr(a, *args):
    return subprocess.run(["ip", "netns", "exec", a.rtr, *args], capture_output=True, text=True)


def ct_get_mark(a, sport, dport):
    """mark of the entry 203.0.113.100:sport -> 203.0.113.1:dport, None when there is none"""
    r = rtr(a, "conntrack", "-G", "-p", "tcp", "-s", "203.0.113.100", "-d", "203.0.113.1",
            "--sport", str(sport), "--dport", str(dport))
    m = re.search(r"mark=(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def listen(addr, port):
    """a TCP listener on the client that accepts and keeps every connection open"""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(8)
    kept = []

    def accept():
        srv.settimeout(30)
        try:
            kept.append(srv.accept()[0])
        except OSError:
            pass
    threading.Thread(target=accept, daemon=True).start()
    return srv, kept


def accept_all(servers):
    """accepts every connection to the listening sockets and keeps it open"""
    import selectors
    sel = selectors.DefaultSelector()
    for srv in servers:
        srv.setblocking(False)
        sel.register(srv, selectors.EVENT_READ)
    kept = []

    def run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                try:
                    kept.append(key.fileobj.accept()[0])
                except OSError:
                    pass
    threading.Thread(target=run, daemon=True).start()
    return kept


def hold_many(a, pairs):
    """idle TCP connections from 203.0.113.100 (sport) to 203.0.113.1 (dport), one process"""
    code = ("import socket,sys,time\n"
            "ss=[]\n"
            "for d,s in %r:\n"
            "  ss.append(socket.create_connection(('203.0.113.1',d),timeout=5,source_address=('203.0.113.100',s)))\n"
            "print('up',flush=True)\n"
            "time.sleep(120)\n") % (pairs,)
    p = subprocess.Popen(["ip", "netns", "exec", a.wan, "python3", "-c", code], stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    return p


def hold(a, dport, sport):
    """an idle TCP connection from the remote host 203.0.113.100 through the router (pcpd.nft
    translates, marks and announces it like any inbound connection of a mapping)"""
    code = ("import socket,time; s=socket.create_connection(('203.0.113.1',%d),timeout=5,"
            "source_address=('203.0.113.100',%d)); print('up',flush=True); time.sleep(60)") % (dport, sport)
    p = subprocess.Popen(["ip", "netns", "exec", a.wan, "python3", "-c", code], stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    return p


def stat(a, key):
    r = rtr(a, a.pcpctl, "--socket", a.ctl, "stats", "--format", "prometheus")
    for line in r.stdout.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[1])
    return None


def phase_load(a):
    stop = threading.Event()
    counts = {"elections": 0, "creates": 0, "deletes": 0, "expiring": 0}

    # The elector's 32 mappings each carry 2 idle connections from the remote host, so every
    # election and un-election has connections to mark or un-mark.
    ec = Client("192.0.2.10")
    enonces = [os.urandom(12) for _ in range(32)]
    servers, pairs = [], []
    for k in range(32):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("192.0.2.10", 20000 + k))
        srv.listen(4)
        servers.append(srv)
        _, resp = ec.ask(map_req("192.0.2.10", enonces[k], 20000 + k, 600))
        pairs += [(ext_port(resp), 30000 + 2 * k), (ext_port(resp), 30001 + 2 * k)]
    kept = accept_all(servers)
    holder = hold_many(a, pairs)

    def elector():
        c = ec
        nonces = enonces
        on = [False] * 32
        i = 0
        while not stop.is_set():
            k = i % 32
            on[k] = not on[k]
            c.ask(map_req("192.0.2.10", nonces[k], 20000 + k, 600, elect=on[k]))
            counts["elections"] += 1
            i += 1
            time.sleep(0.1)

    def churner():
        c = Client("192.0.2.11")
        i = 0
        while not stop.is_set():
            n = os.urandom(12)
            port = 30000 + i % 20000
            short = i % 2 == 0
            c.ask(map_req("192.0.2.11", n, port, 2 if short else 600))
            counts["creates"] += 1
            if short:
                counts["expiring"] += 1
            else:
                c.ask(map_req("192.0.2.11", n, port, 0))
                counts["deletes"] += 1
            i += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=f) for f in (elector, churner)]
    c = Client("192.0.2.9")
    nonces = [os.urandom(12) for _ in range(64)]
    for k in range(64):
        c.ask(map_req("192.0.2.9", nonces[k], 10000 + k, 600))
    tid = worker_tid(a.pcpd)
    # Warm-up, not measured: pcpd's first conntrack round walks the table once (until then it
    # cannot know every mapped connection), and a first `pcpctl stats` asks for the elected count
    # (a walk). Both happen here, so the load measures the steady state.
    stat(a, "pcpd_conntrack_walks_total")
    for _ in range(100):
        if (stat(a, "pcpd_conntrack_rounds_total") or 0) >= 1 and (stat(a, "pcpd_conntrack_pending") or 0) == 0:
            break
        time.sleep(0.1)
    walks0 = stat(a, "pcpd_conntrack_walks_total")
    cpu0, w0 = cpu_ns(a.pcpd), cpu_ns(a.pcpd, tid) if tid else 0
    for t in threads:
        t.start()
    lat, lost = [], 0
    t_end = time.monotonic() + a.seconds
    i = 0
    interval = 1.0 / a.rate
    next_t = time.monotonic()
    while time.monotonic() < t_end:
        ms, resp = c.ask(map_req("192.0.2.9", nonces[i % 64], 10000 + i % 64, 600))
        if ms is None:
            lost += 1
        else:
            lat.append(ms)
        i += 1
        next_t += interval
        time.sleep(max(0.0, next_t - time.monotonic()))
    stop.set()
    for t in threads:
        t.join()
    holder.kill()
    holder.wait()
    counts["held_connections"] = len(kept)
    cpu = (cpu_ns(a.pcpd) - cpu0) / 1e9
    wcpu = (cpu_ns(a.pcpd, tid) - w0) / 1e9 if tid else None
    walks = stat(a, "pcpd_conntrack_walks_total")
    lookups = stat(a, "pcpd_conntrack_lookups_total")
    return {"phase": "load", "requests": len(lat), "lost": lost, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "max_ms": round(max(lat), 3) if lat else None, "pcpd_cpu_s": round(cpu, 3),
            "conntrack_thread_cpu_s": round(wcpu, 4) if wcpu is not None else None,
            "walks": (walks - walks0) if walks is not None and walks0 is not None else None,
            "lookups_total": lookups, "connections_written": {op: stat(a, 'pcpd_conntrack_connections_total{op="%s"}' % op)
                                                               for op in ("elect", "unelect", "delete")},
            "last_walk_s": stat(a, "pcpd_conntrack_last_walk_seconds"), **counts}


def phase_elect_delete(a):
    c = Client("192.0.2.12")
    elect_ms, delete_ms, procs = [], [], []
    for k in range(5):
        n = os.urandom(12)
        srv, _ = listen("192.0.2.12", 40000 + k)
        ms, resp = c.ask(map_req("192.0.2.12", n, 40000 + k, 600))
        ep = ext_port(resp)
        procs.append(hold(a, ep, 50000 + k))
        time.sleep(0.3)  # idle from here on
        t = time.monotonic()
        c.ask(map_req("192.0.2.12", n, 40000 + k, 600, elect=True))
        while time.monotonic() - t < 5 and ct_get_mark(a, 50000 + k, ep) != 11:
            time.sleep(0.005)
        elect_ms.append(round((time.monotonic() - t) * 1000, 1))
        time.sleep(0.3)
        t = time.monotonic()
        c.ask(map_req("192.0.2.12", n, 40000 + k, 0))
        while time.monotonic() - t < 5 and ct_get_mark(a, 50000 + k, ep) is not None:
            time.sleep(0.005)
        delete_ms.append(round((time.monotonic() - t) * 1000, 1))
        srv.close()
        time.sleep(0.3)
    for p in procs:
        p.kill()
        p.wait()
    return [{"phase": "elect", "ms": elect_ms, "max_ms": max(elect_ms)},
            {"phase": "delete", "ms": delete_ms, "max_ms": max(delete_ms)}]


def phase_touch(a):
    c = Client("192.0.2.9")
    before = stat(a, "pcpd_conntrack_touched_total") or 0
    conns0 = stat(a, 'pcpd_conntrack_connections_total{op="touch"}') or 0
    t = time.monotonic()
    rtr(a, a.pcpctl, "--socket", a.ctl, "ha", "primary")
    first_ms, _ = c.ask(map_req("192.0.2.9", os.urandom(12), 12000, 600))
    first_total = (time.monotonic() - t) * 1000
    lat = []
    done = None
    while time.monotonic() - t < 30:
        ms, _ = c.ask(map_req("192.0.2.9", os.urandom(12), 12001 + len(lat) % 1000, 600))
        if ms is not None:
            lat.append(ms)
        if (stat(a, "pcpd_conntrack_touched_total") or 0) > before:
            done = (time.monotonic() - t) * 1000
            break
        time.sleep(0.01)
    conns = (stat(a, 'pcpd_conntrack_connections_total{op="touch"}') or 0) - conns0
    return {"phase": "touch", "entries": a.touch_entries, "touched": conns,
            "first_answer_ms": round(first_total, 2), "first_rtt_ms": round(first_ms, 3) if first_ms else None,
            "all_touched_ms": round(done, 1) if done else None, "p99_ms_meanwhile": pct(lat, 99),
            "requests_meanwhile": len(lat)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtr", required=True)
    ap.add_argument("--wan", required=True)
    ap.add_argument("--mode", default="index")
    ap.add_argument("--pcpd", required=True, type=int)
    ap.add_argument("--pcpctl", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--level", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--phase", choices=["load", "elect", "touch"], required=True)
    ap.add_argument("--touch-entries", type=int, default=0)
    a = ap.parse_args()
    out = []
    if a.phase == "load":
        out.append(phase_load(a))
    elif a.phase == "elect":
        out.extend(phase_elect_delete(a))
    else:
        out.append(phase_touch(a))
    for o in out:
        o["level"] = a.level
        o["mode"] = a.mode
        print(json.dumps(o), flush=True)


if __name__ == "__main__":
    main()
