#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/scale_report.py: markdown tables from one bench/scale.sh JSON-lines file.

Usage: bench/scale_report.py results/scale-<stamp>.jsonl [--title TEXT]
Every ratio is computed within that one file, i.e. one run on one (shared, noisy) machine.
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("--title", default="Scale run")
    args = ap.parse_args()
    runs = load(args.jsonl)
    L = [f"### {args.title}", "", f"Raw lines: `{args.jsonl}`.", ""]

    echo = [r for r in runs if r.get("op") == "echo"]
    ceiling = [r for r in echo if r["window"] > 1]
    if ceiling:
        c = ceiling[0]
        L.append(f"- bare UDP echo ceiling ({c['window']} in flight): **{fmt(c['req_per_s'])} req/s** "
                 f"(p50 {c['p50_ms']:.3f} ms)")

    levels = sorted({r["existing"] for r in runs if r.get("op") in ("create", "refresh", "delete")})
    by = {(r["existing"], r["op"]): r for r in runs if "existing" in r}
    if levels:
        base = levels[0]
        L += ["", "| existing | op | req/s | vs " + f"{base:,}" + " | p50 ms | p99 ms | results |",
              "|---:|---|---:|---:|---:|---:|---|"]
        for lvl in levels:
            for op in ("create", "refresh", "delete"):
                r = by.get((lvl, op))
                if not r:
                    continue
                b = by.get((base, op))
                ratio = f"{r['req_per_s'] / b['req_per_s']:.2f}" if b and b["req_per_s"] else "n/a"
                res = ", ".join(f"{k} {v}" for k, v in sorted(r.get("results", {}).items()))
                if r.get("timeouts"):
                    res += f", timeouts {r['timeouts']}"
                L.append(f"| {lvl:,} | {op} (window {r['window']}) | {fmt(r['req_per_s'])} | {ratio} | "
                         f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {res} |")

        cpu = [r for r in runs if r.get("op") == "cpu"]
        if cpu:
            L += ["", "pcpd CPU time per request (user + system, /proc/PID/stat; less load-dependent than req/s):", "",
                  "| existing | refresh µs | vs first | create+delete µs | vs first |", "|---:|---:|---:|---:|---:|"]
            cb = {(r["existing"], r["what"]): r["cpu_us_per_req"] for r in cpu}
            for lvl in levels:
                rf, cd = cb.get((lvl, "refresh")), cb.get((lvl, "create+delete"))
                rf0, cd0 = cb.get((base, "refresh")), cb.get((base, "create+delete"))
                if rf is not None and cd is not None:
                    L.append(f"| {lvl:,} | {rf:.1f} | {rf / rf0:.2f} | {cd:.1f} | {cd / cd0:.2f} |")
        L += ["", "One request in flight (refresh) vs the bare echo round trip measured right after it "
              "(placement: server and client pinned to the same CPU or to two; older runs: unpinned):", "",
              "| existing | placement | pcpd p50 µs | echo p50 µs | ratio | pcpd p99 µs | echo p99 µs |",
              "|---:|---|---:|---:|---:|---:|---:|"]
        w1 = [r for r in runs if r.get("op") == "refresh_w1"]
        for lvl in levels:
            for p in (r for r in w1 if r["existing"] == lvl):
                place = p.get("placement", "unpinned")
                e = next((r for r in echo if r["existing"] == lvl and r["window"] == 1
                          and r.get("placement", "unpinned") == place), None)
                if e:
                    L.append(f"| {lvl:,} | {place} | {p['p50_ms'] * 1000:.1f} | {e['p50_ms'] * 1000:.1f} | "
                             f"{p['p50_ms'] / e['p50_ms']:.2f}x | {p['p99_ms'] * 1000:.1f} | {e['p99_ms'] * 1000:.1f} |")

    mem = [r for r in runs if r.get("op") == "memory"]
    if mem:
        L += ["", "| existing | pcpd VmRSS | RSS bytes/mapping | SUnreclaim (host) | kernel bytes/mapping |",
              "|---:|---:|---:|---:|---:|"]
        for r in mem:
            L.append(f"| {r['existing']:,} | {fmt(r['rss_kib'] / 1024, 1)} MiB | "
                     f"{r.get('rss_bytes_per_mapping', '-')} | {fmt(r['sunreclaim_kib'] / 1024, 1)} MiB | "
                     f"{r.get('kernel_bytes_per_mapping', '-')} |")

    fl = [r for r in runs if r.get("op") == "flood"]
    if fl:
        base = fl[0]
        L += ["", "| existing | new flows sent/s | delivered/s | delivered vs first |", "|---:|---:|---:|---:|"]
        for r in fl:
            L.append(f"| {r['existing']:,} | {fmt(r['sent_per_s'])} | {fmt(r['delivered_per_s'])} | "
                     f"{r['delivered_per_s'] / base['delivered_per_s']:.2f} |" if base["delivered_per_s"]
                     else f"| {r['existing']:,} | {fmt(r['sent_per_s'])} | {fmt(r['delivered_per_s'])} | n/a |")

    fills = [r for r in runs if r.get("op") == "fill"]
    if fills:
        L += ["", "Fill: " + "; ".join(
            f"{r['from']:,} -> {r['to']:,}: {r['success']:,} created in {r['seconds']:.1f} s "
            f"({fmt(r['success'] / r['seconds']) if r['seconds'] else '-'}/s)" for r in fills)]
    for r in runs:
        if r.get("op") == "restart":
            s = r["seconds_to_first_answer"]
            L.append("")
            how = {"TERM": "after SIGTERM", "KILL": "after kill -9"}.get(r.get("signal", "TERM"), "")
            src = f" from {r['source']}" if r.get("source") else ""
            L.append(f"Restart {how} with {r['existing']:,} mappings in the kernel: " +
                     (f"first answer after **{s:.1f} s**, {r['restored']:,} mappings restored{src}" if s is not None
                      else f"**not serving after {r.get('gave_up_after_s', '?')} s** (gave up)"))
        if r.get("op") == "journal":
            L.append("")
            L.append(f"Before the kill -9 restart: {r['refreshes']:,} refreshes, journal {r['bytes'] / 1e6:.1f} MB")
        if r.get("op") == "udp_rcvbuf_errors":
            L.append("")
            L.append(f"UdpRcvbufErrors in the router namespace over the whole run: {r['count']}")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
