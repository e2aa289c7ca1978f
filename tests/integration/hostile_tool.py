#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hostile_tool: hostile PCP / NAT-PMP datagrams for tests/integration/it_hostile_input.sh.

Only the Python standard library; every wait is bounded by --timeout.

  send --server A --source A --case NAME --expect WHAT [--timeout S] [--iport N]
       [--nonce HEX] [--lifetime L] [--client-addr A] [--third-party A] [--ext-port N]
       [--ext-addr A] [--reserved copy|zero]
      Builds the datagram NAME (see CASES), sends it once from SOURCE to SERVER:5351 and checks
      the answer against WHAT:
        silence             no answer within --timeout (default 0.6 s)
        RESULT_NAME         a PCP response (RFC 6887 §7.2) with that result code; the header is
                            checked (version 2, R bit + the request's opcode, reserved byte 0,
                            length a multiple of 4 and <= 1100) and, for an error, the rest is
                            the request copied (truncated to 1100 bytes, zero-padded; R-HDR-5/6/7,
                            R-RC-4); --reserved copy|zero checks the 96 reserved bits (R-HDR-6)
        pmp:N               a NAT-PMP response (RFC 6886): version 0, opcode 128 + the request's
                            opcode, result N; a successful external-address answer is 12 bytes (--want-ext: its address);
                            pmp:5 (unsupported opcode) must be the whole request returned (RFC 6886 §3.5)
      Prints the request and answer summaries; exit 0 when the expectation held, 1 otherwise.
      With --show-lifetime the response's lifetime is printed on a line "lifetime=L".

Cases build on a MAP request (RFC 6887 §11.1): tcp, internal port --iport (default 7001),
nonce --nonce (default: random), lifetime --lifetime (default 600), client address = SOURCE
unless --client-addr is given.
"""
import argparse
import ipaddress
import os
import socket
import struct
import sys
import time

NAMES = {0: "SUCCESS", 1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED", 3: "MALFORMED_REQUEST",
         4: "UNSUPP_OPCODE", 5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE",
         8: "NO_RESOURCES", 9: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA",
         11: "CANNOT_PROVIDE_EXTERNAL", 12: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS"}
CODES = {v: k for k, v in NAMES.items()}
MAX = 1100  # RFC 6887 §7


def mapped16(addr):
    ip = ipaddress.ip_address(addr)
    return (b"\x00" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip.packed


def zero_addr(addr):
    return "0.0.0.0" if ipaddress.ip_address(addr).version == 4 else "::"


def opt(code, data, length=None):
    """RFC 6887 §7.3: code | reserved | length | data | padding to 4 bytes."""
    n = len(data) if length is None else length
    return struct.pack("!BBH", code, 0, n) + data + b"\x00" * (-len(data) % 4)


def header(a, opcode=1, version=2, lifetime=None):
    lt = a.lifetime if lifetime is None else lifetime
    return struct.pack("!BBHI", version, opcode, 0, lt) + mapped16(a.client_addr)


def map_body(a, protocol=6, iport=None, ext_port=None, ext_addr=None):
    return (a.nonce_b + struct.pack("!B3xHH", protocol, a.iport if iport is None else iport,
                                    a.ext_port if ext_port is None else ext_port) +
            mapped16(ext_addr or a.ext_addr or zero_addr(a.client_addr)))


def map_req(a, **kw):
    lifetime = kw.pop("lifetime", None)
    return header(a, 1, lifetime=lifetime) + map_body(a, **kw)


def third_party(a):
    return opt(1, mapped16(a.third_party))


# NAME -> (kind, builder). kind "pcp" or "pmp" selects how the answer is checked.
CASES = {
    # --- THIRD_PARTY and ownership (RFC 6887 §11.3, §13.1) ---
    "map": ("pcp", lambda a: map_req(a)),
    "map_tp": ("pcp", lambda a: map_req(a) + third_party(a)),
    # §13.1 / R-TP-6: delete everything the client may delete: lifetime 0, protocol 0, port 0,
    # THIRD_PARTY with the all-zeros address.
    "delete_all_tp": ("pcp", lambda a: map_req(a, lifetime=0, protocol=0, iport=0, ext_port=0,
                                               ext_addr=zero_addr(a.client_addr)) +
                      opt(1, mapped16(zero_addr(a.client_addr)))),
    "map_pf": ("pcp", lambda a: map_req(a) + opt(2, b"")),
    # --- options (RFC 6887 §7.3) ---
    # DESCRIPTION header claiming 40 bytes with only 8 present: runs past the datagram.
    "opt_overrun": ("pcp", lambda a: map_req(a) + struct.pack("!BBH", 128, 0, 40) + b"abcdefgh"),
    # THIRD_PARTY-sized header, but the length field says 0x0fff.
    "opt_overrun_long": ("pcp", lambda a: map_req(a) + struct.pack("!BBH", 3, 0, 0x0FFF) +
                         b"\x00" * 20),
    "opt_pf_len4": ("pcp", lambda a: map_req(a) + opt(2, b"\x00" * 4)),
    "opt_filter_len16": ("pcp", lambda a: map_req(a) + opt(3, b"\x00" * 16)),
    "opt_pf_twice": ("pcp", lambda a: map_req(a) + opt(2, b"") + opt(2, b"")),
    "opt_unknown_mandatory": ("pcp", lambda a: map_req(a) + opt(99, b"\x01\x02\x03\x04")),
    # 60-byte MAP + 4 zero bytes: an option of code 0 (mandatory, unknown), length 0.
    "trailing_zeros": ("pcp", lambda a: map_req(a) + b"\x00" * 4),
    # --- sizes (RFC 6887 §7, §8.2) ---
    "len1": ("pcp", lambda a: b"\x02"),
    "len2": ("pcp", lambda a: b"\x02\x01"),
    "len20": ("pcp", lambda a: map_req(a)[:20]),
    "len0": ("pcp", lambda a: b""),
    "map_cut40": ("pcp", lambda a: map_req(a)[:40]),
    "map_cut56": ("pcp", lambda a: map_req(a)[:56]),
    "map_pad61": ("pcp", lambda a: map_req(a) + b"\x00"),
    "map_pad62": ("pcp", lambda a: map_req(a) + b"\x00\x00"),
    # Well-formed MAP + DESCRIPTION (1016 bytes) + an optional unknown option: 1104 / 1400 bytes.
    "map_1104": ("pcp", lambda a: map_req(a) + opt(128, b"d" * 1016) + opt(200, b"\x00" * 20)),
    "map_1400": ("pcp", lambda a: map_req(a) + opt(128, b"d" * 1016) + opt(200, b"\x00" * 316)),
    "map_1101": ("pcp", lambda a: map_req(a) + opt(128, b"d" * 1016) + opt(200, b"\x00" * 16) +
                 b"\x00"),
    # Exactly 1100 bytes: ANNOUNCE + an optional unknown option (ignored), and a MAP delete of a
    # mapping that does not exist + DESCRIPTION + optional option (R-LIFE-4: SUCCESS, lifetime 0).
    "announce_1100": ("pcp", lambda a: header(a, 0, lifetime=0) + opt(200, b"\x00" * 1072)),
    "delete_1100": ("pcp", lambda a: map_req(a, lifetime=0) + opt(128, b"d" * 1016) +
                    opt(200, b"\x00" * 16)),
    # --- version, R bit, opcode (RFC 6887 §8.2, §9) ---
    "v1_map": ("pcp", lambda a: header(a, 1, version=1) + map_body(a)),
    "v3_map": ("pcp", lambda a: header(a, 1, version=3) + map_body(a)),
    "v255_short": ("pcp", lambda a: b"\xff\x01\x00\x00"),
    "rbit_map": ("pcp", lambda a: header(a, 0x81) + map_body(a)),
    "rbit_v1": ("pcp", lambda a: header(a, 0x81, version=1) + map_body(a)),
    "rbit_announce": ("pcp", lambda a: header(a, 0x80, lifetime=0)),
    "opcode5": ("pcp", lambda a: header(a, 5) + b"\xa5" * 36),
    "opcode_auth": ("pcp", lambda a: header(a, 3) + b"\x5a" * 12),
    "opcode127": ("pcp", lambda a: header(a, 127)),
    # --- NAT-PMP (RFC 6886) ---
    "pmp_external": ("pmp", lambda a: b"\x00\x00"),
    "pmp_len1": ("pmp", lambda a: b"\x00"),
    "pmp_map_len3": ("pmp", lambda a: b"\x00\x01\x00"),
    "pmp_map_len11": ("pmp", lambda a: b"\x00\x02\x00\x00" + struct.pack("!HH", a.iport, a.iport) +
                      b"\x00\x00\x0e"),
    "pmp_op3": ("pmp", lambda a: b"\x00\x03"),
    "pmp_op127_len12": ("pmp", lambda a: b"\x00\x7f" + b"\x00" * 10),
    "pmp_response_op128": ("pmp", lambda a: b"\x00\x80" + b"\x00" * 10),
    "pmp_response_op129": ("pmp", lambda a: b"\x00\x81" + b"\x00" * 14),
    "pmp_v1_short": ("pcp", lambda a: b"\x01\x00"),
    # Version 0 + a PCP ANNOUNCE layout: NAT-PMP opcode 0 (external address) with trailing bytes.
    "v0_announce": ("pmp", lambda a: header(a, 0, version=0, lifetime=0)),
}


def check_pcp(a, req, resp, want):
    probs = []
    if len(resp) < 24:
        return [f"response of {len(resp)} bytes"]
    ver, opb, rsv, rc = resp[0], resp[1], resp[2], resp[3]
    lifetime, epoch = struct.unpack("!II", resp[4:12])
    print(f"  answer: {len(resp)} bytes version={ver} op=0x{opb:02x} result={rc} "
          f"({NAMES.get(rc, '?')}) lifetime={lifetime} epoch={epoch}")
    if a.show_lifetime:
        print(f"lifetime={lifetime}")
        if len(resp) >= 44:
            print(f"ext_port={struct.unpack('!H', resp[42:44])[0]}")
    if rc != CODES[want]:
        probs.append(f"result {NAMES.get(rc, rc)}, want {want}")
    if ver != 2:
        probs.append(f"version {ver}, want 2 (R-HDR-8, R-VER-2)")
    req_op = req[1] & 0x7F if len(req) > 1 else 0
    if opb != 0x80 | req_op:
        probs.append(f"opcode byte 0x{opb:02x}, want 0x{0x80 | req_op:02x} (R-HDR-8)")
    if rsv != 0:
        probs.append("reserved byte 2 not 0 (R-HDR-8)")
    if len(resp) % 4 or len(resp) > MAX:
        probs.append(f"length {len(resp)} not a multiple of 4 or > {MAX}")
    if want != "SUCCESS":
        # R-HDR-5/6, R-HDR-7, R-RC-4: a copy of the request, at most 1100 bytes, zero-padded.
        body = req[:MAX]
        body = body + b"\x00" * (-len(body) % 4)
        body = body + b"\x00" * max(0, 24 - len(body))
        if len(resp) != len(body):
            probs.append(f"length {len(resp)}, want {len(body)} (the request copied, R-HDR-5)")
        elif resp[24:] != body[24:]:
            probs.append("bytes after the header are not the request's (R-HDR-7, R-RC-4)")
        if a.reserved == "copy" and resp[12:24] != body[12:24]:
            probs.append("reserved 96 bits are not the request's (unparsed request, R-HDR-6)")
        if a.reserved == "zero" and resp[12:24] != b"\x00" * 12:
            probs.append("reserved 96 bits not zero (parsed request, R-HDR-6)")
    return probs


def check_pmp(a, req, resp, want):
    print(f"  answer: {len(resp)} bytes {resp[:16].hex()}")
    if want == 5:
        # RFC 6886 §3.5: the entire request back, top bit of the opcode set, result 5 in bytes
        # 2-3 (a request shorter than 4 bytes extended to hold it).
        expect = bytearray(req.ljust(4, b"\0"))
        expect[1] |= 0x80
        expect[2:4] = struct.pack("!H", 5)
        return [] if resp == bytes(expect) else [f"answer {resp.hex()}, want the request back: {bytes(expect).hex()}"]
    if len(resp) < 8:
        return [f"NAT-PMP answer of {len(resp)} bytes"]
    probs = []
    ver, opb, rc = resp[0], resp[1], struct.unpack("!H", resp[2:4])[0]
    if ver != 0:
        probs.append(f"version {ver}, want 0")
    if opb != 0x80 | req[1]:
        probs.append(f"opcode {opb}, want {0x80 | req[1]} (RFC 6886 §3.5)")
    if rc != want:
        probs.append(f"result {rc}, want {want}")
    if rc == 0 and req[1] == 0:
        if len(resp) != 12:
            probs.append(f"external address answer of {len(resp)} bytes, want 12")
        else:
            ext = str(ipaddress.ip_address(resp[8:12]))
            print(f"  external address {ext}")
            if a.want_ext and ext != a.want_ext:
                probs.append(f"external address {ext}, want {a.want_ext}")
    return probs


def cmd_send(a):
    a.client_addr = a.client_addr or a.source
    a.nonce_b = bytes.fromhex(a.nonce) if a.nonce else os.urandom(12)
    kind, build = CASES[a.case]
    req = build(a)
    fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((a.source, 0))
    s.connect((a.server, 5351))
    print(f"  sent {a.case}: {len(req)} bytes from {a.source} to {a.server}:5351, "
          f"first bytes {req[:4].hex()}")
    s.send(req)
    end = time.time() + a.timeout
    resp = None
    while True:
        left = end - time.time()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            resp = s.recv(4096)
            break
        except (socket.timeout, ConnectionRefusedError):
            break
    if a.expect == "silence":
        if resp is None:
            print(f"  no answer within {a.timeout} s")
            return 0
        print(f"  unexpected answer: {len(resp)} bytes {resp[:32].hex()}")
        return 1
    if resp is None:
        print(f"  no answer within {a.timeout} s, want {a.expect}")
        return 1
    if a.expect.startswith("pmp:"):
        probs = check_pmp(a, req, resp, int(a.expect[4:]))
    else:
        probs = check_pcp(a, req, resp, a.expect)
    for p in probs:
        print("  problem: " + p)
    return 1 if probs else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("send")
    q.add_argument("--server", required=True)
    q.add_argument("--source", required=True)
    q.add_argument("--case", required=True, choices=sorted(CASES))
    q.add_argument("--expect", required=True)
    q.add_argument("--timeout", type=float, default=0.6)
    q.add_argument("--iport", type=int, default=7001)
    q.add_argument("--nonce")
    q.add_argument("--lifetime", type=int, default=600)
    q.add_argument("--client-addr")
    q.add_argument("--third-party")
    q.add_argument("--ext-port", type=int, default=0)
    q.add_argument("--ext-addr")
    q.add_argument("--want-ext")
    q.add_argument("--reserved", choices=["copy", "zero", "any"], default="any")
    q.add_argument("--show-lifetime", action="store_true")
    a = p.parse_args()
    if a.expect != "silence" and not a.expect.startswith("pmp:") and a.expect not in CODES:
        p.error(f"unknown --expect {a.expect}")
    return cmd_send(a)


if __name__ == "__main__":
    sys.exit(main())
