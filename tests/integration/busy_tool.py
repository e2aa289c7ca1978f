#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""busy_tool.py: request timing for it_busy.sh (a router whose conntrack table is full).

  hold --to ADDR --port P --sport S --seconds N
      opens a TCP connection and keeps it idle (no packet after the handshake): the case pcpd.nft's
      per-packet election rule cannot see, so only pcpd's conntrack worker can mark it
  race --server S --client C --elect-port X --plain-port Y --count N
      N times: a MAP with CHECKPOINT_REQUIRED (an election) from one socket and, right behind it,
      a plain MAP from another; prints the answer time of each (JSON)
  after-delete --server S --client C --port P --plain-port Q --count N --window MS
      N times: creates a MAP on P and deletes it, then sends plain MAPs (ports Q, Q+1, ...) every
      20 ms for MS milliseconds; prints their answer times (JSON)
Only the lab's documentation addresses are used.
"""
import argparse
import ipaddress
import json
import os
import socket
import struct
import sys
import time

CHECKPOINT_REQUIRED = 192


def mapped16(addr):
    ip = ipaddress.ip_address(addr)
    return (b"\x00" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip.packed


def map_request(client, nonce, iport, lifetime, elect=False, protocol=6):
    req = struct.pack("!BBHI", 2, 1, 0, lifetime) + mapped16(client)
    req += nonce + struct.pack("!B3xHH", protocol, iport, 0) + mapped16("0.0.0.0")
    if elect:
        req += struct.pack("!BBH", CHECKPOINT_REQUIRED, 0, 0)
    return req


def parse(resp):
    """(result code, lifetime, external port, CHECKPOINT_REQUIRED echoed)"""
    if len(resp) < 60:
        return None
    result = resp[3]
    lifetime = struct.unpack("!I", resp[4:8])[0]
    ext_port = struct.unpack("!H", resp[42:44])[0]
    echoed = False
    off = 60
    while off + 4 <= len(resp):
        code, _, length = struct.unpack("!BBH", resp[off:off + 4])
        echoed |= code == CHECKPOINT_REQUIRED
        off += 4 + length + (-length % 4)
    return result, lifetime, ext_port, echoed


class Client:
    def __init__(self, server, client):
        self.server = server
        self.client = client
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((client, 0))

    def send(self, req):
        self.sock.sendto(req, (self.server, 5351))
        return time.monotonic()

    def wait(self, sent, timeout=3.0):
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(1100)
        except socket.timeout:
            return None, None
        return (time.monotonic() - sent) * 1000.0, parse(data)


def cmd_hold(a):
    s = socket.create_connection((a.to, a.port), timeout=5, source_address=("", a.sport))
    print("connected", flush=True)
    time.sleep(a.seconds)
    s.close()


def cmd_race(a):
    elect, plain = Client(a.server, a.client), Client(a.server, a.client)
    out = {"plain_ms": [], "elect_ms": [], "honoured": 0, "lost": 0}
    for i in range(a.count):
        t1 = elect.send(map_request(a.client, os.urandom(12), a.elect_port + i, 600, elect=True))
        t2 = plain.send(map_request(a.client, os.urandom(12), a.plain_port + i, 600))
        ms2, r2 = plain.wait(t2)
        ms1, r1 = elect.wait(t1)
        if r1 is None or r2 is None:
            out["lost"] += 1
            continue
        out["plain_ms"].append(round(ms2, 3))
        out["elect_ms"].append(round(ms1, 3))
        out["honoured"] += 1 if r1[3] else 0
        time.sleep(0.2)
    print(json.dumps(out))


def cmd_after_delete(a):
    c, p = Client(a.server, a.client), Client(a.server, a.client)
    out = {"plain_ms": [], "lost": 0, "deleted": 0}
    port = a.plain_port
    for i in range(a.count):
        nonce = os.urandom(12)
        _, r = c.wait(c.send(map_request(a.client, nonce, a.port + i, 600)))
        _, r = c.wait(c.send(map_request(a.client, nonce, a.port + i, 0)))
        out["deleted"] += 1 if r is not None and r[0] == 0 and r[1] == 0 else 0
        end = time.monotonic() + a.window / 1000.0
        while time.monotonic() < end:
            ms, r = p.wait(p.send(map_request(a.client, os.urandom(12), port, 600)))
            port += 1
            if r is None:
                out["lost"] += 1
            else:
                out["plain_ms"].append(round(ms, 3))
            time.sleep(0.02)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--to", required=True)
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--sport", type=int, required=True)
    h.add_argument("--seconds", type=float, default=120)
    r = sub.add_parser("race")
    d = sub.add_parser("after-delete")
    for x in (r, d):
        x.add_argument("--server", required=True)
        x.add_argument("--client", required=True)
        x.add_argument("--plain-port", type=int, required=True)
        x.add_argument("--count", type=int, default=5)
    r.add_argument("--elect-port", type=int, required=True)
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--window", type=float, default=600)
    a = ap.parse_args()
    {"hold": cmd_hold, "race": cmd_race, "after-delete": cmd_after_delete}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
