#!/usr/bin/env python3
"""The driver of outage_test.sh (read it first): one `mailroom publish
--lines` and one `mailroom consume --guard` for the whole run, Kafka taken
away under them and brought back, then everything checked.

usage: outage_driver.py MR URL WORK TOPIC GROUP MODE DOWN_S [KAFKA_SH BROKER_DIR]
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

MR, URL, WORK, TOPIC, GROUP, MODE = sys.argv[1:7]
DOWN_S = float(sys.argv[7])
KAFKA_SH, BROKER_DIR = (sys.argv[8:10] + [None, None])[:2]
NKEYS = 8
BURST = 20  # lines fed at once, one request (--batch), every TICK
TICK = 1.0
# A refusal that says nothing of the record was written: published again.
# MR_ETIMEDOUT and MR_EINDOUBT say it may have been: only the same id may
# be published again, which --lines cannot, so they are left in doubt (the
# consumer may get them, once).
REFUSED = ("MR_EUNAVAIL",)
T0 = time.monotonic()
DEADLINE = T0 + (300 if MODE == "kafka" else 150)
lock = threading.Lock()
results = []


def now():
    return time.monotonic() - T0


def say(*a):
    print("[%6.1fs]" % now(), *a, flush=True)


def check(ok, text):
    results.append(bool(ok))
    print(("ok: " if ok else "FAIL: ") + text, flush=True)


def wait_for(cond, secs, step=0.1):
    end = min(time.monotonic() + secs, DEADLINE)
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


pidf = open(os.path.join(WORK, "pids"), "a")


def spawn(cmd, **kw):
    """A child the shell's cleanup kills by pid if it outlives the driver."""
    p = subprocess.Popen(cmd, **kw)
    pidf.write("%d\n" % p.pid)
    pidf.flush()
    return p


def thread(fn):
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def mr(*args, timeout=30):
    return subprocess.run([MR, "--url", URL, "--timeout", "20000"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout).stdout.decode(errors="replace")


# --- the publisher: one process for the whole run; fed bursts of lines -------
class Publisher:
    """Line i (fed in that order) is (key, seq, payload); ack line i is its
    ack. A line refused with MR_EUNAVAIL is published again as a new line
    (the next seq of its key) that names it: resent=I."""

    def __init__(self):
        self.lines = []  # (key, seq, payload)
        self.acks = []  # (status, time)
        self.next_seq = [0] * NKEYS
        self.resend = []  # line numbers to publish again
        self.feeding = True
        self.rc = None
        self.p = spawn([MR, "--url", URL, "publish", "--lines", "-K", "\t",
                        "--batch", str(BURST), "--json", TOPIC],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=open(os.path.join(WORK, "publish.err"), "wb"))
        self.feeder = thread(self.feed)
        self.reader = thread(self.read)

    def line(self, k, resent=None):
        s = self.next_seq[k]
        self.next_seq[k] += 1
        p = "k%d:%06d" % (k, s) + ("" if resent is None else ":resent=%d" % resent)
        self.lines.append(("k%d" % k, s, p))
        return "k%d\t%s\n" % (k, p)

    def feed(self):
        k = 0
        try:
            while time.monotonic() < DEADLINE:
                out = []
                with lock:
                    while self.resend and len(out) < BURST:
                        i = self.resend.pop(0)
                        out.append(self.line(int(self.lines[i][0][1:]), i))
                    while self.feeding and len(out) < BURST:
                        out.append(self.line(k % NKEYS))
                        k += 1
                    if not out and not self.feeding and \
                            len(self.acks) == len(self.lines):
                        break
                if out:
                    # a whole request, not a line short: pad with new lines
                    with lock:
                        while len(out) < BURST:
                            out.append(self.line(k % NKEYS))
                            k += 1
                    self.p.stdin.write("".join(out).encode())
                    self.p.stdin.flush()
                time.sleep(TICK)
            self.p.stdin.close()
        except OSError:
            pass  # the publisher died: its exit code says so

    def read(self):
        with open(os.path.join(WORK, "acks.jsonl"), "wb") as f:
            for raw in self.p.stdout:
                f.write(raw)
                f.flush()
                try:
                    st = json.loads(raw).get("status", "?")
                except ValueError:
                    st = "unparsable"
                with lock:
                    if st in REFUSED:
                        self.resend.append(len(self.acks))
                    self.acks.append((st, now()))
        self.rc = self.p.wait()


# --- the consumer: one process for the whole run ----------------------------
class Consumer:
    def __init__(self):
        self.got = []  # (payload, id, duplicate, time)
        self.rc = None
        self.p = spawn([MR, "--url", URL, "consume", "-g", GROUP, "--json",
                        "--guard", os.path.join(WORK, "guard.ids"), TOPIC],
                       stdout=subprocess.PIPE,
                       stderr=open(os.path.join(WORK, "consume.err"), "wb"))
        self.reader = thread(self.read)

    def read(self):
        with open(os.path.join(WORK, "deliveries.jsonl"), "wb") as f:
            for raw in self.p.stdout:
                f.write(raw)
                f.flush()
                try:
                    d = json.loads(raw)
                    item = (d["payload"], d["id"], d["duplicate"], now())
                except (ValueError, KeyError):
                    item = ("unparsable: %r" % raw[:80], "", False, now())
                with lock:
                    self.got.append(item)
        self.rc = self.p.wait()

    def count(self):
        with lock:
            return len(self.got)


# --- Kafka away and back ----------------------------------------------------
def kafka_guard():
    """The real broker comes back even if the test dies while it is down: a
    watcher starts it once this process is gone, unless told it is back."""
    done = os.path.join(WORK, "kafka-restarted")
    w = subprocess.Popen(
        ["bash", "-c", 'while kill -0 "$1" 2>/dev/null; do [ -e "$2" ] && '
         'exit 0; sleep 0.2; done; [ -e "$2" ] || bash "$3" start "$4"',
         "_", str(os.getpid()), done, KAFKA_SH, BROKER_DIR],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    return w, done


def kafka_down():
    if MODE == "kafka":
        r = subprocess.run(["bash", KAFKA_SH, "stop", BROKER_DIR],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return r.returncode == 0
    return "error" not in mr("admin", '{"op":"fault.broker_down","broker":1}')


def kafka_up():
    if MODE == "kafka":
        r = subprocess.run(["bash", KAFKA_SH, "start", BROKER_DIR],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return r.returncode == 0
    return "error" not in mr("admin", '{"op":"fault.broker_up","broker":1}')


def main():
    cons = Consumer()
    pub = Publisher()
    check(wait_for(lambda: cons.count() >= 3 * BURST, 60),
          "the consumer gets what is published before the outage")

    guard = kafka_guard() if MODE == "kafka" else None
    t_down = now()
    down_ok = kafka_down()
    say("Kafka down (%s)" % ("stopped" if MODE == "kafka" else "broker_down"))
    status = [""]

    def said_down():
        status[0] = mr("status")
        return re.search(r"^KAFKA DOWN: unreachable for \d+ s: .",
                         status[0], re.M) is not None

    seen_down = wait_for(said_down, DOWN_S + 20, 0.5)
    t_said = now() - t_down
    time.sleep(max(0.0, t_down + DOWN_S - now()))
    t_up0 = now()
    up_ok = kafka_up()
    t_up = now()
    if guard is not None:
        open(guard[1], "w").close()
        try:
            guard[0].wait(5)
        except subprocess.TimeoutExpired:
            guard[0].kill()
            guard[0].wait()
    say("Kafka back (%.1f s to start)" % (t_up - t_up0))
    check(down_ok, "Kafka taken away")
    check(up_ok, "Kafka back")
    check(seen_down, "mailroom status says KAFKA DOWN during the outage "
          "(after %.1f s)" % t_said)

    # A few more bursts after Kafka is back, then only resends.
    wait_for(lambda: False, 4)
    with lock:
        pub.feeding = False
    wait_for(lambda: pub.rc is not None, 150, 0.2)
    check(pub.rc in (0, 1, 5), "the publisher finishes by itself (exit %s; "
          "1 when a line was refused, 5 when one is in doubt)" % pub.rc)

    with lock:
        acked = {i for i, a in enumerate(pub.acks) if a[0] == "ok"}
        want = {pub.lines[i][2] for i in acked}
    wait_for(lambda: want <= {g[0] for g in list(cons.got)}, 90, 0.2)
    cons.p.send_signal(signal.SIGTERM)
    try:
        cons.p.wait(30)
    except subprocess.TimeoutExpired:
        cons.p.kill()
    cons.reader.join(10)
    check(cons.rc == 0, "the consumer exits 0 on SIGTERM (exit %s)" % cons.rc)

    with lock:
        lines, acks, got = list(pub.lines), list(pub.acks), list(cons.got)
    by_payload = {p: i for i, (_, _, p) in enumerate(lines)}
    statuses = {}
    for st, _ in acks:
        statuses[st] = statuses.get(st, 0) + 1
    unavail = {lines[i][2] for i, a in enumerate(acks) if a[0] in REFUSED}
    firsts = [g for g in got if not g[2]]
    first_payloads = [g[0] for g in firsts]
    consumed = set(g[0] for g in got)
    lost = [p for p in want if p not in consumed]
    check(len(acks) == len(lines), "one ack line per line published "
          "(%d lines, %d acks: %s)" % (len(lines), len(acks), statuses))
    check(not lost, "nothing acked is lost: %d acked, %d not consumed %s"
          % (len(want), len(lost), sorted(lost)[:5]))
    check(not (unavail & consumed), "nothing refused with MR_EUNAVAIL is "
          "consumed (never a false ack): %s" % sorted(unavail & consumed)[:5])
    doubt = {lines[i][2] for i, a in enumerate(acks)
             if a[0] not in REFUSED and a[0] != "ok"}
    print("info: %d lines in doubt (MR_ETIMEDOUT, MR_EINDOUBT), %d of them "
          "consumed" % (len(doubt), len(doubt & consumed)), flush=True)
    strays = [p for p in consumed if p not in by_payload]
    check(not strays, "only what was published is consumed: %s" % strays[:5])
    pending = [i for i, a in enumerate(acks) if a[0] in REFUSED
               and not any(l[2].endswith(":resent=%d" % i) for l in lines)]
    check(not pending, "each line refused was published "
          "again (%d refused)" % len(unavail))
    ids = [g[1] for g in firsts]
    check(len(ids) == len(set(ids)) and
          len(set(first_payloads)) == len(first_payloads),
          "the guard makes each message once: %d deliveries, %d first, %d "
          "marked duplicate" % (len(got), len(firsts), len(got) - len(firsts)))
    inversions = []
    last = {}
    for p in first_payloads:
        if p not in by_payload:
            continue
        k, s, _ = lines[by_payload[p]]
        if s <= last.get(k, -1):
            inversions.append((k, last[k], s))
        last[k] = s
    check(not inversions, "per-key order among what was consumed: %d "
          "inversions %s" % (len(inversions), inversions[:5]))
    err = open(os.path.join(WORK, "consume.err"), errors="replace").read()
    n_down = len(re.findall(r"^mailroom: consume: mailroomd: Kafka unreachable "
                            r"for \d+ s: .+; waiting$", err, re.M))
    n_back = len(re.findall(r"^mailroom: consume: mailroomd: Kafka reachable "
                            r"again; consuming$", err, re.M))
    check(n_down == 1 and n_back == 1, "the consumer says once on stderr "
          "that Kafka is unreachable (%d times), and once that it is back "
          "(%d times)" % (n_down, n_back))
    after = [g[3] for g in got if g[3] >= t_up]
    acks_after = [a[1] for a in acks if a[0] == "ok" and a[1] >= t_up]
    resume = after[0] - t_up if after else None
    check(resume is not None, "consumption resumes after the outage")
    summary = {
        "mode": MODE, "down_s": round(t_up0 - t_down, 1),
        "kafka_start_s": round(t_up - t_up0, 1),
        "status_down_after_s": round(t_said, 1),
        "publish_resume_s": round(acks_after[0] - t_up, 2) if acks_after else None,
        "consume_resume_s": round(resume, 2) if resume is not None else None,
        "lines": len(lines), "acks": statuses, "deliveries": len(got),
        "duplicates": len(got) - len(firsts),
        "in_doubt_consumed": len(doubt & consumed)}
    print("SUMMARY " + json.dumps(summary), flush=True)
    with open(os.path.join(WORK, "summary.json"), "w") as f:
        json.dump(summary, f)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
