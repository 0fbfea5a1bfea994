#!/usr/bin/env python3
"""The driver of crash_test.sh (read it first): one `mailroom publish
--lines` and one `mailroom consume --guard` for the whole run, mailroomd
killed -9 three times under them and restarted, then the topic read back
from Kafka and everything checked.

usage: crash_driver.py MR MRD WORK URL TOPIC GROUP MODE BROKERS [DAEMON_ARG...]
"""
import bisect
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

MR, MRD, WORK, URL, TOPIC, GROUP, MODE, BROKERS = sys.argv[1:9]
DAEMON_ARGS = sys.argv[9:]
N = int(os.environ.get("MR_CRASH_MESSAGES") or 100000)
RATE = float(os.environ.get("MR_CRASH_RATE") or 1200)
RESTART_CONSUMER = os.environ.get("MR_CRASH_RESTART_CONSUMER", "0") == "1"
IDLE_MS = int(os.environ.get("MR_CRASH_IDLE_MS") or 30000)
SEED = int(os.environ.get("MR_CRASH_SEED") or int(time.time() * 1000) % 1000000)
PUBLISH_TIMEOUT_MS = 60000  # rides through a restart: resends until then
NKEYS, PAD, BATCH = 1000, 50, 50
KILL_AT = (0.2, 0.5, 0.8)
T0 = time.monotonic()
DEADLINE = T0 + 420  # the whole run, bounded
rng = random.Random(SEED)
lock = threading.Lock()
results = []  # (ok, text)


def now():
    return time.monotonic() - T0


def left():
    return DEADLINE - time.monotonic()


def say(*a):
    print("[%6.1fs]" % now(), *a, flush=True)


def info(text):
    print("info: " + text, flush=True)


def check(ok, text):
    results.append(bool(ok))
    print(("ok: " if ok else "FAIL: ") + text, flush=True)


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


# --- the stream: line i is key k(i % 1000), sequence i // 1000 ---------------
keys = ["k%d" % (i % NKEYS) for i in range(N)]
seqs = [i // NKEYS for i in range(N)]
payloads = []
for i in range(N):
    p = "%s:%06d:" % (keys[i], seqs[i])
    payloads.append(p + "x" * max(0, PAD - len(p)))
line_bytes = [("%s\t%s\n" % (keys[i], payloads[i])).encode() for i in range(N)]


def line_of(payload):
    """The line a payload was published from, or None."""
    try:
        k, q, _ = payload.split(":", 2)
        i = int(q) * NKEYS + int(k[1:])
    except (ValueError, AttributeError):
        return None
    return i if 0 <= i < N and payloads[i] == payload else None


# --- mailroomd ---------------------------------------------------------------
class Daemon:
    def __init__(self):
        self.p = None
        self.up = threading.Event()
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(WORK, "mailroomd-%d.log" % self.starts), "w")
        self.p = spawn([MRD, "--listen", URL] + DAEMON_ARGS, stdout=log,
                       stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while time.monotonic() < end and self.p.poll() is None:
            r = subprocess.run([MR, "--url", URL, "--timeout", "2000", "status"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                self.up.set()
                return True
            time.sleep(0.1)
        say("mailroomd #%d did not become ready (exit %s)" %
            (self.starts, self.p.poll()))
        return False

    def kill9(self):
        self.up.clear()
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        self.up.clear()
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.send_signal(signal.SIGKILL)
                self.p.wait()


# --- the publisher: one process, fed at RATE, never restarted ---------------
class Publisher:
    def __init__(self):
        self.acks = []  # ack line i is line i's (acks come in line order)
        self.times = []  # when each ack line was read
        self.rc = None
        self.p = spawn([MR, "--url", URL, "--timeout", str(PUBLISH_TIMEOUT_MS),
                        "publish", "--lines", "-K", "\t", "--batch", str(BATCH),
                        "--json", TOPIC],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=open(os.path.join(WORK, "publish.err"), "wb"),
                       env=dict(os.environ, MAILROOM_CLIENT_TRACE="1"))
        thread(self.feed)
        self.reader = thread(self.read)

    def feed(self):
        start = time.monotonic()
        try:
            for i in range(0, N, BATCH):
                self.p.stdin.write(b"".join(line_bytes[i:i + BATCH]))
                self.p.stdin.flush()
                d = start + (i + BATCH) / RATE - time.monotonic()
                if d > 0:
                    time.sleep(d)
            self.p.stdin.close()
        except OSError:
            pass  # the publisher died: its exit code says so

    def read(self):
        with open(os.path.join(WORK, "acks.jsonl"), "wb") as f:
            for raw in self.p.stdout:
                f.write(raw)
                try:
                    a = json.loads(raw)
                except ValueError:
                    a = {"status": "unparsable: %r" % raw[:80]}
                with lock:
                    self.acks.append(a)
                    self.times.append(now())
        self.rc = self.p.wait()


# --- the consumer: one process, restarted only when it dies ------------------
class Consumer:
    def __init__(self):
        # (incarnation, id, line, partition, offset, attempt, duplicate, t)
        self.dl = []
        self.runs = []  # (incarnation, start, deliveries, exit code, end)
        self.p = None
        self.bad_lines = 0
        self.thread = thread(self.run)

    def run(self):
        errf = open(os.path.join(WORK, "consume.err"), "ab")
        outf = open(os.path.join(WORK, "deliveries.jsonl"), "ab")
        cmd = [MR, "--url", URL, "--timeout", "30000", "consume", "-g", GROUP,
               "--mode", "key", "--json", "--batch", "200",
               "--guard", os.path.join(WORK, "guard.ids"),
               "--idle", str(IDLE_MS), TOPIC]
        while left() > 0:
            if not daemon.up.wait(min(5, max(0.1, left()))):
                continue
            inc, start, n0 = len(self.runs) + 1, now(), len(self.dl)
            self.p = spawn(cmd, stdout=subprocess.PIPE, stderr=errf,
                           env=dict(os.environ, MAILROOM_CLIENT_TRACE="1"))
            for raw in self.p.stdout:
                outf.write(raw)
                try:
                    d = json.loads(raw)
                    i = line_of(d["payload"])
                    rec = (inc, d["id"], i, d["partition"], d["offset"],
                           d["attempt"], d["duplicate"], now())
                except (ValueError, KeyError, TypeError):
                    i = None
                if i is None:
                    self.bad_lines += 1
                    continue
                with lock:
                    self.dl.append(rec)
            rc = self.p.wait()
            self.runs.append((inc, start, len(self.dl) - n0, rc, now()))
            say("consumer incarnation %d exited %d after %d deliveries" %
                (inc, rc, len(self.dl) - n0))
            if rc == 0:
                return
            time.sleep(0.2)


# --- the run -----------------------------------------------------------------
info("seed %d (MR_CRASH_SEED=%d repeats the kill timings)" % (SEED, SEED))
info("consumer: %s" % (
    "restarted when it dies (MR_CRASH_RESTART_CONSUMER=1)" if RESTART_CONSUMER
    else "must ride through every restart (MR_CRASH_RESTART_CONSUMER=0; a "
    "consumer that dies is a failure, then restarted for the other checks)"))
daemon = Daemon()
if not daemon.start():
    check(False, "mailroomd starts")
    sys.exit(1)
pub = Publisher()
cons = Consumer()

# Each kill once the publisher's acks pass the mark and the consumer has
# delivered since the last restart (it is mid-stream too). A kill lands
# anywhere in the publisher's request cycle (BATCH lines every BATCH / RATE s).
# A consumer takes a while to deliver again after a restart (a lost
# connection noticed, then the group's rebalance waits out the killed
# member's session: ~15 s on the embedded cluster), so on a slow machine the
# publisher can finish first: that kill still lands, mid-stream for the
# consumer alone, and says so.
kills = []  # (acks at the kill, time of the kill, time mailroomd was back)
for frac in KILL_AT:
    target, n0 = int(frac * N), len(cons.dl)
    end = min(time.monotonic() + 150, DEADLINE)
    while time.monotonic() < end and cons.thread.is_alive() and \
            (len(pub.acks) < target and pub.rc is None or
             len(cons.dl) - n0 < 500):
        time.sleep(0.02)
    time.sleep(rng.uniform(0, BATCH / RATE))
    acked_now = len(pub.acks)
    if len(cons.dl) - n0 < 500 or acked_now < target and pub.rc is None:
        check(False, "kill at %d%%: the stream ended or stalled first (%d "
              "acks, %d deliveries since the last restart)" %
              (frac * 100, acked_now, len(cons.dl) - n0))
        continue
    if pub.rc is not None:
        info("kill at %d%%: the publisher had finished (exit %s), so this "
             "kill is mid-stream for the consumer alone" %
             (frac * 100, pub.rc))
    t = now()
    daemon.kill9()
    say("kill -9 #%d of mailroomd at %d acks (%.0f%%), %d deliveries" %
        (len(kills) + 1, acked_now, 100.0 * acked_now / N, len(cons.dl)))
    time.sleep(0.3)
    if not daemon.start():
        check(False, "mailroomd restarts after kill %d" % (len(kills) + 1))
        break
    kills.append((acked_now, t, now()))

# Both finish on their own: the publisher at the end of its input, the
# consumer IDLE_MS after its last delivery.
pub.reader.join(max(1, left()))
if pub.reader.is_alive():
    pub.p.send_signal(signal.SIGKILL)
    pub.reader.join(10)
say("publisher exited %s: %d ack lines" % (pub.rc, len(pub.acks)))
cons.thread.join(max(1, left()))
cons_timed_out = cons.thread.is_alive()
if cons_timed_out and cons.p is not None:
    cons.p.send_signal(signal.SIGKILL)
    cons.thread.join(10)
# The last mailroomd's view, for a failure's report.
with open(os.path.join(WORK, "status-final.json"), "wb") as f:
    subprocess.run([MR, "--url", URL, "--timeout", "5000", "status", "--json"],
                   stdout=f, stderr=subprocess.STDOUT)
daemon.stop()
say("stopped")


def read_topic(topic, fmt):
    """Every record of topic, one kcat line each (kcat -e: to the end)."""
    try:
        r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-o",
                            "beginning", "-e", "-q", "-f", fmt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return None, ": kcat did not finish in 120 s"
    return r.stdout.decode("utf-8", "replace").splitlines(), \
        "" if r.returncode == 0 else ": kcat exited %d: %s" % (
            r.returncode, r.stderr.decode("utf-8", "replace")[-300:])


def inversions(firsts):
    """(key, seq, where) in order: the entries whose seq is not above the
    key's highest seq before them."""
    top, bad = {}, []
    for k, q, where in firsts:
        if q <= top.get(k, (-1,))[0]:
            bad.append("%s seq %d (%s) after seq %d (%s)" %
                       (k, q, where, top[k][0], top[k][1]))
        else:
            top[k] = (q, where)
    return bad


def per_kill(values, marks):
    """Counts by the kill before each value (0: before any kill)."""
    out = [0] * (len(marks) + 1)
    for v in values:
        out[bisect.bisect_right(marks, v)] += 1
    return out


def e_g(items, n=3):
    return "" if not items else ": e.g. " + "; ".join(map(str, items[:n]))


# --- checks: the kills and the publisher --------------------------------------
check(len(kills) == len(KILL_AT),
      "mailroomd killed -9 %d times and restarted, at %s acks" %
      (len(kills), ", ".join("%d" % k[0] for k in kills)))
for n, (a, t, back) in enumerate(kills, 1):
    p_again = next((x for x in pub.times if x > back), None)
    c_again = next((d[7] for d in cons.dl if d[7] > back), None)
    info("kill %d at %.1fs: mailroomd back after %.1f s; the publisher acked "
         "again after %s, the consumer delivered again after %s" %
         (n, t, back - t,
          "-" if p_again is None else "%.1f s" % (p_again - t),
          "-" if c_again is None else "%.1f s" % (c_again - t)))
acks = pub.acks
line_id = {a["id"]: i for i, a in enumerate(acks[:N]) if a.get("id")}
not_ok = [(i, a) for i, a in enumerate(acks) if a.get("status") != "ok"]
check(pub.rc == 0 and len(acks) == N and not not_ok and len(line_id) == N,
      "the publisher rode through and finished on its own: exit %s, %d ack "
      "lines for %d lines, %d not ok, %d distinct ids, %d flagged duplicate%s"
      % (pub.rc, len(acks), N, len(not_ok), len(line_id),
         sum(1 for a in acks if a.get("duplicate")),
         e_g(["line %d: %s" % (i, json.dumps(a)) for i, a in not_ok])))
acked = {a["id"]: i for i, a in enumerate(acks) if a.get("status") == "ok"}

# --- checks: what Kafka holds -------------------------------------------------
lines, why = read_topic(TOPIC, "%p\t%o\t%k\t%h\t%s\n")
recs = []  # (partition, offset, key, id, line)
for l in lines or []:
    f = l.split("\t", 4)
    if len(f) == 5:
        hdrs = dict(h.split("=", 1) for h in f[3].split(",") if "=" in h)
        recs.append((int(f[0]), int(f[1]), f[2], hdrs.get("ce_id"),
                     line_of(f[4])))
recs.sort()
check(recs and not why, "kcat read %d records of %s%s" %
      (len(recs), TOPIC, why))
low = {}
for r in recs:
    low.setdefault(r[0], r[1])
if any(low.values()):
    info("Kafka's partitions start at offsets %s: records were dropped "
         "(the mock keeps about 5 MB a partition)" % low)
in_kafka = {}
for r in recs:
    in_kafka[r[3]] = in_kafka.get(r[3], 0) + 1
lost = sorted(i for mid, i in acked.items() if mid not in in_kafka)
check(not lost, "every acked id is in Kafka (%d acked, %d missing%s)" %
      (len(acked), len(lost), e_g(["line %d %s" % (i, json.dumps(acks[i]))
                                   for i in lost])))
foreign = [r for r in recs if r[3] not in line_id or r[4] != line_id[r[3]]
           or r[2] != keys[r[4]]]
check(not foreign, "every record in Kafka carries an id the publisher had, "
      "with that id's key and payload: a resend never makes a new id (%d "
      "records do not%s)" % (len(foreign), e_g(foreign)))
seen, firsts, dup_lines = set(), [], []
for part, off, k, mid, i in recs:
    if mid in seen:
        dup_lines.append(line_id.get(mid, 0))
    elif i is not None:
        seen.add(mid)
        firsts.append((k, seqs[i], "%d@%d" % (part, off)))
k_inv = inversions(firsts)
check(not k_inv, "per key, the first records of ids in Kafka are in "
      "sequence order over %d keys (%d inversions%s)" %
      (len({f[0] for f in firsts}), len(k_inv), e_g(k_inv)))
# A record written twice was in flight at a kill: its line was not acked
# then, so it is at or after that kill's ack count.
k_dup = per_kill(dup_lines, [k[0] for k in kills])
check(len(dup_lines) <= N // 20, "duplicate records in Kafka (extra records "
      "of an id): %d <= 5%% of the stream; by kill: %s; before any kill: %d" %
      (len(dup_lines), "/".join(map(str, k_dup[1:])) or "-", k_dup[0]))

# --- checks: the consumer and delivery ----------------------------------------
exits = [r[3] for r in cons.runs]
finished = not cons_timed_out and exits and exits[-1] == 0
if RESTART_CONSUMER:
    check(finished, "the consumer finished on its own (--idle %d), restarted "
          "%d times after it died (exit codes %s)" %
          (IDLE_MS, len(exits) - 1, exits))
else:
    check(finished and len(exits) == 1, "the consumer rode through %d "
          "restarts and finished on its own (--idle %d): exit codes %s" %
          (len(kills), IDLE_MS, exits))
for inc, start, n, rc, end in cons.runs:
    info("consumer incarnation %d: %.1fs to %.1fs, %d deliveries, exit %d" %
         (inc, start, end, n, rc))
dl = cons.dl
first = {}
for n, d in enumerate(dl):
    first.setdefault(d[1], n)
undelivered = sorted(i for mid, i in acked.items() if mid not in first)
check(not undelivered, "every acked message was delivered (%d acked, %d "
      "missing%s)" % (len(acked), len(undelivered),
                      e_g(["line %d id %s" % (i, acks[i]["id"])
                           for i in undelivered])))
applied = {}
for d in dl:
    applied[d[1]] = applied.get(d[1], 0) + (not d[6])
bad = [(m, c) for m, c in applied.items() if c != 1]
check(dl and not bad, "the guard applied each of %d delivered ids once (not "
      "marked duplicate) over %d deliveries (%d ids applied 0 or 2+ times%s)"
      % (len(applied), len(dl), len(bad), e_g(bad)))
d_inv = inversions((keys[d[2]], seqs[d[2]], "%d@%d, incarnation %d" %
                    (d[3], d[4], d[0]))
                   for n, d in enumerate(dl) if first[d[1]] == n)
check(not d_inv, "per key, first deliveries are in sequence order (%d "
      "inversions%s)" % (len(d_inv), e_g(d_inv)))
again = [d for n, d in enumerate(dl) if first[d[1]] != n]
same = sum(1 for d in again if dl[first[d[1]]][3:5] == d[3:5])
d_dup = per_kill((d[7] for d in again), [k[1] for k in kills])
check(len(again) <= N // 20, "duplicate deliveries %d <= 5%% of the stream "
      "(%d the same record again, %d another record of the id); by kill: %s; "
      "before any kill: %d; unparsable lines %d" %
      (len(again), same, len(again) - same, "/".join(map(str, d_dup[1:]))
       or "-", d_dup[0], cons.bad_lines))

# Nothing here is poisoned: the kills must not burn a record's attempts down
# to the dead-letter topic, nor trip the group's breaker (a session lost in
# a kill is one failure for it, however many records it held).
try:
    with open(os.path.join(WORK, "status-final.json"), "rb") as f:
        groups = json.loads(f.read())["consume"]["groups"]
    dead = [g.get("dead_letter", {}) for g in groups]
    trips = sum(d.get("trips", 0) for d in dead)
    quarantined = sum(d.get("quarantined", 0) for d in dead)
    check(trips == 0 and quarantined == 0,
          "the last mailroomd's group: breaker never opened, nothing "
          "quarantined (trips %d, quarantined %d%s)" %
          (trips, quarantined, "".join(
              ", reason: %s" % d.get("reason") for d in dead if
              d.get("trips"))))
except (OSError, ValueError, KeyError, TypeError) as e:
    check(False, "the last mailroomd's status: %r" % e)
dlq_lines, why = read_topic(TOPIC + ".dlq", "%o\n")
if why and "nknown topic" in why:
    dlq_lines, why = [], ""
check(dlq_lines is not None and not why and not dlq_lines,
      "the dead-letter topic %s.dlq is empty (%s records%s)" %
      (TOPIC, "?" if dlq_lines is None else len(dlq_lines), why))

nfail = results.count(False)
print("SUMMARY mode=%s consumer=%s lines=%d acked=%d kafka_records=%d "
      "kafka_dups=%d[%s] kafka_inversions=%d delivered=%d delivery_dups=%d[%s] "
      "delivery_inversions=%d guard_bad=%d publisher_exit=%s "
      "consumer_exits=%s seconds=%.0f ([a/b/c/d]: before any kill/after kill "
      "1/2/3)" %
      (MODE, "restart" if RESTART_CONSUMER else "ride-through", N, len(acked),
       len(recs), len(dup_lines), "/".join(map(str, k_dup)), len(k_inv),
       len(dl), len(again), "/".join(map(str, d_dup)), len(d_inv), len(bad),
       pub.rc, ",".join(map(str, exits)), now()))
print("%d passed, %d failed" % (len(results) - nfail, nfail))
sys.exit(0 if nfail == 0 else 1)
