#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A PCP client that stays on its socket, as libpcp and Apple's mDNSResponder do: it creates MAP
mappings (RFC 6887 section 11), then records every unsolicited message for --life seconds, one
JSON line each on stdout:
  {"event": "response", "port": P, "result": R, "ext": A, "ext_port": E, "epoch": N, "src": S}
  {"event": "update", ...the same...}      an unsolicited MAP response (section 14.2)
  {"event": "announce", "epoch": N, "src": S}           PCP ANNOUNCE on 224.0.0.1:5350
  {"event": "natpmp_announce", "ext": A, "epoch": N, "src": S}  RFC 6886 section 3.2.1
The first update for each port in --refresh-on-update is answered with a refresh (same nonce),
as a client does that takes the new address: the server must then stop sending updates for it
(R-ANN-7). Only lab addresses are used; the socket is bound to --client.
With --dual-stack it behaves like libpcp (net/pcp_socket.c pcp_socket_create_impl): one socket,
AF_INET6 with IPV6_V6ONLY off, bound to [::]:5350, sends its requests and takes every answer and
announcement there; events then carry "dst", the address the packet was sent to (IPV6_PKTINFO),
so a unicast ANNOUNCE (to the client) and a multicast one (to 224.0.0.1) are told apart."""
import argparse
import json
import os
import select
import socket
import struct
import sys
import time

from pcp_packets import pcp_map, unmapped

TCP = 6


def map_request(client, nonce, port, lifetime):
    return pcp_map(client, nonce, TCP, port, 0, "0.0.0.0", lifetime)


def parse_map_response(data):
    if len(data) < 60 or data[0] != 2 or data[1] != 0x81:
        return None
    result = data[3]
    lifetime, epoch = struct.unpack("!II", data[4:12])
    nonce = data[24:36]
    proto, iport, eport = struct.unpack("!B3xHH", data[36:44])
    return {"result": result, "lifetime": lifetime, "epoch": epoch, "nonce": nonce.hex(),
            "port": iport, "ext_port": eport, "ext": unmapped(data[44:60]), "proto": proto,
            "length": len(data)}


def emit(obj):
    obj["t"] = round(time.monotonic(), 3)
    print(json.dumps(obj), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--ports", default="8080,8081")
    ap.add_argument("--refresh-on-update", default="8080")
    ap.add_argument("--lifetime", type=int, default=600)
    ap.add_argument("--life", type=float, default=120)
    ap.add_argument("--dual-stack", action="store_true")
    args = ap.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    refresh_on = {int(p) for p in args.refresh_on_update.split(",") if p}
    nonces = {p: os.urandom(12) for p in ports}

    server = args.server
    if args.dual_stack:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.bind(("::", 5350))
        server = "::ffff:" + args.server
        m = None
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((args.client, 0))
        m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        m.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        m.bind(("0.0.0.0", 5350))
        m.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton("224.0.0.1") + socket.inet_aton(args.client))

    pending = {}  # port -> time the request (re)sent
    for p in ports:
        s.sendto(map_request(args.client, nonces[p], p, args.lifetime), (server, 5351))
        pending[p] = time.monotonic()
    refreshed = set()
    end = time.monotonic() + args.life
    while time.monotonic() < end:
        # Requests are retransmitted once a second until answered (bounded by --life).
        for p, sent in list(pending.items()):
            if time.monotonic() - sent > 1.0:
                s.sendto(map_request(args.client, nonces[p], p, args.lifetime), (server, 5351))
                pending[p] = time.monotonic()
        ready, _, _ = select.select([x for x in (s, m) if x], [], [], 0.2)
        for sock in ready:
            dst = None
            if args.dual_stack:
                data, anc, _, src = sock.recvmsg(2048, socket.CMSG_SPACE(20))
                for level, kind, value in anc:
                    if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                        dst = unmapped(value[:16])
                src = (unmapped(socket.inet_pton(socket.AF_INET6, src[0])), src[1])
                if len(data) >= 24 and data[0] == 2 and data[1] == 0x80:
                    emit({"event": "announce", "epoch": struct.unpack("!I", data[8:12])[0], "src": src[0], "dst": dst})
                    continue
            else:
                data, src = sock.recvfrom(2048)
            if sock is m:
                if len(data) >= 12 and data[0] == 0 and data[1] == 128:
                    epoch = struct.unpack("!I", data[4:8])[0]
                    emit({"event": "natpmp_announce", "ext": socket.inet_ntoa(data[8:12]),
                          "epoch": epoch, "src": src[0]})
                elif len(data) >= 24 and data[0] == 2 and data[1] == 0x80:
                    emit({"event": "announce", "epoch": struct.unpack("!I", data[8:12])[0], "src": src[0]})
                continue
            r = parse_map_response(data)
            if r is None or r["port"] not in nonces or r["nonce"] != nonces[r["port"]].hex():
                continue
            r["src"] = src[0]
            if dst:
                r["dst"] = dst
            p = r["port"]
            if p in pending:
                del pending[p]
                r["event"] = "response"
                emit(r)
                continue
            r["event"] = "update"
            emit(r)
            if p in refresh_on and p not in refreshed:
                refreshed.add(p)
                s.sendto(map_request(args.client, nonces[p], p, args.lifetime), (server, 5351))
                pending[p] = time.monotonic()
    return 0


if __name__ == "__main__":
    sys.exit(main())
