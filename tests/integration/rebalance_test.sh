#!/usr/bin/env bash
# Two mailroomd in one consumer group on real Kafka (issue #3): stopping one
# moves its partitions to the other with no loss and no duplicate reaching an
# idempotent handler.
#
# Two mailroomd, A and B, on ipc:// URLs of their own, both on the fixture's
# broker, with consumer.revoke_wait_ms=2000. A 6-partition topic; one
# `mailroom consume --json` (key mode, one group) on each. Once both
# mailroomd log partitions "assigned", a publisher streams 20,000 messages
# (keys k0..k199; the payload carries the key and a per-key sequence number)
# through B with `mailroom publish --lines -K TAB --json`. When both
# consumers have had deliveries and about 40 % of the stream is acked,
# mailroomd A gets SIGTERM: it drains, commits and leaves the group; its
# consumer loses its connection and exits. B's consumer must then receive
# whatever was not acked through A, while the publisher goes on through B.
#
# The handler is idempotent through a guard shared by both consumers: the
# test's own (`mailroom consume` has no --guard): a file of claimed ids,
# appended and fsync'd before the deliveries of a chunk are applied; a
# delivery whose id was claimed before is a duplicate, not applied.
#
# Checks: A exits 0 on SIGTERM and logs the revoke of its partitions; B logs
# every partition of the topic assigned to it after A stopped; every acked
# publish is delivered (no loss); duplicates (deliveries of an id seen
# before) are counted and bounded by what A's consumer held when A stopped,
# and come with attempt > 1; the guard applied each id exactly once across
# both consumers; per key, first deliveries come in sequence order. Figures
# printed: duplicates, redeliveries, the time from SIGTERM to B's assignment
# and to B's first delivery from a partition that was A's.
#
# Usage: rebalance_test.sh
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR (the
#   fixture; exit 77 when it says Kafka is unavailable); MR_REBALANCE_MESSAGES
#   (20000), MR_REBALANCE_RATE (messages per second offered, 2000); KEEP=1
#   keeps the work directory.
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_binaries
mrt_kafka
mrt_need --skip python3
messages=${MR_REBALANCE_MESSAGES:-20000}
rate=${MR_REBALANCE_RATE:-2000}
# The driver's children (mailroomd, the publisher, the consumers) are in
# $work/pids.
mrt_workdir rebalance

T="rebalance-$$"
G="rebalance-$$-g"
# A member that dies without leaving is noticed in 6 s rather than 45 s;
# a clean stop leaves the group at once anyway.
daemon_args=(--brokers "$brokers"
    --set consumer.revoke_wait_ms=2000
    --set librdkafka.session.timeout.ms=6000
    --set librdkafka.heartbeat.interval.ms=1000)

cat >"$work/driver.py" <<'PYEOF'
import calendar, json, os, re, signal, subprocess, sys, threading, time

(MR, MRD, work, topic, group, nmsg, rate) = sys.argv[1:8]
daemon_args = sys.argv[8:]
N = int(nmsg)
RATE = float(rate)
NKEYS = 200
PARTS = 6
BATCH = 200                     # deliveries per fetch of each consumer
STOP_AT = 0.4                   # A stops at this share of publish acks
DEADLINE = time.monotonic() + 200
PAD = 40

lock = threading.Lock()
t0 = time.monotonic()
w0 = time.time()                # the wall clock at t0: log times -> run times
results = []


def now():
    return time.monotonic() - t0


def say(*a):
    print("[%6.1fs]" % now(), *a, flush=True)


def check(ok, text):
    results.append((bool(ok), text))
    print(("ok: " if ok else "FAIL: ") + text, flush=True)


def info(text):
    print("info: " + text, flush=True)


def left():
    return DEADLINE - time.monotonic()


pidf = open(os.path.join(work, "pids"), "a")


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    pidf.write("%d\n" % p.pid)
    pidf.flush()
    return p


def wait_for(cond, secs, step=0.05):
    end = min(time.monotonic() + secs, DEADLINE)
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def bounded_wait(p, secs):
    """p's exit code, or None after a SIGKILL when it ran on past secs."""
    try:
        return p.wait(max(0.1, min(secs, left() + 10)))
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return None


# --- the stream: line i is key k(i % 200), sequence i // 200 --------------------
keys = ["k%d" % (i % NKEYS) for i in range(N)]
seqs = [i // NKEYS for i in range(N)]
payloads = []
for i in range(N):
    s = "%s:%06d:" % (keys[i], seqs[i])
    payloads.append(s + "x" * max(0, PAD - len(s)))
line_bytes = [("%s\t%s\n" % (keys[i], payloads[i])).encode() for i in range(N)]


def parse_payload(s):
    k, q, _ = s.split(":", 2)
    return k, int(q)


# --- mailroomd, and what its log says about the topic's partitions --------------
LOG_RE = re.compile(r'^ts=(\S+) .*group=(\S+) topic=(\S+) partition=(\d+) '
                    r'(?:offset=(-?\d+)|commit=(-?\d+)).* msg="(assigned|revoked)"')


def log_time(ts):
    # 2026-11-29T13:39:08.688Z -> seconds of this run
    base, ms = ts.rstrip("Z").split(".")
    sec = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return sec + int(ms) / 1000.0 - w0


class Daemon:
    def __init__(self, name):
        self.name = name
        self.url = "ipc://%s/%s.sock" % (work, name)
        self.log = os.path.join(work, "mailroomd-%s.log" % name)
        self.p = None
        self.owned = set()              # partitions of the topic, now
        self.events = []                # (run time, "assigned"/"revoked", partition, offset)
        self.pos = 0

    def start(self):
        out = open(self.log, "w")
        self.p = spawn([MRD, "--listen", self.url] + daemon_args,
                       stdout=out, stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            r = subprocess.run([MR, "--url", self.url, "--timeout", "2000",
                                "status"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        say("mailroomd %s did not become ready (exit %s)" %
            (self.name, self.p.poll()))
        return False

    def scan(self):
        """Read what the log gained: assignments and revokes of the topic."""
        with open(self.log, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.pos += end
        for l in data[:end].decode("utf-8", "replace").splitlines():
            m = LOG_RE.match(l)
            if not m or m.group(2) != group or m.group(3) != topic:
                continue
            part = int(m.group(4))
            what = m.group(7)
            off = int(m.group(5) if what == "assigned" else m.group(6))
            with lock:
                self.events.append((log_time(m.group(1)), what, part, off))
                if what == "assigned":
                    self.owned.add(part)
                else:
                    self.owned.discard(part)

    def grep(self, text):
        with open(self.log, errors="replace") as f:
            return [l.rstrip("\n") for l in f if text in l]


A = Daemon("A")
B = Daemon("B")


def log_watcher():
    while not stop_all.is_set():
        A.scan()
        B.scan()
        time.sleep(0.05)


# --- the consumers and the guard they share ---------------------------------------
deliveries = []     # (seq no., consumer, id, key, seq, partition, offset, attempt, redelivery, time)
applied = []        # (id, key, seq, consumer), in the order applied
claimed = set()
guard_path = os.path.join(work, "guard.ids")
guard_f = open(guard_path, "ab")
cons = {}           # name -> {"p", "n", "first", "last", "rc"}
bad_lines = [0]
stop_all = threading.Event()


def consume_chunk(name, lines, delf):
    batch = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            k, q = parse_payload(d["payload"])
        except (ValueError, KeyError, TypeError, AttributeError):
            bad_lines[0] += 1
            continue
        batch.append((d, k, q))
        delf.write(raw.decode("utf-8", "replace") + "\n")
    if not batch:
        return
    t = now()
    # The guard, shared by both consumers: claim (one fsync for the chunk),
    # then apply.
    with lock:
        to_apply = []
        for d, k, q in batch:
            deliveries.append((len(deliveries), name, d["id"], k, q,
                               d["partition"], d["offset"],
                               d.get("attempt", 1),
                               bool(d.get("redelivery", False)), t))
            if d["id"] not in claimed:
                claimed.add(d["id"])
                guard_f.write((d["id"] + "\n").encode())
                to_apply.append((d["id"], k, q, name))
        if to_apply:
            guard_f.flush()
            os.fsync(guard_f.fileno())
        applied.extend(to_apply)
        c = cons[name]
        c["n"] += len(batch)
        c["first"] = t if c["first"] is None else c["first"]
        c["last"] = t


def consumer(name, d):
    errf = open(os.path.join(work, "consume-%s.err" % name), "ab")
    delf = open(os.path.join(work, "deliveries-%s.jsonl" % name), "a")
    # --reconnect 0: A's consumer exits with A rather than wait for it.
    p = spawn([MR, "--url", d.url, "--timeout", "30000", "consume", "-g", group,
               "--mode", "key", "--json", "--batch", str(BATCH),
               "--reconnect", "0", topic],
              stdout=subprocess.PIPE, stderr=errf)
    cons[name]["p"] = p
    buf = b""
    fd = p.stdout.fileno()
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        buf += chunk
        lines = buf.split(b"\n")
        buf = lines.pop()
        consume_chunk(name, lines, delf)
    if buf:
        consume_chunk(name, [buf], delf)
    cons[name]["rc"] = p.wait()
    cons[name]["end"] = now()
    delf.close()
    say("consumer %s exited %d" % (name, cons[name]["rc"]))


# --- the publisher, through B ----------------------------------------------------
acked = {}          # line -> (id, partition, offset)
pub = {"rc": None, "error_acks": 0, "ack_lines": 0}
pub_done = threading.Event()


def publisher():
    errf = open(os.path.join(work, "publish.err"), "ab")
    ackf = open(os.path.join(work, "acks.jsonl"), "w")
    p = spawn([MR, "--url", B.url, "--timeout", "15000", "publish", "--lines",
               "-K", "\t", "--batch", "50", "--json", topic],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf)

    def feed():
        tstart = time.monotonic()
        try:
            for i in range(N):
                p.stdin.write(line_bytes[i])
                if i % 50 == 49:
                    p.stdin.flush()
                    dly = tstart + (i + 1) / RATE - time.monotonic()
                    if dly > 0:
                        time.sleep(dly)
                if stop_all.is_set() or left() < 0:
                    break
            p.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    tf = threading.Thread(target=feed, daemon=True)
    tf.start()
    i = 0
    for raw in p.stdout:
        ackf.write(raw.decode("utf-8", "replace"))
        try:
            a = json.loads(raw)
        except ValueError:
            a = {}
        if a.get("status") == "ok":
            with lock:
                acked[i] = (a["id"], a["partition"], a["offset"])
        else:
            pub["error_acks"] += 1
        i += 1
    pub["ack_lines"] = i
    pub["rc"] = bounded_wait(p, 30)
    tf.join(10)
    ackf.close()
    pub_done.set()


# --- the run -----------------------------------------------------------------------
for d in (A, B):
    if not d.start():
        check(False, "mailroomd %s starts" % d.name)
        sys.exit(1)
r = subprocess.run([MR, "--url", A.url, "--timeout", "30000", "topics", "create",
                    topic, "--partitions", str(PARTS)],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
if r.returncode != 0:
    check(False, "mailroom topics create %s --partitions %d: %s" %
          (topic, PARTS, r.stdout.strip()))
    sys.exit(1)

tl = threading.Thread(target=log_watcher, daemon=True)
tl.start()
threads = {}
for name, d in (("A", A), ("B", B)):
    cons[name] = {"p": None, "n": 0, "first": None, "last": None, "rc": None,
                  "end": None}
    threads[name] = threading.Thread(target=consumer, args=(name, d),
                                     daemon=True)
    threads[name].start()

# Both own partitions, and together all of them, before anything is sent.
if not wait_for(lambda: A.owned and B.owned and
                len(A.owned | B.owned) == PARTS and not (A.owned & B.owned),
                60):
    check(False, "both mailroomd own partitions of the group within 60 s "
          "(A: %s, B: %s)" % (sorted(A.owned), sorted(B.owned)))
    stop_all.set()
    sys.exit(1)
time.sleep(1)   # a rebalance still under way would show in the logs by now
with lock:
    own_a0, own_b0 = sorted(A.owned), sorted(B.owned)
say("assigned before the stream: A %s, B %s" % (own_a0, own_b0))

t_stream = now()
tp = threading.Thread(target=publisher, daemon=True)
tp.start()
target = int(STOP_AT * N)
ready = wait_for(lambda: len(acked) >= target and cons["A"]["n"] > 0 and
                 cons["B"]["n"] > 0, 90)
with lock:
    own_a = sorted(A.owned)
    snap = {"acks": len(acked), "A": cons["A"]["n"], "B": cons["B"]["n"]}
    a_ids = set(d[2] for d in deliveries if d[1] == "A")
check(ready and not pub_done.is_set(),
      "both consumers had deliveries (A %d, B %d) with the stream under way "
      "(%d of %d acked) before A stops" % (snap["A"], snap["B"], snap["acks"], N))

# --- SIGTERM to A ---
t_term = now()
say("SIGTERM to mailroomd A (owning %s) at %.3fs" % (own_a, t_term))
A.p.send_signal(signal.SIGTERM)
a_rc = bounded_wait(A.p, 60)
t_a_exit = now()
check(a_rc == 0, "mailroomd A exits 0 on SIGTERM (exit %s after %.1f s)" %
      ("still running after 60 s" if a_rc is None else a_rc, t_a_exit - t_term))
threads["A"].join(max(1, min(30, left())))
if cons["A"]["p"].poll() is None:
    say("consumer A still running after A stopped: killing it")
    cons["A"]["p"].send_signal(signal.SIGKILL)
    threads["A"].join(10)

# B takes over: every partition of the topic assigned to B after SIGTERM.
def b_has_all():
    with lock:
        got = set(e[2] for e in B.events if e[1] == "assigned" and e[0] >= t_term)
    return got >= set(range(PARTS)) and len(B.owned) == PARTS


moved = wait_for(b_has_all, 60)
with lock:
    b_after = [e for e in B.events if e[0] >= t_term]
t_assigned = max([e[0] for e in b_after if e[1] == "assigned"] or [float("nan")])
check(moved, "mailroomd B is assigned all %d partitions after A stopped "
      "(B owns %s; its log after the stop: %s)" %
      (PARTS, sorted(B.owned), ", ".join("%s %d@%d" % (e[1], e[2], e[3])
                                           for e in b_after) or "nothing"))

# The publisher finishes; B's consumer goes on until everything acked came
# and nothing more came for 5 s (a late duplicate would show by then).
tp.join(max(1, min(120, left())))
with lock:
    want = set(a[0] for a in acked.values())
say("publisher done: %d of %d lines acked" % (len(acked), N))
end = min(time.monotonic() + 120, DEADLINE)
idle_since, seen, complete = time.monotonic(), -1, False
while time.monotonic() < end:
    with lock:
        n = len(deliveries)
        if n != seen:
            complete = want <= claimed
            seen, idle_since = n, time.monotonic()
    if complete and time.monotonic() - idle_since > 5:
        break
    time.sleep(0.2)
t_complete = now()
say("consumers done (complete: %s)" % complete)
stop_all.set()
pb = cons["B"]["p"]
if pb.poll() is None:
    pb.send_signal(signal.SIGINT)
threads["B"].join(20)
if pb.poll() is None:
    pb.send_signal(signal.SIGKILL)
    threads["B"].join(10)
B.p.send_signal(signal.SIGTERM)
b_rc = bounded_wait(B.p, 60)
A.scan()
B.scan()
say("stopped")

# --- checks ------------------------------------------------------------------------
with lock:
    dl = list(deliveries)
    acks = dict(acked)
first = {}
for d in dl:
    first.setdefault(d[2], d)

check(len(acks) == N and pub["rc"] == 0,
      "the publisher through B got an ok ack for %d of %d lines (exit %s, "
      "%d error acks)" % (len(acks), N, pub["rc"], pub["error_acks"]))

# A revoked (and committed) what it owned.
with lock:
    a_rev = [e for e in A.events if e[1] == "revoked" and e[0] >= t_term - 0.5]
check(set(e[2] for e in a_rev) >= set(own_a),
      "mailroomd A logged the revoke of its partitions %s on SIGTERM: %s" %
      (own_a, ", ".join("%d commit=%d" % (e[2], e[3]) for e in a_rev) or "none"))
# Where A left off: its commits, against what its consumer was given.
a_last = {}
for d in dl:
    if d[1] == "A":
        a_last[d[5]] = max(a_last.get(d[5], -1), d[6])
b_start = {}
for e in b_after:
    if e[1] == "assigned" and e[2] not in b_start:
        b_start[e[2]] = e[3]
info("A's partitions at the stop: %s" % "; ".join(
    "%d: last delivered @%s, committed %s, B starts at %s" %
    (p, a_last.get(p, "-"),
     ",".join(str(e[3]) for e in a_rev if e[2] == p) or "-",
     b_start.get(p, "-")) for p in own_a))
resumed_late = [p for p in own_a
                if p in b_start and p in a_last and b_start[p] > a_last[p] + 1]
check(not resumed_late, "B resumes each of A's partitions no later than one "
      "past A's last delivery (%s)" % (", ".join(
          "partition %d: B at %d, A delivered up to %d" % (p, b_start[p], a_last[p])
          for p in resumed_late) or "all"))

missing = sorted(i for i, a in acks.items() if a[0] not in first)
check(not missing, "no loss: every acked message was delivered (%d acked, "
      "%d missing%s)" % (len(acks), len(missing), "" if not missing else
                         ": e.g. " + "; ".join(
                             "line %d %s seq %d id=%s acked at %s/%d@%d" %
                             (i, keys[i], seqs[i], acks[i][0], topic,
                              acks[i][1], acks[i][2]) for i in missing[:5])))

# Duplicates: deliveries of an id seen before (before the guard).
dups = [d for d in dl if first[d[2]] is not d]
dup_from_a = [d for d in dups if first[d[2]][1] == "A"]
dup_other = [d for d in dups if first[d[2]][1] != "A"]
redeliv = [d for d in dl if d[7] > 1 or d[8]]
moved_parts = set(own_a)
b_moved = [d for d in dl if d[1] == "B" and d[5] in moved_parts and d[9] >= t_term]
t_first_moved = b_moved[0][9] if b_moved else float("nan")
info("deliveries %d (A %d, B %d), distinct ids %d; duplicates %d (of ids "
     "first delivered through A: %d, through B: %d); deliveries with "
     "attempt > 1 or redelivery: %d" %
     (len(dl), cons["A"]["n"], cons["B"]["n"], len(first), len(dups),
      len(dup_from_a), len(dup_other), len(redeliv)))
if dups:
    info("duplicates, e.g.: " + "; ".join(
        "id %s %s seq %d %s/%d@%d: first via %s (attempt %d) at %.3fs, again "
        "via %s attempt %d redelivery %s at %.3fs" %
        (d[2], d[3], d[4], topic, d[5], d[6], first[d[2]][1], first[d[2]][7],
         first[d[2]][9], d[1], d[7], d[8], d[9]) for d in dups[:5]))
check(not dup_other, "no id first delivered through B is delivered again "
      "(%d are%s)" % (len(dup_other), "" if not dup_other else ", e.g. " +
                      ", ".join("%s@%d" % (d[2], d[6]) for d in dup_other[:3])))
check(len(dups) <= BATCH, "duplicates %d <= one fetch of A's consumer (%d): "
      "at most what it held when A stopped" % (len(dups), BATCH))
unmarked = [d for d in dups if d[7] < 2 or not d[8]]
check(not unmarked, "every duplicate comes with attempt > 1 and redelivery "
      "(%d do not%s)" % (len(unmarked), "" if not unmarked else ", e.g. " +
                         "; ".join("%s %s/%d@%d attempt %d redelivery %s" %
                                   (d[2], topic, d[5], d[6], d[7], d[8])
                                   for d in unmarked[:3])))

# The guard: each id applied exactly once across both consumers, and its
# file holds each once.
app = {}
for a in applied:
    app[a[0]] = app.get(a[0], 0) + 1
twice = [i for i, c in app.items() if c > 1]
never = [i for i in first if i not in app]
guard_f.close()
with open(guard_path, "rb") as f:
    gl = f.read().split(b"\n")[:-1]
check(not twice and not never and len(gl) == len(set(gl)) == len(first),
      "the guard applied each of %d delivered ids exactly once across both "
      "consumers (twice: %d, never: %d; guard file %d lines, %d distinct)" %
      (len(first), len(twice), len(never), len(gl), len(set(gl))))
by_line = {}
for mid, k, q, _ in applied:
    by_line[(k, q)] = by_line.get((k, q), 0) + 1
again = [kq for kq, c in by_line.items() if c > 1]
check(not again, "no line applied twice under two ids (%d)" % len(again))

# Per-key order among first deliveries, in the order the driver read them
# (A's deliveries of a key all come before B's: B gets the key only after
# A's revoke).
last = {}
viol = []
for d in dl:
    if first[d[2]] is not d:
        continue
    _, name, mid, k, q, part, off, att, _, t = d
    prev = last.get(k)
    if prev is not None and q <= prev[0]:
        viol.append("%s: seq %d (%s/%d@%d via %s at %.2fs) after seq %d "
                    "(%s/%d@%d via %s at %.2fs)" %
                    (k, q, topic, part, off, name, t, prev[0], topic, prev[1],
                     prev[2], prev[3], prev[4]))
    if prev is None or q > prev[0]:
        last[k] = (q, part, off, name, t)
check(not viol, "per-key order among first deliveries over %d keys (%d "
      "violations%s)" % (len(last), len(viol),
                         "" if not viol else ": " + "; ".join(viol[:5])))
check(b_rc == 0, "mailroomd B exits 0 on SIGTERM at the end (exit %s)" % b_rc)

info("consumer A: %d deliveries, exit %s at %s; consumer B: %d deliveries, "
     "exit %s; unparsable lines %d" %
     (cons["A"]["n"], cons["A"]["rc"],
      "-" if cons["A"]["end"] is None else "%.1fs" % cons["A"]["end"],
      cons["B"]["n"], cons["B"]["rc"], bad_lines[0]))
for name, path in (("A", "consume-A.err"), ("B", "consume-B.err")):
    with open(os.path.join(work, path), errors="replace") as f:
        e = f.read().strip()
    if e:
        info("consumer %s's stderr: %s" % (name, e.replace("\n", " | ")[-400:]))
for d in (A, B):
    w = [l for l in d.grep("level=warning") + d.grep("level=err")
         if "component=kafka" not in l]
    if w:
        info("mailroomd %s warned %d times, e.g. %s" % (d.name, len(w), w[-1]))
a_stop = [l for l in A.grep('msg="stopping"') + A.grep('msg="draining')]
info("mailroomd A's drain in run time: %s; consumer A's last deliveries read "
     "at %s" % ("; ".join("%.3fs %s" % (log_time(l.split()[0][3:]),
                                         l.split("msg=")[1]) for l in a_stop),
                "-" if cons["A"]["last"] is None else "%.3fs" % cons["A"]["last"]))
info("timeline: stream from %.1fs; SIGTERM to A at %.1fs (%d acked); A "
     "exited %.1fs later; B assigned all partitions %.2fs after SIGTERM; B's "
     "first delivery from a partition of A %.2fs after SIGTERM; all "
     "delivered by %.1fs" %
     (t_stream, t_term, snap["acks"], t_a_exit - t_term, t_assigned - t_term,
      t_first_moved - t_term, t_complete))
npass = sum(1 for r in results if r[0])
nfail = len(results) - npass
print("SUMMARY messages=%d acked=%d delivered=%d distinct=%d duplicates=%d "
      "redelivered=%d missing=%d order_violations=%d guard_twice=%d "
      "moved=%s assign_after_term=%.2fs first_moved_delivery=%.2fs "
      "elapsed=%.0fs" %
      (N, len(acks), len(dl), len(first), len(dups), len(redeliv),
       len(missing), len(viol), len(twice), own_a, t_assigned - t_term,
       t_first_moved - t_term, now()))
print("%d passed, %d failed" % (npass, nfail))
sys.exit(0 if nfail == 0 else 1)
PYEOF

if ! mrt_run_driver 260 "$work/driver.py" "$MR" "$MRD" "$work" "$T" "$G" \
    "$messages" "$rate" "${daemon_args[@]}"; then
    mrt_tail_logs 25 "$work"/mailroomd-*.log
    mrt_tail_logs 10 "$work"/publish.err "$work"/consume-*.err
    exit 1
fi
exit 0
