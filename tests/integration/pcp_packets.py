# SPDX-License-Identifier: GPL-2.0-or-later
"""PCP (RFC 6887) packet pieces shared by the lab's Python clients (pcp_update_client.py,
client_models.py): addresses in the 128-bit form (IPv4 mapped, §5) and the MAP request (§11.1)."""
import ipaddress
import struct

OP_MAP = 1


def mapped(addr):
    a = ipaddress.ip_address(addr)
    return a.packed if a.version == 6 else b"\0" * 10 + b"\xff\xff" + a.packed


def unmapped(raw):
    a = ipaddress.IPv6Address(raw)
    return str(a.ipv4_mapped or a)


def pcp_map(client, nonce, proto, iport, eport, eaddr, lifetime):
    """A 60-byte MAP request without options."""
    return (struct.pack("!BBHI", 2, OP_MAP, 0, lifetime) + mapped(client) + nonce +
            struct.pack("!B3xHH", proto, iport, eport) + mapped(eaddr))
