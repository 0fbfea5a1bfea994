#!/usr/bin/env python3
"""The driver of http_outage_test.sh (read it first): HTTP publishers and
an HTTP consumer under a kill -9 of mailroomd, then HTTP traffic while
Kafka is down, each part checked from what Kafka holds.

usage: http_outage_driver.py MR MRD WORK PYDIR MODE BROKERS HTTP URL TOPIC
                             GROUP [KAFKA_SH BROKER_DIR]
"""
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

MR, MRD, WORK, PYDIR, MODE, BROKERS, HTTP, URL, TOPIC, GROUP = sys.argv[1:11]
KAFKA_SH, BROKER_DIR = (sys.argv[11:13] + [None, None])[:2]
sys.path.insert(0, PYDIR)
from mailroom_http import Mailroom, MailroomError  # noqa: E402

N = int(os.environ.get("MR_HTTP_OUTAGE_MESSAGES") or 2000)
RATE = 250.0  # messages per second offered by the publishers together
CONNS, BATCH, NKEYS = 2, 50, 20  # connection c publishes keys k(c*10)..
KILL_PUBLISH_AT = 0.3  # of N acked
KILL_CONSUME_AT = 0.4  # of N acked by the consumer
DOWN_S = float(os.environ.get("MR_HTTP_OUTAGE_DOWN_S") or 10)
SEED = int(os.environ.get("MR_HTTP_OUTAGE_SEED") or
           int(time.time() * 1000) % 1000000)
T0 = time.monotonic()
DEADLINE = T0 + (330 if MODE == "kafka" else 300)  # the whole run, bounded
TOKEN = open(os.path.join(WORK, "token")).readline().strip()
HOST, PORT = urllib.parse.urlsplit(HTTP).hostname, urllib.parse.urlsplit(
    HTTP).port
lock = threading.Lock()
results = []
rng = random.Random(SEED)


def now():
    return time.monotonic() - T0


def left(end=None):
    """Seconds to end (a time.monotonic()), or to the run's deadline."""
    return min(DEADLINE, end or DEADLINE) - time.monotonic()


def say(*a):
    print("[%6.1fs]" % now(), *a, flush=True)


def info(text):
    print("info: " + text, flush=True)


def check(ok, text):
    results.append(bool(ok))
    print(("ok: " if ok else "FAIL: ") + text, flush=True)


def e_g(items, n=3):
    return "" if not items else ": e.g. " + "; ".join(map(str, items[:n]))


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


def thread(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def get(conn, path):
    """GET path on the http.client connection conn: (status, JSON), status
    0 and {"exception": ...} when no answer came."""
    try:
        conn.request("GET", path,
                     headers={"Authorization": "Bearer " + TOKEN})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    except (OSError, http.client.HTTPException, ValueError) as e:
        conn.close()
        return 0, {"exception": repr(e)}


# --- mailroomd: the HTTP API on HTTP, the nng protocol on URL ----------------
class Daemon:
    def __init__(self):
        self.p = None
        self.starts = 0

    def start(self, args):
        self.starts += 1
        log = open(os.path.join(WORK, "mailroomd-%d.log" % self.starts), "w")
        self.p = spawn([MRD, "--listen", URL, "--set", "http.listen=" + HTTP,
                        "--set", "http.token_file=" + os.path.join(WORK,
                                                                   "token")]
                       + args, stdout=log, stderr=subprocess.STDOUT, cwd=WORK)
        end = min(time.monotonic() + 60, DEADLINE)
        conn = http.client.HTTPConnection(HOST, PORT, timeout=2)
        while time.monotonic() < end and self.p.poll() is None:
            r = subprocess.run([MR, "--url", URL, "--timeout", "2000",
                                "status"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0 and get(conn, "/healthz")[0] == 200:
                conn.close()
                return True
            time.sleep(0.1)
        conn.close()
        say("mailroomd #%d did not become ready (exit %s)" %
            (self.starts, self.p.poll()))
        return False

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        """SIGTERM; its exit code (None when it had to be killed)."""
        if self.p is None or self.p.poll() is not None:
            return None if self.p is None else self.p.returncode
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()
            return None


def read_topic(topic, brokers):
    """Every record of topic as (partition, offset, key, ce_id, value),
    sorted, and "" or why kcat failed."""
    try:
        r = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-o",
                            "beginning", "-e", "-q", "-f",
                            "%p\t%o\t%k\t%h\t%s\n"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return [], ": kcat did not finish in 120 s"
    recs = []
    for l in r.stdout.decode("utf-8", "replace").splitlines():
        f = l.split("\t", 4)
        if len(f) == 5:
            hdrs = dict(h.split("=", 1) for h in f[3].split(",") if "=" in h)
            recs.append((int(f[0]), int(f[1]), f[2], hdrs.get("ce_id"), f[4]))
    recs.sort()
    return recs, "" if r.returncode == 0 else ": kcat exited %d: %s" % (
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


# --- the stream: message i is key k(i % 20), seq i // 20, id m<i> -----------
keys = ["k%d" % (i % NKEYS) for i in range(N)]
seqs = [i // NKEYS for i in range(N)]
ids = ["m%05d" % i for i in range(N)]
values = ["%s:%06d" % (keys[i], seqs[i]) for i in range(N)]
index = {m: i for i, m in enumerate(ids)}
daemon = Daemon()
killable = ["--brokers", BROKERS,
            "--set", "librdkafka.session.timeout.ms=6000",
            "--set", "librdkafka.heartbeat.interval.ms=1000"]


# --- part 1: two publishers, each on a connection, each request resent with
# the same ids until it is acked --------------------------------------------
class Publisher:
    def __init__(self, c):
        per = NKEYS // CONNS
        mine = [i for i in range(N) if c * per <= i % NKEYS < (c + 1) * per]
        self.batches = [mine[j:j + BATCH] for j in range(0, len(mine), BATCH)]
        self.mr = Mailroom(HTTP, token=TOKEN, timeout=30)
        self.acks = {}  # id -> (partition, offset, duplicate): the last 200
        self.unanswered = set()  # ids of requests once left without answer
        self.outcomes = {}  # "200", "503 MR_EUNAVAIL", "0 MR_ECONNREFUSED"
        self.given_up = []
        self.sent_at = None  # when the request in flight was sent
        self.period = len(self.batches[0]) / (RATE / CONNS)
        self.end = time.monotonic() + 150  # the part's bound
        self.thread = thread(self.run)

    def run(self):
        start = time.monotonic()
        for j, b in enumerate(self.batches):
            d = start + j * self.period - time.monotonic()
            if d > 0:
                time.sleep(d)
            msgs = [{"key": keys[i], "value": values[i], "id": ids[i]}
                    for i in b]
            while True:
                if left(self.end) <= 0:
                    self.given_up.append((j, "the part's deadline"))
                    return
                self.sent_at = time.monotonic()
                try:
                    acks = self.mr.publish(TOPIC, msgs)
                    out = "200"
                except MailroomError as e:
                    acks, out = None, "%d %s" % (e.status, e.error)
                    if e.status == 0:
                        with lock:
                            self.unanswered.update(ids[i] for i in b)
                    elif e.status < 500 and e.status != 429:
                        self.given_up.append((j, "%s: %s" % (out, e.message)))
                        break
                self.sent_at = None
                with lock:
                    self.outcomes[out] = self.outcomes.get(out, 0) + 1
                    if acks is not None:
                        for a in acks:
                            self.acks[a["id"]] = (a["partition"], a["offset"],
                                                  a["duplicate"])
                if acks is not None:
                    break
                time.sleep(0.1)  # the same ids, again


def acked_count(pubs):
    with lock:
        return sum(len(p.acks) for p in pubs)


def part1():
    say("part 1: %d messages over HTTP, %d connections, batches of %d, "
        "keys k0..k%d" % (N, CONNS, BATCH, NKEYS - 1))
    pubs = [Publisher(c) for c in range(CONNS)]
    ok = wait_for(lambda: acked_count(pubs) >= KILL_PUBLISH_AT * N, 120, 0.01)

    # The kill lands in a request: mailroomd is stopped (SIGSTOP) `into`
    # after a request was sent, or with one in flight when none lasts that
    # long. It may have answered that one just before: a request sent after
    # the stop cannot be answered, so the kill waits for one (a publisher
    # sends every 0.4 s) and no run goes without a request to resend.
    into = rng.uniform(0.001, 0.010)

    def in_flight(age):
        t = [p.sent_at for p in pubs if p.sent_at is not None]
        return t and time.monotonic() - min(t) >= age

    def stuck():  # sent after the stop, or still without an answer 1 s on
        t = [p.sent_at for p in pubs if p.sent_at is not None]
        n = time.monotonic()
        return any(x >= t_stop and n - x >= 0.2 for x in t) or (
            t and n - t_stop >= 1)

    if ok and not wait_for(lambda: in_flight(into), 2, 0.0005):
        into = 0
        ok = wait_for(lambda: in_flight(0), 30, 0.0005)
    at, back, t_stop = acked_count(pubs), False, time.monotonic()
    killed = ok and at < N
    if killed:
        daemon.p.send_signal(signal.SIGSTOP)
        killed = wait_for(stuck, 10, 0.01)
        t_kill = now()
        daemon.kill9()
        say("kill -9 of mailroomd at %d acks (stopped %.0f ms before)" %
            (at, 1000 * (time.monotonic() - t_stop)))
        time.sleep(0.3)
        back = daemon.start(killable)
        say("mailroomd back (%.1f s after the kill)" % (now() - t_kill))
    check(killed and back, "mailroomd killed -9 at %d of %d acks (%.0f%%), "
          "stopped %.1f ms into a request, restarted on the same port and "
          "URL" % (at, N, 100.0 * at / N, into * 1000))
    for p in pubs:
        p.thread.join(max(1, left(p.end)))
    outcomes = {}
    for p in pubs:
        for k, v in p.outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
    acks = {}
    for p in pubs:
        acks.update(p.acks)
    unanswered = set().union(*(p.unanswered for p in pubs))
    given_up = [g for p in pubs for g in p.given_up]
    info("publish requests by answer: %s (0: no answer)" %
         ", ".join("%s x%d" % kv for kv in sorted(outcomes.items())))
    check(set(acks) == set(ids) and not given_up and unanswered, "the "
          "publishers resent every request that failed or got no answer "
          "with the same ids until acked: %d of %d ids acked; %d attempts "
          "without an answer, of %d ids%s" %
          (len(set(acks) & set(ids)), N, sum(
              v for k, v in outcomes.items() if k.startswith("0 ")),
           len(unanswered), e_g(given_up)))

    recs, why = read_topic(TOPIC, BROKERS)
    check(recs and not why, "kcat read %d records of %s%s" %
          (len(recs), TOPIC, why))
    at_pos = {(r[0], r[1]): r[2:] for r in recs}
    wrong = [(m, a, at_pos.get(a[:2])) for m, a in sorted(acks.items())
             if m not in index or at_pos.get(a[:2]) !=
             (keys[index[m]], m, values[index[m]])]
    check(acks and not wrong, "every ack the publishers saw (partition, "
          "offset) holds that id, with its key and value, in Kafka (%d do "
          "not%s)" % (len(wrong), e_g(wrong)))
    copies = {}
    for r in recs:
        copies[r[3]] = copies.get(r[3], 0) + 1
    missing = [m for m in ids if m not in copies]
    foreign = [r for r in recs if r[3] not in index]
    check(not missing and not foreign, "every id is in Kafka (%d missing%s), "
          "and nothing else (%d records of other ids%s)" %
          (len(missing), e_g(missing), len(foreign), e_g(foreign)))
    seen, firsts = set(), []
    for part, off, k, m, v in recs:
        if m in index and m not in seen:
            seen.add(m)
            firsts.append((k, seqs[index[m]], "%d@%d" % (part, off)))
    inv = inversions(firsts)
    check(not inv, "per key, the first records of ids in Kafka are in "
          "publish order over %d keys (%d inversions%s)" %
          (len({f[0] for f in firsts}), len(inv), e_g(inv)))
    dups = sorted(m for m, c in copies.items() if c > 1)
    stray = [m for m in dups if m not in unanswered]
    check(len(dups) <= CONNS * BATCH and not stray, "ids written twice: %d "
          "(<= %d, the messages of the requests in flight at the kill), each "
          "of a request that got no answer (%d not%s)" %
          (len(dups), CONNS * BATCH, len(stray), e_g(stray)))
    return len(recs), len(dups)


# --- part 2: one HTTP consumer (key mode) of the topic, mailroomd killed -9
# mid-way; the consumer subscribes again when its session is gone ----------
class Consumer:
    def __init__(self):
        self.mr = Mailroom(HTTP, token=TOKEN, timeout=30)
        self.dl = []  # (t, session no, id, partition, offset, attempt)
        self.acked_at = {}  # id -> the session whose ack was answered
        self.delivered = set()
        self.outstanding = set()  # delivered, ack not answered
        # Set: the next batch is held (not acked) until cleared, and
        # `parked` says one is.
        self.hold = threading.Event()
        self.parked = threading.Event()
        self.sessions = 0
        self.gone = []  # (t, status, error, message) of a lost session
        self.errors = {}
        self.done = False
        self.end = time.monotonic() + 150  # the part's bound
        self.thread = thread(self.run)

    def error(self, what, e):
        k = "%s %d %s" % (what, e.status, e.error)
        with lock:
            self.errors[k] = self.errors.get(k, 0) + 1

    def run(self):
        s, idle = None, 0
        while left(self.end) > 0 and idle < 3:
            if s is None:
                try:
                    s = self.mr.subscribe(GROUP, TOPIC, mode="key")
                    self.sessions += 1
                    say("consumer: session %d opened" % self.sessions)
                except MailroomError as e:
                    self.error("subscribe", e)
                    time.sleep(0.2)
                    continue
            try:
                got = s.fetch(max_messages=100, wait_ms=1000)
            except MailroomError as e:
                self.error("fetch", e)
                if e.status == 404:
                    with lock:
                        self.gone.append((now(), e.status, e.error,
                                          e.message))
                    s = None
                else:
                    time.sleep(0.1)  # mailroomd away: the session, again
                continue
            with lock:
                for m in got:
                    self.dl.append((now(), self.sessions, m["id"],
                                    m["partition"], m["offset"],
                                    m["attempt"]))
                    self.outstanding.add(m["id"])
                    self.delivered.add(m["id"])
                everything = len(self.delivered) >= len(index)
            # Done once every id came and 3 fetches (3 s) bring nothing.
            idle = idle + 1 if not got and everything else 0
            if not got:
                continue
            time.sleep(0.02)  # the work: the kill may land here
            if self.hold.is_set():
                self.parked.set()
                while self.hold.is_set() and left(self.end) > 0:
                    time.sleep(0.01)
            try:
                r = s.ack(got)
            except MailroomError as e:
                self.error("ack", e)
                continue  # not acked: they come again
            failed = {str(f["handle"]) for f in r.get("failed") or []}
            with lock:
                for m in got:
                    if m["handle"] not in failed:
                        self.acked_at.setdefault(m["id"], self.sessions)
                        self.outstanding.discard(m["id"])
        if s is not None:
            try:
                s.close()
            except MailroomError as e:
                self.error("close", e)
        self.done = True


def part2():
    say("part 2: an HTTP consumer of %s (group %s, key mode)" %
        (TOPIC, GROUP))
    c = Consumer()
    ok = wait_for(lambda: len(c.acked_at) >= KILL_CONSUME_AT * N, 120, 0.01)
    # The kill lands while the consumer holds messages (fetched, not
    # acked), a second after it got them: their attempts, written to the
    # journal behind the FETCH's answer (within ~20 ms, by the journal's
    # report thread when no write follows), are in Kafka by then.
    c.hold.set()
    ok = ok and wait_for(c.parked.is_set, 30, 0.001)
    time.sleep(1.0)
    with lock:
        at, n_at = len(c.acked_at), len(c.dl)
        t_kill, t_back, back = now(), None, False
        killed = ok and at < N
        if killed:
            daemon.kill9()
    if killed:
        say("kill -9 of mailroomd at %d acked, %d delivered" % (at, n_at))
        c.hold.clear()  # its ack fails: the session is gone
        time.sleep(0.3)
        back = daemon.start(killable)
        t_back = now()
        say("mailroomd back (%.1f s after the kill)" % (t_back - t_kill))
    c.thread.join(max(1, left(c.end) + 35))
    # Before the kill is what session 1 saw: an answer mailroomd sent just
    # before it may be read just after it, but nothing of session 2 can be.
    dl = c.dl
    acked_before = {m for m, s in c.acked_at.items() if s == 1}
    held = {d[2] for d in dl if d[1] == 1} - acked_before
    check(killed and back, "mailroomd killed -9 with the consumer mid-way "
          "(%d of %d ids acked, %d delivered and not acked), restarted" %
          (len(acked_before), N, len(held)))
    info("consumer: %d sessions, errors %s" % (c.sessions, ", ".join(
        "%s x%d" % kv for kv in sorted(c.errors.items())) or "none"))
    # The consumer drops its session on a 404 alone (any other error: the
    # same session again), so this says which answer a lost session gets.
    gone = [g for g in c.gone if back and g[0] > t_kill and
            re.search(r"^no session", g[3])]
    check(c.done and gone and c.sessions == 2, "after the restart the "
          "consumer's session answers 404 MR_ENOENT (\"%s\"); it subscribes "
          "again and finishes: %d sessions, done %s" %
          (gone[0][3][:90] if gone else "never seen", c.sessions, c.done))
    first = {}
    for n, d in enumerate(dl):
        first.setdefault(d[2], n)
    missing = [m for m in ids if m not in first]
    unacked = [m for m in ids if m not in c.acked_at]
    # An ack in flight at the kill may be in the journal without its answer:
    # such an id is not delivered again, and so never acked by the consumer.
    lost = [m for m in unacked if m not in held]
    check(not missing and not lost and len(first) == N, "every id "
          "delivered at least once (%d of %d) and acked, but for %d whose "
          "ack was in flight at the kill (%d others not acked%s)" %
          (len(first), N, len(unacked), len(lost), e_g(missing or lost)))
    inv = inversions((keys[index[d[2]]], seqs[index[d[2]]], "%d@%d, "
                      "session %d" % (d[3], d[4], d[1]))
                     for n, d in enumerate(dl)
                     if d[2] in index and first[d[2]] == n)
    check(not inv, "per key, first deliveries are in publish order (%d "
          "inversions%s)" % (len(inv), e_g(inv)))
    again_acked = [d for d in dl if d[1] > 1 and d[2] in acked_before]
    check(not again_acked, "nothing whose ack was answered before the kill "
          "is delivered after it (the group's journal has every ack: %d "
          "acked, %d delivered again%s)" %
          (len(acked_before), len(again_acked), e_g(again_acked)))
    again = [d for n, d in enumerate(dl) if first[d[2]] != n]
    stray = [d for d in again if d[2] not in held]
    low = [d for d in again if d[5] < 2]
    check(len(again) <= len(held) and not stray and not low,
          "deliveries again: %d, each of an id held (delivered, not acked) "
          "at the kill (%d held, %d not%s), with attempt >= 2 (%d not)" %
          (len(again), len(held), len(stray), e_g(stray), len(low)))
    return len(dl), len(again)


# --- part 3: Kafka away under HTTP traffic ---------------------------------
class DownPublisher:
    """One connection publishing 10 messages a request (ids d<i>, keys
    d0..d3), one request after another, until stopped."""

    def __init__(self, topic):
        self.topic = topic
        self.mr = Mailroom(HTTP, token=TOKEN, timeout=60)
        self.log = []  # (sent, answered, status, error, message, [acks])
        self.n = 0
        self.stop = False
        self.thread = thread(self.run)

    def run(self):
        while not self.stop and left() > 0:
            msgs = [{"key": "d%d" % (i % 4), "value": "d:%06d" % i,
                     "id": "d%05d" % i} for i in range(self.n, self.n + 10)]
            self.n += 10
            sent = now()
            try:
                acks = self.mr.publish(self.topic, msgs)
                rec = (sent, now(), 200, None, None, acks)
            except MailroomError as e:
                rec = (sent, now(), e.status, e.error, e.message, e.acks or [
                    {"id": m["id"], "error": e.error} for m in msgs])
            with lock:
                self.log.append(rec)
            time.sleep(0.1)


class Poller:
    """A second connection, kept open: GET /v1/status, /healthz and /readyz
    in turn, each bounded by 10 s."""

    def __init__(self):
        self.log = []  # (t, path, status, JSON)
        self.stop = False
        self.conns = 0
        self.thread = thread(self.run)

    def run(self):
        conn = None
        while not self.stop and left() > 0:
            for path in ("/v1/status", "/healthz", "/readyz"):
                if conn is None or conn.sock is None:
                    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
                    self.conns += 1
                st, j = get(conn, path)
                with lock:
                    self.log.append((now(), path, st, j))
            time.sleep(0.2)
        conn.close()


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


def kafka_switch(mr, up):
    if MODE == "kafka":
        r = subprocess.run(["bash", KAFKA_SH, "start" if up else "stop",
                            BROKER_DIR], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        return r.returncode == 0
    try:
        mr.admin("fault.broker_up" if up else "fault.broker_down", broker=1)
        return True
    except MailroomError as e:
        say("fault injection: %s" % e)
        return False


def part3():
    t3 = TOPIC + "-down"
    args = ["--set", "producer.message_timeout_ms=3000"]
    args += killable[:2] if MODE == "kafka" else [
        "--set", "fault_injection=true"]
    say("part 3: Kafka down under HTTP traffic (%s)" % (
        "the fixture's broker stopped" if MODE == "kafka"
        else "the embedded cluster, fault.broker_down"))
    if not daemon.start(args):
        check(False, "mailroomd starts for part 3")
        return
    mr = Mailroom(HTTP, token=TOKEN, timeout=60)
    try:
        mr.create_topic(t3, partitions=2)
        brokers = mr.status()["kafka"]["bootstrap"]
    except MailroomError as e:
        check(False, "topic %s made over HTTP: %s" % (t3, e))
        return
    # A session holds 5 messages (h0..h4) through the outage, to ack them
    # while Kafka is away: an ack is answered once the group's journal (in
    # Kafka) has it.
    held, sess = [], None
    try:
        mr.publish(t3, [{"key": "h", "value": "h", "id": "h%d" % i}
                        for i in range(5)])
        sess = mr.subscribe(GROUP + "-down", t3, mode="unordered",
                            ack_deadline_ms=300000)
        end = min(time.monotonic() + 60, DEADLINE)
        while len(held) < 5 and time.monotonic() < end:
            held += sess.fetch(max_messages=5, wait_ms=1000)
    except MailroomError as e:
        say("the session of part 3: %s" % e)
    check(len(held) == 5, "a session of %s-down holds h0..h4 (%d)" %
          (GROUP, len(held)))
    acked_in = []  # (sent, answered, status, error or settled)

    def ack_held():
        sent = now()
        try:
            r = sess.ack(held)
            acked_in.append((sent, now(), 200, r.get("settled")))
        except MailroomError as e:
            acked_in.append((sent, now(), e.status, e.error))

    starts, pub, poll = daemon.starts, DownPublisher(t3), Poller()
    wait_for(lambda: len(pub.log) >= 3, 30)

    def polled(path, since, cond):
        with lock:
            return any(p == path and t >= since and cond(st, j)
                       for t, p, st, j in poll.log)

    guard = kafka_guard() if MODE == "kafka" else None
    t_down = now()
    down_ok = kafka_switch(mr, False)
    say("Kafka down")
    unready = wait_for(lambda: polled("/readyz", t_down,
                                      lambda st, j: st == 503), 60)
    wait_for(lambda: any(r[0] > t_down and r[2] != 200 for r in pub.log), 60)
    acker = thread(ack_held) if held else None
    time.sleep(max(0.0, t_down + DOWN_S - now()))
    t_up = now()
    up_ok = kafka_switch(mr, True)
    if guard is not None:
        open(guard[1], "w").close()
        try:
            guard[0].wait(5)
        except subprocess.TimeoutExpired:
            guard[0].kill()
            guard[0].wait()
    say("Kafka back")
    check(down_ok and up_ok, "Kafka taken away for %.0f s and brought back "
          "(%s)" % (t_up - t_down, "kafka.sh stop, start" if MODE == "kafka"
                    else "fault.broker_down, fault.broker_up over HTTP"))
    ready = wait_for(lambda: polled("/readyz", t_up,
                                    lambda st, j: st == 200), 90)
    acked_again = wait_for(lambda: any(r[0] > t_up and r[2] == 200
                                       for r in pub.log), 90)
    time.sleep(0.5)
    pub.stop = poll.stop = True
    pub.thread.join(max(1, min(70, left())))
    poll.thread.join(max(1, min(15, left())))
    if acker is not None:
        acker.join(max(1, min(70, left())))
    # An ack answered 200 before Kafka was back would be a promise the
    # journal could not keep; 504 MR_EINDOUBT is HTTP's bound (30 s).
    a = acked_in[0] if acked_in else None
    check(a and a[0] < t_up and a[1] > t_up and
          (a[2:] == (200, 5) or a[2:] == (504, "MR_EINDOUBT")),
          "an ack of h0..h4 sent while Kafka is away is answered once it is "
          "back: %s" % ("never" if a is None else "%s %s, sent %s and "
                        "answered %s Kafka was back" % (
                            a[2], a[3], "before" if a[0] < t_up else "after",
                            "before" if a[1] < t_up else "after")))
    again, idle = [], 0
    while sess is not None and idle < 3 and left() > 0:
        try:
            got = sess.fetch(max_messages=500, wait_ms=1000)
            if got:
                sess.ack(got)
        except MailroomError as e:
            say("the session of part 3: %s" % e)
            break
        again += [m["id"] for m in got if m["id"].startswith("h")]
        idle = idle + 1 if not got else 0
    try:
        if sess is not None:
            sess.close()
    except MailroomError as e:
        say("the session of part 3: %s" % e)
    check(sess is not None and not again, "h0..h4, acked in the outage, "
          "are not delivered again (%s)" % (again or "none"))
    same = daemon.p.poll() is None and daemon.starts == starts

    # What the publisher got while Kafka was away: requests sent from the
    # outage to its end, and those answered in it.
    outage = [r for r in pub.log if r[1] > t_down and r[0] < t_up]
    refused = [r for r in outage if r[2] != 200]
    by = {}
    for r in refused:
        k = "%d %s" % (r[2], r[3])
        by[k] = by.get(k, 0) + 1
    info("publish answers in the outage: %d requests, %d refused (%s), "
         "e.g. %s" % (len(outage), len(refused), ", ".join(
             "%s x%d" % kv for kv in sorted(by.items())) or "-",
             "%s; %s" % (refused[-1][4], next((a.get("message") for a in
                                               refused[-1][5]), None))
             if refused else "-"))
    unavail = [r for r in refused if r[2] == 503 and r[3] == "MR_EUNAVAIL"
               and any(re.search(r"Kafka (is|was) unreachable",
                                 a.get("message") or "") for a in r[5])]
    odd = [r[2:5] for r in refused if (r[2], r[3]) not in (
        (503, "MR_EUNAVAIL"), (504, "MR_ETIMEDOUT"), (504, "MR_EINDOUBT"))]
    check(unavail and not odd, "HTTP publishes while Kafka is away are "
          "refused: 503 MR_EUNAVAIL saying Kafka is unreachable (%d of %d "
          "refused requests); every refusal a 503 or 504 with a JSON error "
          "(%d others%s)" % (len(unavail), len(refused), len(odd), e_g(odd)))
    with lock:
        plog = list(poll.log)
    in_out = [x for x in plog if t_down <= x[0] <= t_up]
    r503 = [x for x in in_out if x[1] == "/readyz" and x[2] == 503 and
            x[3].get("kafka") is False and x[3].get("error") == "MR_EUNAVAIL"
            and x[3].get("message")]
    check(unready and r503, "/readyz answers 503 while Kafka is away, kafka "
          "false, MR_EUNAVAIL: \"%s\"" % (r503[0][3]["message"][:100] if r503
                                          else "never"))
    unanswered = [x[:3] for x in in_out if x[2] == 0 or
                  (x[1] != "/readyz" and x[2] != 200)]
    down_seen = [x for x in in_out if x[1] == "/v1/status" and x[2] == 200
                 and x[3].get("kafka", {}).get("reachable") is False]
    check(in_out and not unanswered and down_seen, "a second connection is "
          "answered all through the outage: %d requests (GET /v1/status, "
          "/healthz 200; /v1/status saying Kafka unreachable %d times), %d "
          "not answered 200%s; %d connection%s" %
          (len(in_out), len(down_seen), len(unanswered), e_g(unanswered),
           poll.conns, "" if poll.conns == 1 else "s"))
    check(ready and acked_again and same, "after Kafka is back, without "
          "restarting mailroomd: /readyz 200 again (%s), an HTTP publish "
          "acked again (%s)" % (ready, acked_again))

    # Every id refused is published again, with its id: it is then acked.
    final, refused_ids = {}, {}
    for r in pub.log:
        for a in r[5]:
            if "offset" in a:
                final[a["id"]] = (a["partition"], a["offset"])
            else:
                refused_ids[a["id"]] = a.get("error")
    again = sorted(m for m in refused_ids if m not in final)
    end = min(time.monotonic() + 60, DEADLINE)
    redo = [{"key": "d%d" % (int(m[1:]) % 4), "value": "d:%06d" % int(m[1:]),
             "id": m} for m in again]
    while redo and time.monotonic() < end:
        try:
            for a in mr.publish(t3, redo):
                final[a["id"]] = (a["partition"], a["offset"])
            redo = []
        except MailroomError:
            time.sleep(0.5)
    sent = {"d%05d" % i for i in range(pub.n)}
    unsent = [m for m in sent if m not in final]
    check(not unsent, "every id refused in the outage acked when published "
          "again with the same id (%d ids, %d refused, %d not acked)" %
          (len(sent), len(refused_ids), len(unsent)))
    recs, why = read_topic(t3, brokers)
    at_pos = {(r[0], r[1]): r[3] for r in recs}
    copies = {}
    for r in recs:
        copies[r[3]] = copies.get(r[3], 0) + 1
    wrong = [(m, p) for m, p in final.items() if at_pos.get(p) != m]
    nothing = [m for m, e in refused_ids.items()
               if e in ("MR_EUNAVAIL", "MR_ETIMEDOUT") and copies.get(m) != 1]
    check(recs and not why and not wrong and not nothing, "Kafka holds every "
          "HTTP ack of %s at its position (%d records, %d acks not there%s); "
          "each id refused with nothing written is there once, from its "
          "second publish (%d of %d not%s)%s" %
          (t3, len(recs), len(wrong), e_g(wrong), len(nothing),
           sum(1 for e in refused_ids.values()
               if e in ("MR_EUNAVAIL", "MR_ETIMEDOUT")), e_g(
               [(m, copies.get(m)) for m in nothing]), why))
    rc = daemon.stop()
    check(rc == 0, "mailroomd exits 0 on SIGTERM (exit %s)" % rc)
    return len(outage), len(refused)


# --- the run -----------------------------------------------------------------
info("seed %d (MR_HTTP_OUTAGE_SEED=%d repeats the kill timing)" % (SEED, SEED))
if not daemon.start(killable):
    check(False, "mailroomd starts")
    sys.exit(1)
if MODE == "kafka":
    try:
        Mailroom(HTTP, token=TOKEN).create_topic(TOPIC, partitions=4)
    except MailroomError as e:
        check(False, "topic %s made over HTTP: %s" % (TOPIC, e))
recs, kdups = part1()
deliveries, redelivered = part2()
rc = daemon.stop()
check(rc == 0, "the restarted mailroomd exits 0 on SIGTERM (exit %s)" % rc)
out3 = part3() or (0, 0)
nfail = results.count(False)
print("SUMMARY mode=%s messages=%d kafka_records=%d kafka_dups=%d "
      "deliveries=%d delivered_again=%d outage_requests=%d outage_refused=%d "
      "mailroomd_starts=%d seconds=%.0f" %
      (MODE, N, recs, kdups, deliveries, redelivered, out3[0], out3[1],
       daemon.starts, now()))
print("%d passed, %d failed" % (len(results) - nfail, nfail))
sys.exit(0 if nfail == 0 else 1)
