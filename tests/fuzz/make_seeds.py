#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpora tests/fuzz/corpus/<target>/ from tests/vectors/*.hex.

The .hex format is the one of tests/unit/wire_vectors.hpp: "== name" starts a vector, "#" starts a
comment, "@name" inserts an earlier vector of the same file, the rest is hex digits. Seeds are
named seed_<file>_<vector>; inputs that fuzzing added (scripts/fuzz.sh --merge) keep libFuzzer's
sha1 names. Usage: tests/fuzz/make_seeds.py [--check]  (--check: fail if a seed is missing or
differs, for CI).
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def parse(path):
    out, current, digits = {}, None, []

    def flush():
        if current is None:
            return
        text = "".join(digits)
        if len(text) % 2:
            raise SystemExit(f"{path}: vector {current} has an odd number of hex digits")
        out[current] += bytes.fromhex(text)
        digits.clear()

    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "==":
            flush()
            current = words[1]
            out[current] = b""
            continue
        if current is None:
            raise SystemExit(f"{path}:{line_no}: bytes before any ==")
        for w in words:
            if w.startswith("@"):
                flush()
                out[current] += out[w[1:]]
            else:
                digits.append(w)
    flush()
    return out


def server_record(datagram, natpmp=False, advance=0, ctl=0):
    """One record of fuzz_server's input: ctl, advance, length (big endian), datagram."""
    ctl |= 0x80 if natpmp else 0
    return bytes([ctl, advance, len(datagram) >> 8, len(datagram) & 0xFF]) + datagram


def seeds():
    v = {f.stem: parse(f) for f in sorted(VECTORS.glob("*.hex"))}
    pcp_req = {f"pcp_requests_{k}": b for k, b in v["pcp_requests"].items()}
    rejects = {f"pcp_request_rejects_{k}": b for k, b in v["pcp_request_rejects"].items()}
    responses = {f"pcp_responses_{k}": b for k, b in v["pcp_responses"].items()}
    natpmp = {f"natpmp_{k}": b for k, b in v["natpmp"].items()}

    out = {
        "decode_request": {**pcp_req, **rejects},
        "decode_response": {**responses, **pcp_req},
        "roundtrip": {**pcp_req, **responses},
        "natpmp": dict(natpmp),
    }
    server = {}
    # Policy byte 0x00 (defaults) or 0x07 (THIRD_PARTY, all-ports, CAPABILITY); one datagram.
    for name, b in {**pcp_req, **rejects}.items():
        server[name] = bytes([0x00]) + server_record(b)
    for name, b in natpmp.items():
        server[name] = bytes([0x00]) + server_record(b, natpmp=True)
    req = v["pcp_requests"]
    pmp = v["natpmp"]
    # Sequences: create, refresh after 60 s, expire after an hour; PEER beside the MAP; NAT-PMP
    # map then PCP; the datapath refusing the second request.
    server["seq_map_refresh_expire"] = bytes([0x00]) + server_record(req["map"]) + \
        server_record(req["map"], advance=60) + server_record(req["announce"], advance=130, ctl=0x60)
    server["seq_map_peer"] = bytes([0x07]) + server_record(req["map_all_options"]) + \
        server_record(req["peer_all_options"], advance=5) + server_record(req["peer"], advance=5)
    server["seq_natpmp_then_pcp"] = bytes([0x00]) + server_record(pmp["map_tcp_request"], natpmp=True) + \
        server_record(req["map"], advance=1) + server_record(pmp["map_udp_delete_request"], natpmp=True)
    server["seq_datapath_refuses"] = bytes([0x80]) + server_record(req["map"]) + \
        server_record(req["peer"], ctl=0x10) + server_record(req["map"], advance=200, ctl=0x40)
    out["server"] = server
    return out


def main():
    check = "--check" in sys.argv[1:]
    bad = 0
    for target, files in seeds().items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            p = d / f"seed_{name}"
            if check:
                if not p.exists() or p.read_bytes() != data:
                    print(f"seed out of date: {p}", file=sys.stderr)
                    bad += 1
            else:
                p.write_bytes(data)
    if bad:
        raise SystemExit(f"{bad} seeds out of date: run tests/fuzz/make_seeds.py")


if __name__ == "__main__":
    main()
