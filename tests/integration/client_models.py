#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Client models for it_client_models.sh: the PCP / NAT-PMP request sequences and acceptance
rules of three clients that are not packaged for Debian, written from their public source (read,
not copied; each rule names the file and function it comes from):

  apple      Apple mDNSResponder (apple-oss-distributions/mDNSResponder, mDNSCore/uDNS.c)
  tailscale  Tailscale's portmapper (tailscale/tailscale, net/portmapper/portmapper.go, pcp.go)
  bitcoin    Bitcoin Core 28+ (bitcoin/bitcoin, src/common/pcp.cpp, src/mapport.cpp)

Commands arrive one per line on the FIFO --commands ("MODEL VERB"); events leave as JSON lines
on stdout. Every command ends with {"model": M, "event": "done", "cmd": VERB}. Timers are the
clients' own where a test can wait for them (Apple's 0-5 s re-create delay), shortened where it
cannot (renewals happen on command). Only --server and --client are ever addressed; the process
ends after --life seconds."""
import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import time

from pcp_packets import mapped, pcp_map, unmapped

TCP, UDP = 6, 17
OP_ANNOUNCE, OP_MAP = 0, 1


def pcp_announce(client):
    return struct.pack("!BBHI", 2, OP_ANNOUNCE, 0, 0) + mapped(client)


def parse_pcp(d):
    """Header fields of any PCP response, plus MAP fields when the packet is long enough."""
    if len(d) < 24:
        return None
    r = {"version": d[0], "op": d[1], "result": d[3], "lifetime": struct.unpack("!I", d[4:8])[0],
         "epoch": struct.unpack("!I", d[8:12])[0], "length": len(d)}
    if len(d) >= 60:
        r["nonce"] = d[24:36]
        r["proto"], r["iport"], r["eport"] = struct.unpack("!B3xHH", d[36:44])
        r["eaddr"] = unmapped(d[44:60])
    return r


class Out:
    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self, model, event, **kw):
        kw.update(model=model, event=event, t=round(time.monotonic() - self.t0, 3))
        for k, v in list(kw.items()):
            if isinstance(v, bytes):
                kw[k] = v.hex()
        print(json.dumps(kw), flush=True)


class Apple:
    """mDNSResponder's NAT traversal, as uDNS.c does it."""
    NAME = "apple"

    def __init__(self, a, out):
        self.a, self.out = a, out
        # macOS sends from its permanent socket on 5353 (mDNSMacOSX.c SetupSocket) and listens on
        # 224.0.0.1:5350 for unsolicited messages while it has mappings (CheckNATMappings).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((a.client, 5353))
        self.mcast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.mcast.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.mcast.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.mcast.bind(("224.0.0.1", 5350))
        self.mcast.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                              socket.inet_aton("224.0.0.1") + socket.inet_aton(a.client))
        # One nonce for every mapping, new at daemon start (mDNS.c mDNS_Init) and on every
        # RecreateNATMappings (uDNS.c).
        self.nonce = os.urandom(12)
        self.iport = 7000
        self.suggest_port, self.suggest_addr = self.iport, "0.0.0.0"
        self.last_up = 0          # LastNATupseconds: 0 = nothing seen yet
        self.last_local = 0.0     # LastNATReplyLocalTime
        self.recreate_at = None
        self.maps_sent = 0
        self.reboots = 0

    def socks(self):
        return [self.sock, self.mcast]

    def send_map(self):
        # CheckNATMappings: the NAT-PMP address request first (uDNS_RequestAddress), then one
        # PCP MAP per due mapping (uDNS_SendNATMsg): 60 bytes, lifetime 7200, no options.
        self.sock.sendto(b"\0\0", (self.a.server, 5351))
        self.sock.sendto(pcp_map(self.a.client, self.nonce, TCP, self.iport, self.suggest_port,
                                 self.suggest_addr, 7200), (self.a.server, 5351))
        self.maps_sent += 1
        self.out(self.NAME, "map_sent", nonce=self.nonce, suggest=self.suggest_port, total=self.maps_sent)

    def recreate(self, wait):
        # RecreateNATMappings: a new nonce, every mapping re-sent after `wait`; the last external
        # address and port stay as suggestions.
        self.nonce = os.urandom(12)
        self.recreate_at = time.monotonic() + wait

    def tick(self):
        if self.recreate_at is not None and time.monotonic() >= self.recreate_at:
            self.recreate_at = None
            self.send_map()

    def epoch_ok(self, epoch):
        # uDNS_ReceivePCPPacket: the RFC 6887 §8.5 test with unsigned 32-bit deltas, skipped for
        # the first packet; the epoch is then stored, 0 as 1.
        now = time.monotonic()
        ok = True
        if self.last_up != 0:
            client_delta = int(now - self.last_local)
            server_delta = (epoch - self.last_up) & 0xffffffff
            if (client_delta + 2 < server_delta - server_delta // 16 or
                    server_delta + 2 < client_delta - client_delta // 16):
                ok = False
        self.last_up = epoch if epoch else 1
        self.last_local = now
        return ok

    def receive(self, sock, d, src):
        if src[0] != self.a.server:
            return
        # mDNSCoreReceive hands a packet over only from the router's port 5351; the multicast
        # socket takes the ANNOUNCE.
        if sock is self.sock and src[1] != 5351:
            return
        if d[:1] == b"\0":
            return  # the NAT-PMP address answer: its own epoch test, not modelled
        r = parse_pcp(d)
        if r is None or r["op"] not in (0x80 | OP_MAP, 0x80 | OP_ANNOUNCE):
            return
        if not self.epoch_ok(r["epoch"]):
            self.reboots += 1
            # A MAP answer re-creates at once, an ANNOUNCE after 0-5 s (RecreateNATMappings).
            wait = 0 if r["op"] == 0x80 | OP_MAP else random.uniform(0, 5)
            self.out(self.NAME, "reboot_detected", epoch=r["epoch"], via=r["op"], wait=round(wait, 2),
                     total=self.reboots)
            self.recreate(wait)
            return
        if r["op"] == 0x80 | OP_ANNOUNCE:
            self.out(self.NAME, "announce", epoch=r["epoch"])
            return
        if r["result"] != 0:
            # Any error: NATErr_NetFail, retried after 15 minutes (NATMAP_MAX_RETRY_INTERVAL).
            self.out(self.NAME, "error", result=r["result"], epoch=r["epoch"])
            return
        if r.get("nonce") != self.nonce or r["eaddr"] in ("0.0.0.0", "::"):
            return
        self.suggest_port, self.suggest_addr = r["eport"], r["eaddr"]
        self.out(self.NAME, "mapped", ext=r["eaddr"], port=r["eport"], epoch=r["epoch"],
                 lifetime=r["lifetime"], src_port=src[1])

    def command(self, verb):
        if verb == "create":
            self.send_map()
        elif verb == "wake":
            # mDNSCoreMachineSleep on wake: RecreateNATMappings(m, 5 s) - a new nonce.
            self.recreate(5)
        elif verb == "renew":
            self.send_map()  # NATSetNextRenewalTime: same nonce, at half the remaining lease


class Tailscale:
    """Tailscale's portmapper (net/portmapper), before PR #21277: a new PCP nonce every call."""
    NAME = "tailscale"

    def __init__(self, a, out):
        self.a, self.out = a, out
        self.iport = 41641
        self.recent_pmp = self.recent_pcp = False
        self.pub_ip = None
        self.mapping = None  # {"proto": "pmp"|"pcp", "ext", "port", "epoch"}
        self.drop_pmp = False

    def socks(self):
        return []

    def exchange(self, packets, accept, timeout):
        """A new ephemeral socket per operation (Probe, createOrGetMapping); replies only from
        gw:5351 (the source IP is not checked in Probe, but the lab has one gateway)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.a.client, 0))
        for p in packets:
            s.sendto(p, (self.a.server, 5351))
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                ready, _, _ = select.select([s], [], [], max(0, end - time.monotonic()))
                if not ready:
                    break
                d, src = s.recvfrom(2048)
                if src[1] != 5351:
                    continue
                if accept(d):
                    return True
        finally:
            s.close()
        return False

    def probe(self):
        # Client.Probe: NAT-PMP [0,0] and a 24-byte PCP ANNOUNCE together. The client waits
        # 250 ms; the model waits 1 s so that a loaded test machine does not look like a loss.
        seen = {"pmp": False, "pcp": False}

        def accept(d):
            if d[:1] == b"\2":
                r = parse_pcp(d)
                if r and r["op"] == 0x80:
                    seen["pcp"] = True
                    self.recent_pcp = r["result"] == 0
                    self.check_epoch("pcp", r["epoch"])
            elif len(d) == 12 and d[0] == 0 and d[1] == 0x80 and not self.drop_pmp:
                if struct.unpack("!H", d[2:4])[0] == 0:
                    seen["pmp"] = True
                    self.recent_pmp = True
                    self.pub_ip = socket.inet_ntoa(d[8:12])
                    self.check_epoch("pmp", struct.unpack("!I", d[4:8])[0])
            return seen["pmp"] and seen["pcp"]

        self.exchange([b"\0\0", pcp_announce(self.a.client)], accept, 1.0)
        if self.drop_pmp:
            self.recent_pmp = False  # the NAT-PMP answer was lost: not seen recently
        self.out(self.NAME, "probed", pmp=self.recent_pmp, pcp=self.recent_pcp, pub_ip=self.pub_ip)

    def check_epoch(self, proto, epoch):
        # maybeInvalidatePMPMappingLocked / ...PCP...: an epoch below the mapping's, from the
        # mapping's own protocol, drops it without a release; 0 is ignored.
        m = self.mapping
        if m and m["proto"] == proto and epoch != 0 and epoch < m["epoch"]:
            self.out(self.NAME, "mapping_invalidated", epoch=epoch, had=m["epoch"])
            self.mapping = None

    def create(self):
        # createOrGetMapping: PCP only when NAT-PMP was not seen recently and PCP was.
        prev = self.mapping["port"] if self.mapping else 0
        prefer_pcp = not self.recent_pmp and self.recent_pcp
        got = {}
        if prefer_pcp:
            nonce = os.urandom(12)  # pcp.go buildPCPRequestMappingPacket: rand.Read each call

            def accept(d):
                r = parse_pcp(d)
                if r is None or r["version"] != 2 or r["length"] < 60:
                    return False
                got.update(r)  # opcode, nonce, protocol and port are not checked
                return True

            self.exchange([pcp_map(self.a.client, nonce, UDP, self.iport, prev, "0.0.0.0", 7200)], accept, 1.0)
            if not got:
                self.out(self.NAME, "no_answer", proto="pcp")
            elif got["result"] != 0:
                self.out(self.NAME, "error", proto="pcp", result=got["result"])
            else:
                self.mapping = {"proto": "pcp", "ext": got["eaddr"], "port": got["eport"], "epoch": got["epoch"]}
                self.out(self.NAME, "mapped", proto="pcp", ext=got["eaddr"], port=got["eport"], epoch=got["epoch"])
            return
        packets = [] if self.pub_ip else [b"\0\0"]
        packets.append(struct.pack("!BBHHHI", 0, 1, 0, self.iport, prev, 7200))

        def accept(d):
            if d[:1] != b"\0":
                return False
            if d[1] == 0x80 and len(d) == 12 and struct.unpack("!H", d[2:4])[0] == 0:
                self.pub_ip = socket.inet_ntoa(d[8:12])
            elif d[1] == 0x81 and len(d) == 16:
                got["result"] = struct.unpack("!H", d[2:4])[0]
                got["epoch"] = struct.unpack("!I", d[4:8])[0]
                got["port"] = struct.unpack("!H", d[10:12])[0]
            return bool(got) and self.pub_ip is not None

        self.exchange(packets, accept, 1.0)
        if not got:
            self.out(self.NAME, "no_answer", proto="pmp")
        elif got["result"] != 0:
            self.out(self.NAME, "error", proto="pmp", result=got["result"])
        else:
            # The advertised endpoint: the cached public address and the mapped port.
            self.mapping = {"proto": "pmp", "ext": self.pub_ip, "port": got["port"], "epoch": got["epoch"]}
            self.out(self.NAME, "mapped", proto="pmp", ext=self.pub_ip, port=got["port"], epoch=got["epoch"])

    def release(self):
        # invalidateMappingsLocked(true): PCP lifetime 0 with a fresh nonce (pcp.go), NAT-PMP
        # lifetime 0 suggesting the mapped port. Fire and forget; the model reads the answer.
        m = self.mapping
        if not m:
            return
        got = {}
        if m["proto"] == "pcp":
            pkt = pcp_map(self.a.client, os.urandom(12), UDP, self.iport, m["port"], m["ext"], 0)

            def accept(d):
                r = parse_pcp(d)
                if r:
                    got["result"] = r["result"]
                return bool(r)
        else:
            pkt = struct.pack("!BBHHHI", 0, 1, 0, self.iport, m["port"], 0)

            def accept(d):
                if d[:2] == b"\0\x81" and len(d) == 16:
                    got["result"] = struct.unpack("!H", d[2:4])[0]
                    return True
                return False
        self.exchange([pkt], accept, 1.0)
        self.mapping = None
        self.out(self.NAME, "released", result=got.get("result"))

    def command(self, verb):
        if verb == "probe":
            self.drop_pmp = False
            self.probe()
        elif verb == "probe_losing_pmp":
            self.drop_pmp = True
            self.probe()
            self.drop_pmp = False
        elif verb in ("create", "renew"):
            self.create()
        elif verb == "release":
            self.release()


class Bitcoin:
    """Bitcoin Core's PCP client (src/common/pcp.cpp PCPRequestPortMap, src/mapport.cpp)."""
    NAME = "bitcoin"

    def __init__(self, a, out):
        self.a, self.out = a, out
        self.port = 8333
        self.nonce = None

    def socks(self):
        return []

    def request(self):
        # ProcessPCP: one nonce per call, kept for its renewals; a restart makes a new one.
        if self.nonce is None:
            self.nonce = os.urandom(12)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.a.client, 0))
        s.connect((self.a.server, 5351))  # a connected socket: only gw:5351 answers arrive
        pkt = pcp_map(self.a.client, self.nonce, TCP, self.port, self.port, "0.0.0.0", 2400)
        try:
            for _ in range(3):  # PCPSendRecv: 3 tries, 1 s each, no backoff
                s.send(pkt)
                end = time.monotonic() + 1.0
                while time.monotonic() < end:
                    ready, _, _ = select.select([s], [], [], max(0, end - time.monotonic()))
                    if not ready:
                        break
                    try:
                        d = s.recv(2048)
                    except ConnectionRefusedError:
                        self.out(self.NAME, "no_answer", why="refused")
                        return
                    r = parse_pcp(d)
                    # check_packet: >= 60 bytes, version 2, exactly 0x81, nonce, TCP, port.
                    if (r is None or r["length"] < 60 or r["version"] != 2 or r["op"] != 0x81 or
                            r["nonce"] != self.nonce or r["proto"] != TCP or r["iport"] != self.port):
                        continue
                    if r["result"] != 0:
                        self.out(self.NAME, "error", result=r["result"])  # PROTOCOL_ERROR
                    else:
                        self.out(self.NAME, "mapped", ext=r["eaddr"], port=r["eport"], epoch=r["epoch"],
                                 lifetime=r["lifetime"])
                    return
            self.out(self.NAME, "no_answer", why="timeout")
        finally:
            s.close()

    def command(self, verb):
        if verb in ("create", "renew"):
            self.request()
        elif verb == "restart":
            self.nonce = None  # not persisted: the next request carries a new nonce
            self.request()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--commands", required=True)
    ap.add_argument("--life", type=float, default=300)
    a = ap.parse_args()
    out = Out()
    models = {m.NAME: m for m in (Apple(a, out), Tailscale(a, out), Bitcoin(a, out))}
    fd = os.open(a.commands, os.O_RDWR | os.O_NONBLOCK)  # RDWR: no EOF when the writer closes
    pending = b""
    out("all", "ready")
    end = time.monotonic() + a.life
    while time.monotonic() < end:
        socks = [s for m in models.values() for s in m.socks()]
        ready, _, _ = select.select(socks + [fd], [], [], 0.05)
        for r in ready:
            if r == fd:
                pending += os.read(fd, 4096)
                continue
            d, src = r.recvfrom(2048)
            for m in models.values():
                if r in m.socks():
                    m.receive(r, d, src)
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            words = line.decode().split()
            if len(words) == 2 and words[0] in models:
                models[words[0]].command(words[1])
                out(words[0], "done", cmd=words[1])
        for m in models.values():
            if hasattr(m, "tick"):
                m.tick()
    return 0


if __name__ == "__main__":
    sys.exit(main())
