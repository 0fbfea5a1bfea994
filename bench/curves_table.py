#!/usr/bin/env python3
"""The tables of docs/benchmarks/curves.md from the .jsonl that
bench/run_curves.sh writes: one Markdown table per curve, one row per
point. Throughput and the ratio (run by run: mailroom's run r over raw's
run r) as median (min-max); CPU µs per message as medians; mailroomd's
peak RSS (VmHWM) over its first mailroom run (a fresh mailroomd) and over
the whole point (what earlier runs left adds to later ones).

Usage: bench/curves_table.py CURVES.jsonl...
Several files (sweeps of the same points) are merged point by point: the
ranges and medians are then over the runs of all of them.
"""
import json
import statistics
import sys

TITLES = {
    "keys": ("distinct keys", "consume, key mode"),
    "parts": ("partitions", "consume, key mode"),
    "groups": ("groups at once", "consume, key mode, aggregate of all groups"),
    "cpayload": ("payload bytes", "consume, key mode"),
    "ppayload": ("payload bytes", "publish, batched, raw with the same headers"),
}


def fmt_rate(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e3:
        return f"{v / 1e3:.0f} k"
    return f"{v:.0f}"


def span(vals, f):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f(med)
    return f"{f(med)} ({f(min(vals))}–{f(max(vals))})"


def med(vals):
    vals = [v for v in vals if v is not None and v >= 0]
    return statistics.median(vals) if vals else None


def cpu(side, i):
    return med([r[i] for r in side.get("runs_cpu_us", [])])


def fx(v, d=2):
    return "—" if v is None else f"{v:.{d}f}"


def row(p, payload):
    mr_name = "mailroom_key" if p.get("bench") == "consume" else \
        "mailroom_batched"
    raw, mr = p.get("raw", {}), p.get(mr_name, {})
    size = p.get("size", 100)
    rr = raw.get("runs_msgs_per_s", [])
    mm = mr.get("runs_msgs_per_s", [])
    ratios = [m / r for m, r in zip(mm, rr) if r > 0 and m > 0]
    hwms = mr.get("runs_mrd_hwm_kb", [])
    hwm = max([p.get("mrd_vmhwm_kb", 0)] + hwms)
    hwm1 = hwms[0] if hwms else 0
    mr_tot = [cpu(mr, i) for i in range(3)]
    raw_tot = [cpu(raw, 0), cpu(raw, 2)]
    tot = lambda xs: sum(x for x in xs if x is not None) \
        if any(x is not None for x in xs) else None
    notes = []
    if p.get("exit", 0) != 0:
        notes.append(f"exit {p['exit']}")
    for name, side in (("raw", raw), ("mailroom", mr)):
        if side.get("failed"):
            notes.append(f"{name}: {side['failed']} of "
                         f"{side['failed'] + side.get('msgs', 0)} missing")
        if side and not side.get("done", True):
            notes.append(f"{name}: not measured")
    if not mr:
        notes.append("no result")
    mbs = lambda v: f"{v * size / 1e6:.0f}" if v * size >= 1e7 else \
        f"{v * size / 1e6:.1f}"
    if not payload:
        mbs = None
    return (f"| {p['value']:,} | {span(mm, fmt_rate)} | "
            + (f"{span(mm, mbs)} | " if mbs else "")
            + f"{span(rr, fmt_rate)} | "
            + (f"{span(rr, mbs)} | " if mbs else "") +
            f"{span(ratios, lambda v: f'{v:.2f}')} | "
            f"{fx(mr_tot[0])} / {fx(mr_tot[1])} / {fx(mr_tot[2])} | "
            f"{fx(tot(mr_tot))} | {fx(raw_tot[0])} / {fx(raw_tot[1])} | "
            f"{fx(tot(raw_tot))} | {hwm1 / 1024:.0f} / {hwm / 1024:.0f} | "
            f"{p.get('count', 0):,} | {'; '.join(notes)} |")


def merge(a, b):
    """Point b's runs added to point a's."""
    for side in ("raw", "mailroom_key", "mailroom_batched"):
        if side not in b:
            continue
        if side not in a:
            a[side] = b[side]
            continue
        for k in ("runs_msgs_per_s", "runs_cpu_us"):
            a[side][k] = a[side].get(k, []) + b[side].get(k, [])
        a[side]["failed"] = a[side].get("failed", 0) + b[side].get("failed", 0)
        a[side]["done"] = a[side].get("done", True) and b[side].get("done", True)
        h = a[side].get("runs_mrd_hwm_kb", [0])[:1] or [0]
        hb = b[side].get("runs_mrd_hwm_kb", [0])[:1] or [0]
        a[side]["runs_mrd_hwm_kb"] = [max(h[0], hb[0])] + \
            a[side].get("runs_mrd_hwm_kb", [])[1:] + \
            b[side].get("runs_mrd_hwm_kb", [])[1:]
    a["mrd_vmhwm_kb"] = max(a.get("mrd_vmhwm_kb", 0), b.get("mrd_vmhwm_kb", 0))
    a["exit"] = a.get("exit", 0) or b.get("exit", 0)
    if b.get("git") not in a["git"].split(", "):
        a["git"] += ", " + b.get("git", "?")
    a["repeat"] = a.get("repeat", 0) + b.get("repeat", 0)


def main():
    points = []
    for f in sys.argv[1:]:
        for line in open(f):
            if not line.strip():
                continue
            p = json.loads(line)
            same = [q for q in points
                    if (q["curve"], q["value"]) == (p["curve"], p["value"])]
            if same:
                merge(same[0], p)
            else:
                points.append(p)
    for curve in TITLES:
        ps = [p for p in points if p["curve"] == curve]
        if not ps:
            continue
        what, how = TITLES[curve]
        print(f"\n{curve}: {how}; commit {ps[0].get('git', '?')}, "
              f"runs {ps[0].get('repeat', '?')}\n")
        payload = curve.endswith("payload")
        mb = " MB/s |" if payload else ""
        print(f"| {what} | mailroom msgs/s |{mb} raw msgs/s |{mb} "
              "ratio | mailroom CPU µs/msg: client / mailroomd / Kafka | "
              "total | raw CPU µs/msg: client / Kafka | total | "
              "mailroomd peak RSS MiB: run 1 / point | msgs per run | notes |")
        print("|" + "---:|" * (12 if payload else 10) + "---|")
        for p in ps:
            print(row(p, payload))


if __name__ == "__main__":
    main()
