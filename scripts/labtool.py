#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""labtool: small network helpers for the pcpd namespace lab (scripts/lab.sh).

  listen  --port P [--life S]                    TCP listener (IPv4+IPv6); one line per accepted
                                                 connection on stdout: "peer ADDR PORT"; each peer
                                                 gets a banner "pcpd-lab peer=ADDR:PORT"
  connect --to ADDR --port P [--source A] [--sport N] [--timeout S]
                                                 TCP connect, print the banner; exit 0 connected,
                                                 1 refused/timed out
  pcp     --server ADDR [--client-addr A] [--source A] [--proto N] [--iport N] [--lifetime S]
          [--timeout S]                          send one raw PCP MAP request (RFC 6887 §11.1),
                                                 print "result=N name=NAME lifetime=L epoch=E" or
                                                 "no answer"; exit 0 answered, 3 no answer

  nft-elements                                   stdin: `nft -j list table ...`; prints one
                                                 sorted line per set/map element, "set: key [:
                                                 value] [comment=...]", timeouts left out

Every operation is bounded in time. Only the Python standard library is used.
"""
import argparse
import ipaddress
import json
import os
import socket
import struct
import sys
import time

RESULT_NAMES = {
    0: "SUCCESS", 1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED", 3: "MALFORMED_REQUEST",
    4: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE",
    8: "NO_RESOURCES", 9: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA",
    11: "CANNOT_PROVIDE_EXTERNAL", 12: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS",
}


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def mapped16(addr):
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def cmd_listen(a):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", a.port))
    s.listen(64)
    s.settimeout(0.5)
    print(f"listening {a.port}", flush=True)
    deadline = time.time() + a.life
    while time.time() < deadline:
        try:
            c, peer = s.accept()
        except socket.timeout:
            continue
        addr = peer[0]
        if addr.startswith("::ffff:"):
            addr = addr[7:]
        print(f"peer {addr} {peer[1]}", flush=True)
        try:
            c.settimeout(1.0)
            c.sendall(f"pcpd-lab peer={addr}:{peer[1]}\n".encode())
        except OSError:
            pass
        c.close()
    return 0


def cmd_connect(a):
    fam = family_of(a.to)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.source or a.sport:
        s.bind((a.source or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), a.sport))
    s.settimeout(a.timeout)
    try:
        s.connect((a.to, a.port))
        data = b""
        while not data.endswith(b"\n") and len(data) < 256:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        print(f"connect {a.to} port {a.port}: {e.__class__.__name__}: {e}")
        return 1
    finally:
        s.close()
    line = data.decode(errors="replace").strip()
    if not line.startswith("pcpd-lab"):
        print(f"connect {a.to} port {a.port}: connected but no banner ({line!r})")
        return 1
    print(f"connected {a.to} port {a.port}: {line}")
    return 0


def cmd_pcp(a):
    fam = family_of(a.server)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if a.source:
        s.bind((a.source, 0))
    s.settimeout(0.5)
    s.connect((a.server, 5351))
    client = a.client_addr or s.getsockname()[0]
    nonce = os.urandom(12)
    # RFC 6887 §7.1 header + §11.1 MAP opcode data; 60 bytes in all.
    hdr = struct.pack("!BBHI", 2, 1, 0, a.lifetime) + mapped16(client)
    zero_ext = mapped16("::" if ":" in client else "0.0.0.0")
    body = nonce + struct.pack("!B3xHH", a.proto, a.iport, 0) + zero_ext
    msg = hdr + body
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        try:
            s.send(msg)
        except OSError as e:
            print(f"send: {e}")
        try:
            resp = s.recv(2048)
        except (socket.timeout, ConnectionRefusedError):
            continue
        if len(resp) < 24 or not resp[1] & 0x80:
            print(f"short or non-response answer ({len(resp)} bytes)")
            continue
        rc = resp[3]
        lifetime, epoch = struct.unpack("!II", resp[4:12])
        print(f"result={rc} name={RESULT_NAMES.get(rc, '?')} lifetime={lifetime} epoch={epoch}")
        return 0
    print("no answer")
    return 3


def _flat(x):
    if isinstance(x, dict):
        if "elem" in x:
            e = x["elem"]
            c = e.get("comment")
            return _flat(e.get("val")) + (f" comment={c!r}" if c else "")
        if "concat" in x:
            return " . ".join(_flat(v) for v in x["concat"])
        if "range" in x:
            return "-".join(_flat(v) for v in x["range"])
        if "prefix" in x:
            p = x["prefix"]
            return f"{_flat(p['addr'])}/{p['len']}"
        return json.dumps(x, sort_keys=True)
    if isinstance(x, list):
        return " : ".join(_flat(v) for v in x)
    return str(x)


def cmd_nft_elements(_a):
    out = []
    for o in json.load(sys.stdin)["nftables"]:
        s = o.get("set") or o.get("map")
        if s:
            for e in s.get("elem", []):
                out.append(f"{s['name']}: {_flat(e)}")
    print("\n".join(sorted(out)))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("listen")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--life", type=float, default=120)
    c = sub.add_parser("connect")
    c.add_argument("--to", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--source")
    c.add_argument("--sport", type=int, default=0)
    c.add_argument("--timeout", type=float, default=2)
    q = sub.add_parser("pcp")
    q.add_argument("--server", required=True)
    q.add_argument("--client-addr")
    q.add_argument("--source")
    q.add_argument("--proto", type=int, default=6)
    q.add_argument("--iport", type=int, default=9)
    q.add_argument("--lifetime", type=int, default=60)
    q.add_argument("--timeout", type=float, default=2)
    sub.add_parser("nft-elements")
    a = p.parse_args()
    return {"listen": cmd_listen, "connect": cmd_connect, "pcp": cmd_pcp,
            "nft-elements": cmd_nft_elements}[a.cmd.replace("_", "-")](a)


if __name__ == "__main__":
    sys.exit(main())
