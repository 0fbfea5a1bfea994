#!/usr/bin/env bash
# Per-key order on the publish path (issue #7): messages that one client
# sends to one key are written to Kafka in the order it sent them, however
# many requests are in flight, through the producer's fatal-error recovery
# and with a slow broker.
#
# Each case streams 200 keys x 50 messages (line i: key k(i mod 200),
# payload "k<key>:<seq>" with seq = i div 200) through `mailroom publish
# --lines --json` at its defaults (1,000 lines a request, up to 64 requests
# in flight) into a new topic of 8 partitions, on a mailroomd of its own,
# then reads the topic back with kcat (partition, offset, key, payload,
# ce_id) and checks:
#   - every line got an ok ack, the CLI exited 0, and each ack names a
#     record (partition, offset) that holds its id and its payload;
#   - per key, the acks' offsets increase in the order of the lines;
#   - every line is in Kafka, under one id only: a second record of an id
#     is a duplicate (allowed: at-least-once), counted and printed; a line
#     under two ids, or a second record of an id with another payload, is
#     not;
#   - per key, among the first record of each id, in offset order, the
#     sequence numbers increase: an "inversion" is a record whose seq is
#     below one that came before it in its key (also counted: inverted
#     pairs, and keys with any inversion).
# Cases:
#   a  the lines from a file, at once (the issue's reproduction);
#   b  the lines in 5 bursts of 2,000 (2 requests each); after each of the
#      first 4, the admin op fault.producer_fatal (mailroomd with
#      fault_injection=true) while the burst is acked, then its acks are
#      awaited: the producer's fatal-error recovery runs 4 times mid-stream;
#   c  a slow broker: the first burst, then the broker slowed, then the other
#      8,000 lines at once. Embedded: fault.broker_rtt 50 ms on the mock
#      cluster until the acks are in. Kafka: a client quota
#      (producer_byte_rate, kafka.admin.ConfigCommand from the fixture's
#      jars) on mailroomd's own client.id, so that only this test's producer
#      is throttled; skipped, with the reason, when the jars or java are not
#      there.
# A SUMMARY line per case gives lines, acks, records read, duplicates,
# inversions; then "N passed, N failed".
#
# Usage: order_test.sh [embedded|kafka]
#   embedded (default): mailroomd on its in-process mock cluster, read back
#             with kcat while it runs
#   kafka:    the fixture's broker ($MR_KAFKA_DIR; exit 77 with the reason
#             when $MR_KAFKA_DIR/unavailable exists)
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR,
#   MR_ORDER_CASES (default "a,b,c"), MAILROOM_KAFKA_CACHE (the fixture's jar
#   cache, as tests/kafka/kafka.sh), KEEP=1 keeps the work directory.
#   Every wait is bounded (the driver by 400 s in all; a case takes a few
#   seconds on the embedded cluster, about 10 s for (c) on Kafka).
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat python3 timeout
# The jars of the fixture's Kafka, for a client quota in case (c).
kafka_libs="${MAILROOM_KAFKA_CACHE:-${HOME:-/root}/.cache/mailroom/kafka-4.1.1}/libs"
cases=${MR_ORDER_CASES:-a,b,c}

# The driver's children (mailroomd, publishers) are in $work/pids.
mrt_workdir order

cat >"$work/driver.py" <<'PYEOF'
import json, os, shutil, signal, subprocess, sys, threading, time

(MR, MRD, work, mode, brokers, kafka_libs, cases) = sys.argv[1:8]
NKEYS, PER_KEY = 200, 50
N = NKEYS * PER_KEY
PARTITIONS = 8
BURST = 2000                                # 2 requests at the CLI's default
DEADLINE = time.monotonic() + 380           # the whole run, bounded
RUN = "%d-%d" % (os.getpid(), int(time.time()) % 100000)

keys = ["k%d" % (i % NKEYS) for i in range(N)]
seqs = [i // NKEYS for i in range(N)]
payloads = ["%s:%d" % (keys[i], seqs[i]) for i in range(N)]
line_bytes = [("%s\t%s\n" % (keys[i], payloads[i])).encode() for i in range(N)]
lines_path = os.path.join(work, "lines.txt")
with open(lines_path, "wb") as f:
    f.write(b"".join(line_bytes))

results = []                                # (ok, text)
summaries = []
pidf = open(os.path.join(work, "pids"), "a")
t0 = time.monotonic()


def check(ok, text):
    results.append((bool(ok), text))
    print(("ok: " if ok else "FAIL: ") + text, flush=True)
    return bool(ok)


def info(text):
    print("info: [%5.1fs] %s" % (time.monotonic() - t0, text), flush=True)


def left(cap):
    return max(1.0, min(cap, DEADLINE - time.monotonic()))


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    pidf.write("%d\n" % p.pid)
    pidf.flush()
    return p


def run(cmd, timeout=60, stdin=subprocess.DEVNULL):
    try:
        r = subprocess.run(cmd, stdin=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=left(timeout))
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        return 124, "", "timed out after %ds: %s" % (e.timeout, " ".join(cmd))


class Daemon:
    def __init__(self, case, sets):
        self.url = "ipc://%s/%s.sock" % (work, case)
        self.log = os.path.join(work, "mailroomd-%s.log" % case)
        cmd = [MRD, "--listen", self.url]
        if brokers:
            cmd += ["--brokers", brokers]
        for s in sets:
            cmd += ["--set", s]
        self.p = spawn(cmd, stdin=subprocess.DEVNULL,
                       stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        self.bootstrap = None
        end = time.monotonic() + left(30)
        while time.monotonic() < end and self.p.poll() is None:
            st = self.status()
            if st is not None:
                self.bootstrap = st["kafka"]["bootstrap"]
                return
            time.sleep(0.1)

    def mr(self, *args, timeout=60):
        return run([MR, "--url", self.url] + list(args), timeout)

    def status(self):
        rc, out, _ = run([MR, "--url", self.url, "--timeout", "5000",
                          "status", "--json"], 10)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def admin(self, req):
        """Runs an admin op; returns an error sentence, or None."""
        rc, out, err = self.mr("admin", json.dumps(req), timeout=30)
        try:
            ok = json.loads(out).get("ok") is True
        except ValueError:
            ok = False
        if rc == 0 and ok:
            return None
        return "exit %d: %s %s" % (rc, out.strip(), err.strip())

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(left(30))
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return -1
        return self.p.returncode

    def log_tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Publisher:
    """`mailroom publish TOPIC --lines -K TAB --json`, at its defaults
    otherwise; acks are read as they come (one line each, in the order of
    the lines)."""

    def __init__(self, d, case, topic, from_file):
        cmd = [MR, "--url", d.url, "publish", topic, "--lines", "-K", "\t",
               "--json"]
        if from_file:
            cmd += ["-f", lines_path]
        self.err = os.path.join(work, "publish-%s.err" % case)
        self.p = spawn(cmd, stdin=subprocess.DEVNULL if from_file
                       else subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=open(self.err, "w"))
        self.acks = []
        self.bad = []
        self.cv = threading.Condition()
        self.written = 0
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            try:
                a = json.loads(raw)
            except ValueError:
                a = {"status": "unparsable", "raw": raw[:200]}
            with self.cv:
                self.acks.append(a)
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def write(self, lo, hi):
        self.p.stdin.write(b"".join(line_bytes[lo:hi]))
        self.p.stdin.flush()
        self.written = hi

    def nacks(self):
        with self.cv:
            return len(self.acks)

    def wait_acks(self, n, timeout):
        """Waits (bounded) until n ack lines came or the CLI ended."""
        end = time.monotonic() + left(timeout)
        with self.cv:
            while len(self.acks) < n and time.monotonic() < end:
                if not self.t.is_alive():
                    break
                self.cv.wait(min(1.0, max(0.01, end - time.monotonic())))
            return len(self.acks) >= n

    def finish(self, timeout=120):
        if self.p.stdin is not None and not self.p.stdin.closed:
            self.p.stdin.close()
        try:
            rc = self.p.wait(left(timeout))
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
            info("mailroom publish did not end within %ds: killed" % timeout)
        self.t.join(left(10))
        return rc

    def stderr(self):
        with open(self.err, errors="replace") as f:
            return f.read()[-500:]


def read_back(bootstrap, topic):
    """The topic's records, by kcat: (partition, offset, key, payload,
    ce_id), in offset order per partition; or None and why."""
    rc, out, err = run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o",
                        "beginning", "-e", "-q", "-f",
                        "%p\t%o\t%k\t%s\t%h\n"], 120)
    if rc != 0:
        return None, "kcat exited %d: %s" % (rc, err.strip()[-300:])
    recs = []
    for line in out.split("\n"):
        if not line:
            continue
        f = line.split("\t")
        if len(f) != 5:
            recs.append((-1, -1, None, line, None))
            continue
        cid = None
        for h in f[4].split(","):
            if h.startswith("ce_id="):
                cid = h[len("ce_id="):]
                break
        recs.append((int(f[0]), int(f[1]), f[2], f[3], cid))
    recs.sort(key=lambda r: (r[0], r[1]))
    return recs, None


def analyse(case, pub, rc, recs):
    """The checks every case shares; returns the SUMMARY's figures."""
    acks = list(pub.acks)
    fig = {"lines": N, "acks": len(acks), "records": len(recs)}

    # The acks: one per line, all ok, the CLI exit 0.
    errs = [(i, a) for i, a in enumerate(acks) if a.get("status") != "ok"]
    check(rc == 0 and len(acks) == N and not errs,
          "%s: mailroom publish exit %d, %d ack lines for %d lines, %d not "
          "ok%s%s" % (case, rc, len(acks), N, len(errs),
                      "" if not errs else ": e.g. " + "; ".join(
                          "line %d: %s" % (i, json.dumps(a)[:200])
                          for i, a in errs[:3]),
                      "" if rc == 0 else "; stderr: " + pub.stderr()))
    fig["ack_errors"] = len(errs) + max(0, N - len(acks))

    # Kafka's records: first occurrence of each id, duplicates.
    at = {}                                 # (partition, offset) -> record
    first = {}                              # id -> record
    ids_of_line = {}                        # payload -> set of ids
    dups, bad_dups, foreign = [], [], []
    for r in recs:
        p, o, k, s, cid = r
        at[(p, o)] = r
        q = s.split(":")
        if cid is None or k is None or len(q) != 2 or q[0] != k or \
                not q[1].isdigit():
            foreign.append(r)
            continue
        ids_of_line.setdefault(s, set()).add(cid)
        f = first.get(cid)
        if f is None:
            first[cid] = r
        elif (f[2], f[3]) == (k, s):
            dups.append((r, f))
        else:
            bad_dups.append((r, f))
    fig["duplicates"] = len(dups)
    if dups:
        info("%s: %d duplicates (a second record of an id, same key and "
             "payload): e.g. %s" % (case, len(dups), "; ".join(
                 "%s id=%s at %d@%d, first at %d@%d" %
                 (r[3], r[4], r[0], r[1], f[0], f[1]) for r, f in dups[:5])))
    check(not foreign, "%s: every record read back is one of the stream's "
          "(%d are not: e.g. %s)" % (case, len(foreign), foreign[:3]))
    check(not bad_dups, "%s: a second record of an id carries the first's "
          "key and payload (%d do not%s)" % (
              case, len(bad_dups), "" if not bad_dups else ": e.g. " +
              "; ".join("id=%s %s at %d@%d, first %s at %d@%d" %
                        (r[4], r[3], r[0], r[1], f[3], f[0], f[1])
                        for r, f in bad_dups[:3])))
    missing = [i for i in range(N) if payloads[i] not in ids_of_line]
    multi = sorted(s for s, v in ids_of_line.items() if len(v) > 1)
    fig["missing"] = len(missing)
    check(not missing, "%s: every line is in Kafka (%d missing%s)" %
          (case, len(missing), "" if not missing else ": e.g. " +
           ", ".join(payloads[i] for i in missing[:5])))
    check(not multi, "%s: every line is in Kafka under one id (%d lines "
          "under several%s)" % (case, len(multi), "" if not multi else
                                 ": e.g. " + ", ".join(multi[:5])))

    # Each ok ack names a record with its id and payload; per key, the acks'
    # offsets increase in the order of the lines.
    wrong, ack_inv, last = [], [], {}
    for i, a in enumerate(acks[:N]):
        if a.get("status") != "ok":
            continue
        r = at.get((a.get("partition"), a.get("offset")))
        if r is None or r[4] != a.get("id") or r[3] != payloads[i]:
            wrong.append((i, a, r))
            continue
        prev = last.get(keys[i])
        if prev is not None and (a["partition"], a["offset"]) <= prev[1]:
            ack_inv.append((i, a, prev))
        last[keys[i]] = (i, (a["partition"], a["offset"]))
    fig["ack_inversions"] = len(ack_inv)
    check(not wrong, "%s: each ack names a record holding its id and line "
          "(%d do not%s)" % (case, len(wrong), "" if not wrong else
                              ": e.g. " + "; ".join(
                                  "line %d (%s) ack %d@%d id=%s, record %s" %
                                  (i, payloads[i], a.get("partition", -1),
                                   a.get("offset", -1), a.get("id"), r)
                                  for i, a, r in wrong[:3])))
    check(not ack_inv, "%s: per key, the acks' offsets increase in the order "
          "of the lines (%d do not%s)" % (
              case, len(ack_inv), "" if not ack_inv else ": e.g. " +
              "; ".join("%s acked at %d@%d, after %s at %d@%d" %
                        (payloads[i], a["partition"], a["offset"],
                         payloads[j], pv[0], pv[1])
                        for i, a, (j, pv) in ack_inv[:3])))

    # Per key, in offset order, the first record of each id.
    by_key = {}
    for r in recs:
        if r[4] is not None and first.get(r[4]) is r:
            by_key.setdefault(r[2], []).append(r)
    inv, pairs, bad_keys, examples = 0, 0, 0, []
    for k in sorted(by_key, key=lambda k: int(k[1:]) if k[1:].isdigit()
                    else -1):
        rs = by_key[k]
        qs = [int(r[3].split(":")[1]) for r in rs]
        parts = set(r[0] for r in rs)
        if len(parts) != 1:
            examples.append("%s is in partitions %s" % (k, sorted(parts)))
        top, n = -1, 0
        for j, q in enumerate(qs):
            if q < top:
                n += 1
                if len(examples) < 5:
                    examples.append("%s: seq %d at %d@%d after seq %d" %
                                    (k, q, rs[j][0], rs[j][1], top))
            top = max(top, q)
        # Inverted pairs: p before r in the log with seq(p) > seq(r).
        pairs += sum(1 for a in range(len(qs)) for b in range(a + 1, len(qs))
                     if qs[a] > qs[b])
        inv += n
        bad_keys += n > 0
    fig["inversions"] = inv
    fig["inverted_pairs"] = pairs
    fig["keys_out_of_order"] = bad_keys
    check(inv == 0 and bad_keys == 0 and not any(
        "partitions" in e for e in examples),
          "%s: per key, the first records of the ids are in the order sent "
          "(%d inversions, %d inverted pairs, %d of %d keys out of order%s)"
          % (case, inv, pairs, bad_keys, len(by_key), "" if not examples
             else ": e.g. " + "; ".join(examples)))
    return fig


def summary(case, fig, extra=""):
    line = ("SUMMARY mode=%s case=%s lines=%d acks=%d ack_errors=%d "
            "records=%d duplicates=%d missing=%d inversions=%d "
            "inverted_pairs=%d keys_out_of_order=%d ack_inversions=%d%s" %
            (mode, case, fig["lines"], fig["acks"], fig["ack_errors"],
             fig["records"], fig["duplicates"], fig["missing"],
             fig["inversions"], fig["inverted_pairs"],
             fig["keys_out_of_order"], fig["ack_inversions"], extra))
    summaries.append(line)
    print(line, flush=True)


def setup(case, sets):
    d = Daemon(case, sets)
    if d.bootstrap is None:
        check(False, "%s: mailroomd starts; its log:\n%s" % (case,
                                                              d.log_tail()))
        d.stop()
        return None, None
    topic = "order-%s-%s-%s" % (case, mode, RUN)
    rc, out, err = d.mr("topics", "create", topic, "--partitions",
                        str(PARTITIONS), timeout=60)
    if not check(rc == 0, "%s: topics create %s --partitions %d (exit %d%s)"
                 % (case, topic, PARTITIONS, rc,
                    "" if rc == 0 else ": " + (out + err).strip())):
        d.stop()
        return None, None
    return d, topic


def finish(case, d, topic, pub, rc, extra=""):
    recs, why = read_back(d.bootstrap, topic)
    if recs is None:
        check(False, "%s: read %s back: %s" % (case, topic, why))
        recs = []
    # Kept with KEEP=1, for a closer look.
    with open(os.path.join(work, "acks-%s.jsonl" % case), "w") as f:
        for a in pub.acks:
            f.write(json.dumps(a) + "\n")
    with open(os.path.join(work, "records-%s.tsv" % case), "w") as f:
        for r in recs:
            f.write("\t".join(str(x) for x in r) + "\n")
    fig = analyse(case, pub, rc, recs)
    summary(case, fig, extra)
    st = d.stop()
    check(st == 0, "%s: mailroomd exits 0 on SIGTERM (%d)%s" %
          (case, st, "" if st == 0 else "; its log:\n" + d.log_tail()))


# --- a: the issue's reproduction ---------------------------------------------
def case_a():
    d, topic = setup("a", [])
    if d is None:
        return
    t = time.monotonic()
    pub = Publisher(d, "a", topic, True)
    rc = pub.finish(120)
    info("a: %d lines published from a file in %.2fs" %
         (N, time.monotonic() - t))
    finish("a", d, topic, pub, rc)


# --- b: the producer's fatal-error recovery, 4 times mid-stream ---------------
def case_b():
    d, topic = setup("b", ["fault_injection=true"])
    if d is None:
        return
    pub = Publisher(d, "b", topic, False)
    faults, midway, fault_errs = 0, 0, []
    for lo in range(0, N, BURST):
        hi = min(N, lo + BURST)
        pub.write(lo, hi)
        if hi < N:
            # The burst's requests are on their way: the fatal error lands
            # among them (unless they were all acked already; counted).
            why = d.admin({"op": "fault.producer_fatal"})
            n = pub.nacks()
            if why is None:
                faults += 1
                midway += n < hi
                info("b: fault.producer_fatal #%d with %d of the %d lines "
                     "written acked" % (faults, n, hi))
            else:
                fault_errs.append(why)
        if not pub.wait_acks(hi, 90):
            info("b: lines up to %d not all acked within 90 s (%d acks)" %
                 (hi, pub.nacks()))
            break
    rc = pub.finish(60)
    st = d.status() or {}
    prod = st.get("producer", {})
    check(faults == 4 and not fault_errs,
          "b: fault.producer_fatal answered ok 4 times (%d%s)" %
          (faults, "" if not fault_errs else "; " + "; ".join(fault_errs)))
    check(prod.get("recreations", 0) >= 1,
          "b: mailroomd recreated its producer (status .producer: %s)" %
          json.dumps(prod))
    # Records unconfirmed at a fatal error are sent again by the new
    # producer: none means no fault caught a record on its way, and the
    # case did not exercise the recovery it is about.
    check(prod.get("resent", 0) >= 1,
          "b: the recovery resent records caught in flight (status "
          ".producer.resent %s)" % prod.get("resent"))
    # A fault that came after its burst was all acked exercised nothing.
    check(midway >= 2, "b: at least 2 of the faults came while lines "
          "written were not yet acked (%d)" % midway)
    finish("b", d, topic, pub, rc,
           " faults=%d faults_mid_stream=%d recreations=%s resent=%s" %
           (faults, midway, prod.get("recreations"), prod.get("resent")))


# --- c: a slow broker ---------------------------------------------------------
def quota(bootstrap, client_id, rate):
    """A producer_byte_rate quota on client_id (None: removed), with
    Kafka's own ConfigCommand; returns an error sentence, or None."""
    java = shutil.which("java")
    if java is None:
        return "java not found"
    if not os.path.isdir(kafka_libs):
        return "no Kafka jars in %s" % kafka_libs
    cmd = [java, "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
           "-cp", os.path.join(kafka_libs, "*"), "kafka.admin.ConfigCommand",
           "--bootstrap-server", bootstrap, "--alter", "--entity-type",
           "clients", "--entity-name", client_id]
    if rate is None:
        cmd += ["--delete-config", "producer_byte_rate"]
    else:
        cmd += ["--add-config", "producer_byte_rate=%d" % rate]
    rc, out, err = run(cmd, 60)
    if rc != 0:
        return "ConfigCommand exit %d: %s" % (rc, (out + err).strip()[-300:])
    return None


def case_c():
    # 100 kB/s: Kafka measures a client's rate over ~10 s, so the ~1.7 MB
    # stream is throttled once about 1 MB has gone through.
    rate = 100000
    client_id = "mailroom-order-test-%s" % RUN
    sets = ["fault_injection=true"] if mode == "embedded" else \
        ["librdkafka.client.id=" + client_id]
    d, topic = setup("c", sets)
    if d is None:
        return
    if mode == "kafka":
        why = quota(d.bootstrap, client_id, rate)
        if why is not None:
            print("SKIP: case c on real Kafka: no client quota to slow the "
                  "broker with: %s" % why, flush=True)
            d.stop()
            return
    pub = Publisher(d, "c", topic, False)
    t = time.monotonic()
    pub.write(0, BURST)
    if mode == "embedded":
        why = d.admin({"op": "fault.broker_rtt", "broker": 1, "rtt_ms": 50})
        check(why is None, "c: fault.broker_rtt 50 ms%s" %
              ("" if why is None else ": " + why))
        slow = "rtt_ms=50"
    else:
        slow = "producer_byte_rate=%d" % rate
    pub.write(BURST, N)
    pub.wait_acks(N, 120)
    took = time.monotonic() - t
    if mode == "embedded":
        why = d.admin({"op": "fault.broker_rtt", "broker": 1, "rtt_ms": 0})
        check(why is None, "c: fault.broker_rtt back to 0%s" %
              ("" if why is None else ": " + why))
    rc = pub.finish(60)
    info("c: %d lines through a slow broker (%s) in %.1fs" % (N, slow, took))
    finish("c", d, topic, pub, rc, " slow=%s" % slow)
    if mode == "kafka":
        why = quota(brokers, client_id, None)
        if why is not None:
            info("c: the quota on %s stays: %s" % (client_id, why))


for c in cases.split(","):
    fn = {"a": case_a, "b": case_b, "c": case_c}.get(c.strip())
    if fn is None:
        check(False, "unknown case '%s' in MR_ORDER_CASES" % c)
        continue
    if time.monotonic() > DEADLINE:
        check(False, "case %s: no time left" % c)
        continue
    fn()

for line in summaries:
    print(line)
npass = sum(1 for ok, _ in results if ok)
nfail = len(results) - npass
print("%d passed, %d failed" % (npass, nfail))
sys.exit(0 if nfail == 0 else 1)
PYEOF

mrt_run_driver 400 "$work/driver.py" "$MR" "$MRD" "$work" "$mode" \
    "$brokers" "$kafka_libs" "$cases"
