#!/usr/bin/env python3
"""Real against twin, side by side, from a calibration CSV (issue #7).

  table.py CSV TITLE          prints the table for one CSV
  table.py --readme README    rewrites the fidelity table in README between its markers from
                              every results/calibration/*.csv (and each .txt's first line)

A CSV has the columns system,experiment,trial,quantity,value (system: real or twin), or the
Redis failover layout system,node_timeout_ms,trial,failover_ms. For each (experiment,
quantity): median, p10 and p90 of the trials for real and twin, and the ratio of the medians;
"ok" when the twin's median is within 10 % of the real one or inside the real p10-p90 band.
"""
import csv
import glob
import math
import os
import sys

BEGIN = "<!-- fidelity:begin (calibration/table.py --readme writes this; do not edit) -->"
END = "<!-- fidelity:end -->"


def quantile(xs, p):
    xs = sorted(xs)
    i = (len(xs) - 1) * p
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def rows_of(path):
    rows = list(csv.DictReader(open(path)))
    out = []
    for r in rows:
        if "failover_ms" in r:
            out.append((r["system"], f"failover node_timeout={r['node_timeout_ms']}ms",
                        "failover_ms", float(r["failover_ms"])))
        else:
            out.append((r["system"], r["experiment"], r["quantity"], float(r["value"])))
    return out


def summarise(rows):
    keys = []
    for _, e, q, _ in rows:
        if (e, q) not in keys:
            keys.append((e, q))
    lines = []
    for e, q in keys:
        stats = {}
        for system in ("real", "twin"):
            xs = [v for s, e2, q2, v in rows if s == system and (e2, q2) == (e, q) and not math.isnan(v)]
            if xs:
                stats[system] = (quantile(xs, 0.5), quantile(xs, 0.1), quantile(xs, 0.9))
        if len(stats) < 2:
            continue
        (rm, r10, r90), (tm, _, _) = stats["real"], stats["twin"]
        if rm == 0:
            ratio = "=" if tm == 0 else "inf"
            ok = tm == 0 or r10 <= tm <= r90
        else:
            ratio = f"{tm / rm:.2f}"
            ok = abs(tm / rm - 1) <= 0.10 or r10 <= tm <= r90
        lines.append((e, q, stats["real"], stats["twin"], ratio, "ok" if ok else "OFF"))
    return lines


def fmt(x):
    return f"{x:.4f}" if abs(x) < 10 and x != int(x) else f"{x:.0f}"


def text_table(lines):
    out = [f"{'experiment':<32} {'quantity':<16} {'real p50':>9} {'p10':>8} {'p90':>8} "
           f"{'twin p50':>9} {'p10':>8} {'p90':>8} {'twin/real':>9}"]
    for e, q, r, t, ratio, ok in lines:
        out.append(f"{e:<32} {q:<16} {fmt(r[0]):>9} {fmt(r[1]):>8} {fmt(r[2]):>8} "
                   f"{fmt(t[0]):>9} {fmt(t[1]):>8} {fmt(t[2]):>8} {ratio:>9} {ok}")
    return "\n".join(out)


def readme(path):
    parts = []
    for c in sorted(glob.glob("results/calibration/*.csv")):
        txt = c[:-4] + ".txt"
        title = open(txt).readline().strip() if os.path.exists(txt) else os.path.basename(c)
        lines = summarise(rows_of(c))
        parts.append(f"**{os.path.basename(c)}**: {title}\n")
        parts.append("| experiment | quantity | real p50 (p10-p90) | twin p50 (p10-p90) | twin/real | |")
        parts.append("|---|---|---|---|---|---|")
        for e, q, r, t, ratio, ok in lines:
            parts.append(f"| {e} | {q} | {fmt(r[0])} ({fmt(r[1])}-{fmt(r[2])}) | "
                         f"{fmt(t[0])} ({fmt(t[1])}-{fmt(t[2])}) | {ratio} | {ok} |")
        parts.append("")
    body = open(path).read()
    if BEGIN not in body or END not in body:
        sys.exit(f"{path}: no fidelity markers: add the lines\n{BEGIN}\n{END}\nwhere the table goes")
    head, rest = body.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open(path, "w").write(head + BEGIN + "\n" + "\n".join(parts) + END + tail)


def main(argv):
    if len(argv) == 2 and argv[0] == "--readme":
        readme(argv[1])
    elif len(argv) == 2:
        print(argv[1])
        print(text_table(summarise(rows_of(argv[0]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
