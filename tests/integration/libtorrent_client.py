#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Debian's libtorrent 2.0.8 (python3-libtorrent) as a port-mapping client, for it_real_clients.

A session listening on --listen with NAT-PMP/PCP on and UPnP, DHT, LSD off: libtorrent finds the
gateway from the routing table (enum_routes/get_gateway in src/enum_net.cpp, so the namespace
needs its default route), sends a 60-byte PCP MAP for TCP and UDP on the listen port
(natpmp::send_map_request in src/natpmp.cpp), and accepts only a reply of exactly 60 bytes from
gateway:5351 (natpmp::on_reply). Every port-mapping alert is printed as one JSON line:
  {"alert": "portmap", "transport": "TCP"|"UDP", "external_port": N, "message": "..."}
  {"alert": "portmap_error", "code": N, "message": "..."}
  {"alert": "portmap_log", "message": "..."}
Runs for --life seconds (bounded), then deletes its session, which sends its deletes."""
import argparse
import json
import signal
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="0.0.0.0:6881")
    ap.add_argument("--life", type=float, default=120)
    args = ap.parse_args()
    ses = lt.session({
        "listen_interfaces": args.listen,
        "enable_natpmp": True, "enable_upnp": False, "enable_dht": False, "enable_lsd": False,
        "alert_mask": lt.alert_category.port_mapping | lt.alert_category.port_mapping_log
        | lt.alert_category.error,
    })
    # SIGTERM ends the loop, so that the session is deleted and sends its deletes
    # (natpmp::close_impl: lifetime 0, same nonce), as when the application quits.
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + args.life
    while time.monotonic() < end and not stop:
        ses.wait_for_alert(500)
        for a in ses.pop_alerts():
            if isinstance(a, lt.portmap_alert):
                transport = "TCP" if a.map_protocol == lt.portmap_protocol.tcp else "UDP"
                out = {"alert": "portmap", "transport": transport, "external_port": a.external_port,
                       "message": a.message()}
            elif isinstance(a, lt.portmap_error_alert):
                out = {"alert": "portmap_error", "code": a.error.value(), "message": a.message()}
            elif isinstance(a, lt.portmap_log_alert):
                out = {"alert": "portmap_log", "message": a.message()}
            else:
                continue
            out["t"] = round(time.monotonic(), 3)
            print(json.dumps(out), flush=True)
    del ses
    print(json.dumps({"alert": "closed", "t": round(time.monotonic(), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
