#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""robust_tool: PCP load, ownership checks and kernel/table consistency for the robustness tests
(it_crash.sh, it_datapath_fail.sh). Only the Python standard library; every loop is bounded.

  load    --server A --client A --base P --count N --seed S [--lifetime L] [--rate R]
          [--duration D] --state FILE
      Creates N MAP mappings (tcp, internal ports [P, P+N)), then refreshes them round-robin at
      R requests/s until D seconds have passed or SIGTERM. The nonce of port p is derived from
      (seed, client, p), so another process can prove ownership. Unanswered requests (pcpd down)
      are counted and the next mapping is tried. FILE (JSON, rewritten every second and at the
      end): ports -> last granted external port, result counts, epochs seen.
  verify  --server A --client A --base P --count N --seed S --state FILE [--lifetime L]
      For every mapping of FILE: a refresh with its own nonce must get SUCCESS and the external
      port FILE recorded (R-OWN-5); a MAP with another nonce must get NOT_AUTHORIZED (R-OWN-2).
      Prints the counts and the smallest epoch seen; exit 0 when everything held.
  consistency --list LIST.json --nft NFT.json [--expect N]
      LIST: `pcpctl list --json`; NFT: `nft -j list table inet pcpd`. Every mapping must have
      each of its elements (element.hpp layout), and every element of every map/set but
      wan_ifnames must belong to a mapping. Prints the counts and the first differences; exit 0
      when both directions hold (and the list has N mappings, when given).
"""
import argparse
import hashlib
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import time

NAMES = {0: "SUCCESS", 1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED", 3: "MALFORMED_REQUEST",
         4: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE",
         8: "NO_RESOURCES", 9: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA",
         11: "CANNOT_PROVIDE_EXTERNAL", 12: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS"}


def mapped16(addr):
    ip = ipaddress.ip_address(addr)
    return (b"\x00" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip.packed


def nonce_of(seed, client, port, other=False):
    h = hashlib.sha256(f"{seed}|{client}|{port}|{'x' if other else ''}".encode()).digest()
    return h[:12]


class Pcp:
    """One UDP socket to the server; request(), bounded by `timeout`, matched on nonce + port."""

    def __init__(self, server, client):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((client, 0))
        self.s.connect((server, 5351))
        self.client = client

    def request(self, nonce, iport, lifetime, timeout=0.25, tries=1):
        # RFC 6887 §7.1 header + §11.1 MAP body (tcp, suggested external 0 / all-zeros address).
        msg = (struct.pack("!BBHI", 2, 1, 0, lifetime) + mapped16(self.client) + nonce +
               struct.pack("!B3xHH", 6, iport, 0) + mapped16("0.0.0.0"))
        for _ in range(tries):
            try:
                self.s.send(msg)
            except OSError:
                time.sleep(timeout)
                continue
            end = time.time() + timeout
            while True:
                left = end - time.time()
                if left <= 0:
                    break
                self.s.settimeout(left)
                try:
                    r = self.s.recv(2048)
                except (socket.timeout, ConnectionRefusedError):
                    break
                if len(r) < 60 or r[1] != 0x81 or r[24:36] != nonce:
                    continue  # a late answer to an earlier request
                if struct.unpack("!H", r[40:42])[0] != iport:
                    continue
                lifetime_r, epoch = struct.unpack("!II", r[4:12])
                return {"result": r[3], "lifetime": lifetime_r, "epoch": epoch,
                        "ext_port": struct.unpack("!H", r[42:44])[0]}
        return None


def cmd_load(a):
    pcp = Pcp(a.server, a.client)
    st = {"client": a.client, "ports": {}, "results": {}, "timeouts": 0, "epochs": [],
          "created": 0, "rounds": 0}
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    t_end = time.time() + a.duration
    last_save = [0.0]

    def save(force=False):
        if force or time.time() - last_save[0] >= 1:
            tmp = a.state + ".tmp"
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, a.state)
            last_save[0] = time.time()

    def one(port):
        r = pcp.request(nonce_of(a.seed, a.client, port), port, a.lifetime)
        if r is None:
            st["timeouts"] += 1
            return False
        name = NAMES.get(r["result"], str(r["result"]))
        st["results"][name] = st["results"].get(name, 0) + 1
        if r["result"] == 0:
            prev = st["ports"].get(str(port))
            if prev is not None and prev != r["ext_port"]:
                st.setdefault("port_changes", []).append([port, prev, r["ext_port"]])
            st["ports"][str(port)] = r["ext_port"]
            if not st["epochs"] or st["epochs"][-1][1] != r["epoch"]:
                st["epochs"] = (st["epochs"] + [[round(time.time(), 3), r["epoch"]]])[-200:]
        return r["result"] == 0

    gap = 1.0 / a.rate
    # Creation: every port until it succeeded (bounded by the duration).
    for p in range(a.base, a.base + a.count):
        while not stop[0] and time.time() < t_end and not one(p):
            time.sleep(gap)
        time.sleep(gap)
    st["created"] = len(st["ports"])
    save(True)
    print(f"created {st['created']}", flush=True)
    i = 0
    while not stop[0] and time.time() < t_end:
        one(a.base + i % a.count)
        i += 1
        if i % a.count == 0:
            st["rounds"] += 1
        save()
        time.sleep(gap)
    save(True)
    print(f"done refreshes={i} results={st['results']} timeouts={st['timeouts']}", flush=True)
    return 0


def cmd_verify(a):
    st = json.load(open(a.state))
    pcp = Pcp(a.server, a.client)
    ok = bad = stolen_refused = stolen_ok = 0
    epochs = []
    problems = []
    for port_s, ext in sorted(st["ports"].items(), key=lambda kv: int(kv[0])):
        port = int(port_s)
        r = pcp.request(nonce_of(a.seed, a.client, port), port, a.lifetime, timeout=0.5, tries=4)
        if r and r["result"] == 0 and r["ext_port"] == ext:
            ok += 1
            epochs.append(r["epoch"])
        else:
            bad += 1
            problems.append(f"own nonce port {port}: {r} (want SUCCESS ext {ext})")
        r = pcp.request(nonce_of(a.seed, a.client, port, other=True), port, a.lifetime,
                        timeout=0.5, tries=4)
        if r and r["result"] == 2:
            stolen_refused += 1
        else:
            stolen_ok += 1
            problems.append(f"other nonce port {port}: {r} (want NOT_AUTHORIZED)")
        time.sleep(1.0 / a.rate)
    print(f"verify {a.client}: {len(st['ports'])} mappings: own nonce SUCCESS+same port {ok}, "
          f"failed {bad}; other nonce NOT_AUTHORIZED {stolen_refused}, otherwise {stolen_ok}; "
          f"epoch min {min(epochs) if epochs else '-'} max {max(epochs) if epochs else '-'}")
    for p in problems[:10]:
        print("  " + p)
    return 0 if bad == 0 and stolen_ok == 0 and ok > 0 else 1


# --- consistency ---------------------------------------------------------------------------

PROTO = {"tcp": 6, "udp": 17, "dccp": 33, "sctp": 132, "udplite": 136}


def norm(v):
    """An nft -j value as a comparable string (protocol names as numbers)."""
    if isinstance(v, dict):
        if "concat" in v:
            return " . ".join(norm(x) for x in v["concat"])
        if "range" in v:
            return "-".join(norm(x) for x in v["range"])
        if "prefix" in v:
            return f"{norm(v['prefix']['addr'])}/{v['prefix']['len']}"
        if "elem" in v:
            return norm(v["elem"]["val"])
        return json.dumps(v, sort_keys=True)
    if isinstance(v, str) and v in PROTO:
        return str(PROTO[v])
    if isinstance(v, str):
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            return v
    return str(v)


def split_ep(text):
    host, port = text.rsplit(":", 1)
    return str(ipaddress.ip_address(host.strip("[]"))), port


def expected_elements(m):
    """(set, key[, data]) strings the mapping must have; filters and elections by key only."""
    proto = str(m["protocol_number"])
    ia, ip_ = split_ep(m["internal"])
    ea, ep = split_ep(m["external"])
    v4 = ipaddress.ip_address(ia).version == 4
    out, prefix_keys = [], []
    if m["kind"] == "map" and ip_ == "0":
        # All ports (internal port 0): no port in the keys, never filtered nor elected.
        if v4:
            out.append(("map4_dnat_all", f"{ea} . {proto}", ia))
            out.append(("map4_snat_all", f"{ia} . {proto}", ea))
        else:
            out.append(("pin6_all", f"{ia} . {proto}", None))
        return out, prefix_keys
    if m["kind"] == "map":
        if v4:
            out.append(("map4_dnat", f"{ea} . {proto} . {ep}", f"{ia} . {ip_}"))
            out.append(("map4_snat", f"{ia} . {proto} . {ip_}", f"{ea} . {ep}"))
            endpoint = f"{ea} . {proto} . {ep}"
        else:
            out.append(("pin6", f"{ia} . {proto} . {ip_}", None))
            endpoint = f"{ia} . {proto} . {ip_}"
        fam = "4" if v4 else "6"
        if m.get("filters"):
            out.append((f"filt{fam}_on", endpoint, None))
            prefix_keys.append((f"filt{fam}_allow", endpoint))
        if m.get("checkpoint"):
            if v4:
                out.append(("elect4_dst", endpoint, None))
                out.append(("elect4_src", f"{ia} . {proto} . {ip_}", None))
            else:
                out.append(("elect6_dst", endpoint, None))
                out.append(("elect6_src", endpoint, None))
    else:
        ra, rp = split_ep(m["remote"])
        five = f"{ia} . {proto} . {ip_} . {ra} . {rp}"
        if v4:
            out.append(("peer4_snat", five, f"{ea} . {ep}"))
        else:
            out.append(("peer6", five, None))
        if m.get("checkpoint"):
            out.append(("elect4_peer" if v4 else "elect6_peer", five, None))
    return out, prefix_keys


def cmd_consistency(a):
    mappings = json.load(open(a.list))
    elems = {}  # (set, key) -> data
    for o in json.load(open(a.nft))["nftables"]:
        s = o.get("set") or o.get("map")
        if not s or s["name"] == "wan_ifnames":
            continue
        for e in s.get("elem", []):
            if isinstance(e, list):  # map element: [key, data]
                k, d = e
            else:
                k, d = e, None
            elems[(s["name"], norm(k))] = None if d is None else norm(d)
    used = set()
    missing, wrong = [], []
    for m in mappings:
        want, prefix_keys = expected_elements(m)
        for set_name, key, data in want:
            got = elems.get((set_name, key), "<absent>")
            if got == "<absent>":
                missing.append(f"{set_name}: {key} (mapping {m['internal']} -> {m['external']})")
                continue
            used.add((set_name, key))
            if data is not None and got != data:
                wrong.append(f"{set_name}: {key} : {got}, want {data}")
        for set_name, endpoint in prefix_keys:
            found = [k for k in elems if k[0] == set_name and k[1].startswith(endpoint + " . ")]
            if not found:
                missing.append(f"{set_name}: {endpoint} . * (filters of {m['internal']})")
            used.update(found)
    orphans = sorted(f"{s}: {k}" for (s, k) in elems if (s, k) not in used)
    print(f"consistency: {len(mappings)} mappings, {len(elems)} elements; missing {len(missing)}, "
          f"wrong data {len(wrong)}, elements without a mapping {len(orphans)}")
    for line in (missing[:5] + wrong[:5] + orphans[:5]):
        print("  " + line)
    ok = not missing and not wrong and not orphans
    if a.expect is not None and len(mappings) != a.expect:
        print(f"  {len(mappings)} mappings listed, want {a.expect}")
        ok = False
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("load", "verify"):
        q = sub.add_parser(name)
        q.add_argument("--server", required=True)
        q.add_argument("--client", required=True)
        q.add_argument("--base", type=int, required=True)
        q.add_argument("--count", type=int, required=True)
        q.add_argument("--seed", required=True)
        q.add_argument("--lifetime", type=int, default=600)
        q.add_argument("--rate", type=float, default=40)
        q.add_argument("--duration", type=float, default=120)
        q.add_argument("--state", required=True)
    c = sub.add_parser("consistency")
    c.add_argument("--list", required=True)
    c.add_argument("--nft", required=True)
    c.add_argument("--expect", type=int)
    a = p.parse_args()
    return {"load": cmd_load, "verify": cmd_verify, "consistency": cmd_consistency}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
