#!/usr/bin/env python3
"""One timed run of a command for bench/run_cli.sh.

Usage: cli_measure.py LABEL N STDIN STDOUT WATCH_PIDS -- COMMAND...

Runs COMMAND with stdin from STDIN (a file, or - for none) and stdout to
the file STDOUT (truncated; on tmpfs it costs a copy into memory, the
same for both sides; /dev/null would hide when the first line came), and
prints one line of JSON: the label, N, the wall time from start to exit,
the time of the first byte on stdout (its size polled every 5 ms), the
lines written, the command's own CPU (user + system, from wait4), and the
CPU each process of WATCH_PIDS (name=pid,name=pid) used meanwhile, from
/proc/PID/stat.

Before starting COMMAND it waits until the watched processes are quiet
(together under 5 % of a core over two 200 ms windows in a row, at most
QUIET_MAX_S, 15 s): what the previous command left them doing (a
consumer group's leaving, Kafka's flushes) is not charged to this one.
The wait is reported as "quiet_s" (null when they never went quiet).
"""
import json
import os
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except OSError:
        return 0.0


def quiet(pids, limit):
    """Wait until pids use under 5 % of a core for two windows running."""
    t0 = time.monotonic()
    calm = 0
    last = sum(cpu(p) for p in pids.values())
    while time.monotonic() - t0 < limit:
        time.sleep(0.2)
        now = sum(cpu(p) for p in pids.values())
        calm = calm + 1 if now - last < 0.2 * 0.05 + 1e-9 else 0
        last = now
        if calm == 2:
            return round(time.monotonic() - t0, 2)
    return None


def lines(path):
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def main():
    label, n, stdin, stdout, watch = sys.argv[1:6]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    pids = dict(kv.split("=") for kv in watch.split(",") if kv)
    quiet_s = quiet(pids, float(os.environ.get("QUIET_MAX_S", "15")))
    before = {k: cpu(p) for k, p in pids.items()}
    fin = open(stdin, "rb") if stdin != "-" else subprocess.DEVNULL
    t0 = time.monotonic()
    fout = open(stdout, "wb")
    p = subprocess.Popen(cmd, stdin=fin, stdout=fout)
    first = None
    while True:
        done, status, ru = os.wait4(p.pid, os.WNOHANG)
        if done:
            break
        if first is None and os.fstat(fout.fileno()).st_size > 0:
            first = time.monotonic()
        time.sleep(0.005)
    t1 = time.monotonic()
    rc = os.waitstatus_to_exitcode(status)
    out = {
        "label": label,
        "n": int(n),
        "rc": rc,
        "wall_s": round(t1 - t0, 3),
        "first_write_s": round(first - t0, 3) if first else None,
        "quiet_s": quiet_s,
        "lines": lines(stdout),
        "cpu_s": {"cmd": round(ru.ru_utime + ru.ru_stime, 3)},
    }
    for k, p0 in before.items():
        out["cpu_s"][k] = round(cpu(pids[k]) - p0, 3)
    fout.close()
    os.truncate(stdout, 0)
    print(json.dumps(out), flush=True)
    # A consumer must have printed every record (one line each).
    if label.startswith("consume") and out["lines"] != out["n"]:
        print("%s: %d lines, not %d" % (label, out["lines"], out["n"]),
              file=sys.stderr)
        return 1
    return 0 if rc == 0 else 1


sys.exit(main())
