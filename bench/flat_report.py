#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/flat_report.py FILE: the summary of a bench/flat.sh run (markdown on stdout).

For every round, the large/small ratio of req/s (refresh, create, delete) and of pcpd's CPU time
per request (refresh; create+delete share one figure), then the median and range over the rounds.
With the labs of `flat.sh --pcpd-b`, the same for small_b/large_b, and the second binary's CPU per
request over the first's at each level (an A/B of one change, measured side by side).
The target: at most 10 % slower at the large level, i.e. a rate ratio >= 0.90 and a CPU
ratio <= 1.10 (1 / 0.9 = 1.11 would be the exact mirror; 1.10 is the stricter reading).
"""
import json
import statistics
import sys


def one(meas, rnd, lab, op):
    for r in meas:
        if r["round"] == rnd and r["lab"] == lab and r["op"] == op:
            return r
    return None


def ratios(meas, rounds, sizes, small, large, bad):
    """The per-round table and the summary of one level pair (labs `small` and `large`)."""
    series = {k: [] for k in ("refresh", "create", "delete", "cpu refresh", "cpu create+delete")}
    print(f"{large} ({sizes.get(large, '?'):,} mappings) vs {small} ({sizes.get(small, '?'):,}),"
          f" {len(rounds)} rounds")
    print()
    print("| round | refresh req/s s / l | create | delete | CPU µs/req refresh s / l |"
          " create+delete | rate ratios r / c / d | CPU ratios r / c+d |")
    print("|---:|---|---|---|---|---|---|---|")

    def pair(rnd, op, field, fmt, key, out):
        """The 'small / large' cell of one field, its ratio appended to series[key] and out."""
        s, l = one(meas, rnd, small, op), one(meas, rnd, large, op)
        if not s or not l or not s.get(field) or l.get(field) is None:
            return "-"
        ratio = l[field] / s[field]
        series[key].append(ratio)
        out.append(f"{ratio:.2f}")
        return f"{s[field]:{fmt}} / {l[field]:{fmt}}"

    for rnd in rounds:
        cells, rates, cpus = [], [], []
        for op in ("refresh", "create", "delete"):
            cells.append(pair(rnd, op, "req_per_s", ",.0f", op, rates))
            for r in (one(meas, rnd, small, op), one(meas, rnd, large, op)):
                for code, n in (r or {}).get("results", {}).items():
                    if code != "SUCCESS":
                        bad[(r["lab"], op, code)] = bad.get((r["lab"], op, code), 0) + n
        for op, key in (("refresh", "cpu refresh"), ("create", "cpu create+delete")):
            cells.append(pair(rnd, op, "cpu_us_per_req", ".2f", key, cpus))
        print(f"| {rnd} | " + " | ".join(cells) + f" | {' / '.join(rates)} | {' / '.join(cpus)} |")
    print()
    print(f"| ratio {large}/{small} | median | min | max | target | met (median)? |")
    print("|---|---:|---:|---:|---|---|")
    for key, vals in series.items():
        if not vals:
            continue
        cpu = key.startswith("cpu")
        med = statistics.median(vals)
        target = "<= 1.10" if cpu else ">= 0.90"
        met = med <= 1.10 if cpu else med >= 0.90
        name = f"CPU per request, {key[4:]}" if cpu else f"req/s, {key}"
        print(f"| {name} | {med:.3f} | {min(vals):.3f} | {max(vals):.3f} | {target} |"
              f" {'yes' if met else 'no'} |")
    print()


def ab(meas, rounds):
    """--pcpd-b runs: the second binary's CPU per request over the first's, per level and round."""
    print("| CPU per request, b / a | median | min | max |")
    print("|---|---:|---:|---:|")
    for lab in ("small", "large"):
        for op, name in (("refresh", "refresh"), ("create", "create+delete")):
            vals = []
            for rnd in rounds:
                a, b = one(meas, rnd, lab, op), one(meas, rnd, lab + "_b", op)
                if a and b and a.get("cpu_us_per_req") and b.get("cpu_us_per_req") is not None:
                    vals.append(b["cpu_us_per_req"] / a["cpu_us_per_req"])
            if vals:
                print(f"| {lab}, {name} | {statistics.median(vals):.3f} | {min(vals):.3f} |"
                      f" {max(vals):.3f} |")
            else:
                # A short run can measure 0 CPU ticks for `a` (10 ms granularity): no ratio, but
                # the row stays, so that a reader (and the smoke test) sees it was measured.
                print(f"| {lab}, {name} | n/a (0 CPU ticks measured) | | |")
    print()


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    meas = [r for r in rows if "round" in r]
    if not meas:
        print("flat_report.py: no measurements in", path)
        return 1
    rounds = sorted({r["round"] for r in meas})
    sizes = {r["lab"]: r["existing"] for r in rows if r.get("op") == "fill"}
    bad = {}
    ratios(meas, rounds, sizes, "small", "large", bad)
    if "small_b" in sizes:
        ratios(meas, rounds, sizes, "small_b", "large_b", bad)
        ab(meas, rounds)
    snaps = [r for r in rows if r.get("op") == "snapshot"]
    if snaps:
        for lab in [x for x in ("small", "large", "small_b", "large_b") if x in sizes]:
            during = [r for r in snaps if r["lab"] == lab and not r["at_stop"]]
            stop = [r for r in snaps if r["lab"] == lab and r["at_stop"]]
            text = f"{lab}: {len(during)} snapshot(s) during the rounds"
            if during:
                text += " (" + ", ".join(f"{r['reason']} {r['bytes'] / 1e6:.1f} MB in {r['ms']} ms"
                                         for r in during) + ")"
            if stop:
                text += f"; at the stop {stop[-1]['bytes'] / 1e6:.1f} MB in {stop[-1]['ms']} ms"
            print(text)
    if bad:
        print()
        print("Answers other than SUCCESS: " +
              ", ".join(f"{lab} {op} {code} {n}" for (lab, op, code), n in sorted(bad.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
