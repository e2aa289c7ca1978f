#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ha_cycles_report: turns ha_cycles.sh's report (HA_CYCLES_REPORT) into a JSON line, and JSON
lines into the table bench/RESULTS.md shows.
  line --run N --fill F --rc RC REPORT   one JSON object: {run, fill, rc, cycles: {...}}
  table FILE.jsonl                       median and worst per cycle and fill level"""
import argparse, json, re, statistics, sys

def parse(path):
    cycles = {}
    try:
        text = open(path).read()
    except OSError:
        return cycles
    for line in text.splitlines():
        m = re.match(r"cycle (\w+) (failover|switchover|failback|back): VIPs on \w+ after ([\d.]+) s"
                     r"(?:, first PCP answer after ([\d.]+) s)?", line)
        if m:
            c = cycles.setdefault(m.group(1) + " " + m.group(2), {})
            c["vip_s"] = float(m.group(3))
            c["event"] = m.group(2)
            if m.group(4):
                c["answer_s"] = float(m.group(4))
            continue
        m = re.match(r"cycle (\w+)( outage)? gaps:(.*)", line)
        if m:
            gaps = [float(g) for g in re.findall(r"=([\d.]+)s", m.group(3))]
            key = m.group(1) + (" outage gaps" if m.group(2) else " gaps")
            cycles.setdefault(key, {})["max_gap_s"] = max(gaps) if gaps else None
    return cycles

def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    x = sp.add_parser("line")
    x.add_argument("--run", type=int); x.add_argument("--fill", type=int); x.add_argument("--rc", type=int)
    x.add_argument("report")
    x = sp.add_parser("table")
    x.add_argument("jsonl")
    a = p.parse_args()
    if a.cmd == "line":
        print(json.dumps({"run": a.run, "fill": a.fill, "rc": a.rc, "cycles": parse(a.report)}))
        return 0
    rows = [json.loads(l) for l in open(a.jsonl) if l.strip()]
    for fill in sorted({r["fill"] for r in rows}):
        rs = [r for r in rows if r["fill"] == fill]
        ok = sum(1 for r in rs if r["rc"] == 0)
        print(f"\nfill {fill}: {ok} of {len(rs)} runs passed")
        print(f"{'cycle':<20} {'VIPs moved s (med/max)':>24} {'first answer s':>16} {'longest gap s':>15}")
        order = ["failover", "switchover", "outage", "failback", "back", "gaps"]
        rank = lambda k: (k.split()[0], next((i for i, w in enumerate(order) if w in k), 9))
        keys = sorted({k for r in rs for k in r["cycles"]}, key=rank)
        for k in keys:
            cs = [r["cycles"][k] for r in rs if k in r["cycles"]]
            def col(field):
                v = [c[field] for c in cs if c.get(field) is not None]
                return f"{statistics.median(v):.2f}/{max(v):.2f}" if v else "-"
            print(f"{k:<20} {col('vip_s'):>24} {col('answer_s'):>16} {col('max_gap_s'):>15}")
    return 0

sys.exit(main())
