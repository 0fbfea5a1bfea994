#!/usr/bin/env bash
# kill -9 of mailroomd in the middle of a 100,000-message stream (issue #3).
#
# A publisher streams 100,000 messages (keys k0..k999; the payload carries
# the key and a per-key sequence number, ~50 bytes) through `mailroom publish
# --lines --json` into a 4-partition topic, at a bounded rate, while a
# consumer (`mailroom consume --json`, key mode) consumes them through a
# durable idempotency guard. mailroomd is killed with SIGKILL three times,
# once the publisher's acks pass 20 %, 50 % and 80 % and the consumer then
# running is delivering, and restarted on the same URL; the publisher and the
# consumer are restarted when they die with it. The publisher resumes after
# the last line that got an ack line: lines whose ack was an error (in flight
# at the kill) are published again one by one with `--id` and the SAME id
# (`--lines` cannot carry ids); lines that never got an ack line were never
# sent and go out with fresh ids. At the end the consumer runs until idle.
#
# Checks: every message acked to its publisher is delivered; duplicates
# (deliveries beyond the first of an id) are counted per kill and by cause:
# the same record again (a redelivery) or a second record of the id (a
# publish retried after a kill that Kafka had taken); they are bounded
# (<= 5 % of the stream) and no id comes again to the consumer session that
# acked it (the group's dedupe store); the guard applies each id exactly
# once; per key, the first deliveries come in sequence order. The figures
# are printed (SUMMARY line), then "N passed, N failed".
#
# The guard: `mailroom consume --guard FILE` when the CLI has it (an id
# claimed before is printed with "duplicate": true, i.e. not applied; each id
# must be printed exactly once without it), and in any case a guard
# of the test's own on the --json output: a file of claimed ids, appended
# and fsync'd (one group commit per chunk read) before the deliveries of the
# chunk are "applied", reloaded from the file by each consumer incarnation.
#
# Usage: crash_test.sh [embedded|kafka]
#   embedded (default): librdkafka's mock cluster in a process of its own
#             (mailroom_mockd), mailroomd pointed at it with --brokers, so
#             that killing mailroomd does not kill the data. The mock
#             answers no CreateTopics: each subscribe waits ~10 s for the
#             journal topic's, so a consumer starts ~14 s after a restart.
#   kafka:    the fixture's broker ($MR_KAFKA_DIR; exit 77 when unavailable)
# Environment: MR_BINARY_DIR (mailroomd, mailroom, tests/mailroom_mockd),
#   MR_KAFKA_DIR; MR_CRASH_MESSAGES (100000), MR_CRASH_RATE (messages per
#   second offered to the publisher, 1200: ~85 s of stream); KEEP=1 keeps
#   the work directory. About 100 s on 2 cores; every wait is bounded (the
#   driver by 480 s).
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

mode=${1:-embedded}
case "$mode" in
    embedded | kafka) ;;
    *)
        echo "usage: crash_test.sh [embedded|kafka]" >&2
        exit 2
        ;;
esac
: "${MR_BINARY_DIR:?MR_BINARY_DIR must name the build directory}"
MR="$MR_BINARY_DIR/mailroom"
MRD="$MR_BINARY_DIR/mailroomd"
messages=${MR_CRASH_MESSAGES:-100000}
rate=${MR_CRASH_RATE:-1200}
# shellcheck source=cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

command -v python3 >/dev/null || {
    echo "SKIP: python3 is needed to drive the test"
    exit 77
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-crash-XXXXXX")
cleanup() {
    local p
    # The driver's children (mailroomd, publishers, consumers), by pid.
    if [[ -f "$work/pids" ]]; then
        while read -r p; do
            if kill -0 "$p" 2>/dev/null; then
                kill -KILL "$p" 2>/dev/null
            fi
        done <"$work/pids"
    fi
    cluster_stop
    [[ -n ${KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

T="crash-$mode-$$"
G="crash-$mode-$$-g"
# Embedded: the mock in mailroom_mockd, which makes the topic (the mock
# implements no CreateTopics); kafka: the fixture's broker.
cluster_start "$mode" "$work" "$T:4" || exit 1
brokers=$BROKERS

# mailroomd's settings for every incarnation. A mailroomd killed with -9
# leaves its group member behind until the session times out: 6 s (Kafka's
# smallest by default) rather than librdkafka's 45 s keeps each restart's
# rebalance short. lz4 keeps the mock's batches small: it keeps only about
# the last 5 MB of a partition, and the CloudEvents headers are ~150 bytes
# per record uncompressed.
daemon_args=(--brokers "$brokers"
    --set librdkafka.session.timeout.ms=6000
    --set librdkafka.heartbeat.interval.ms=1000
    --set librdkafka.compression.type=lz4)

cat >"$work/driver.py" <<'PYEOF'
import json, os, random, signal, subprocess, sys, threading, time, uuid

(MR, MRD, work, url, topic, group, mode, nmsg, rate) = sys.argv[1:10]
daemon_args = sys.argv[10:]
N = int(nmsg)
RATE = float(rate)
NKEYS = 1000
KILL_AT = (0.2, 0.5, 0.8)
DEADLINE = time.monotonic() + 420          # the whole run, bounded
PAD = 50
SEED = int(os.environ.get("MR_CRASH_SEED") or int(time.time() * 1000) % 1000000)
rng = random.Random(SEED)

lock = threading.RLock()
t0 = time.monotonic()
results = []                                # (ok, text)


def now():
    return time.monotonic() - t0


def say(*a):
    print("[%6.1fs]" % now(), *a, flush=True)


def check(ok, text):
    results.append((bool(ok), text))
    print(("ok: " if ok else "FAIL: ") + text, flush=True)


def info(text):
    print("info: " + text, flush=True)


pidf = open(os.path.join(work, "pids"), "a")


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    pidf.write("%d\n" % p.pid)
    pidf.flush()
    return p


def left():
    return DEADLINE - time.monotonic()


# --- the stream: line i is key k(i % 1000), sequence i // 1000 ----------------
keys = ["k%d" % (i % NKEYS) for i in range(N)]
seqs = [i // NKEYS for i in range(N)]
payloads = []
for i in range(N):
    p = "%s:%06d:" % (keys[i], seqs[i])
    payloads.append(p + "x" * max(0, PAD - len(p)))
line_bytes = [("%s\t%s\n" % (keys[i], payloads[i])).encode() for i in range(N)]


def parse_payload(s):
    k, q, _ = s.split(":", 2)
    return k, int(q)


# --- mailroomd -----------------------------------------------------------------
class Daemon:
    def __init__(self):
        self.p = None
        self.up = threading.Event()
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(work, "mailroomd-%d.log" % self.starts), "w")
        self.p = spawn([MRD, "--listen", url] + daemon_args,
                       stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            r = subprocess.run([MR, "--url", url, "--timeout", "2000", "status"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                self.up.set()
                return True
            if self.p.poll() is not None:
                break
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


daemon = Daemon()
kills = 0                                   # the epoch: kills so far
kill_log = []

# --- the publisher -------------------------------------------------------------
acked = {}          # line -> (id, partition, offset) of its ok ack
err_acks_by_epoch = {}
pub_stats = {"runs": 0, "error_acks": 0, "republished": 0,
             "fresh_after_hang": 0, "dup_acks": 0, "exit_codes": []}
pub_done = threading.Event()
stop_all = threading.Event()


def republish(i, mid):
    """Line i again, with the id it had: retried until acked or too late."""
    end = min(time.monotonic() + 90, DEADLINE)
    while time.monotonic() < end and not stop_all.is_set():
        daemon.up.wait(min(5, max(0.1, left())))
        r = subprocess.run(
            [MR, "--url", url, "--timeout", "15000", "publish", "--id", mid,
             "--json", "%s/%s" % (topic, keys[i]), payloads[i]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            try:
                a = json.loads(r.stdout.splitlines()[-1])
            except (ValueError, IndexError):
                a = {}
            if a.get("status") == "ok" and a.get("id") == mid:
                with lock:
                    acked[i] = (mid, a["partition"], a["offset"])
                    pub_stats["republished"] += 1
                    pub_stats["dup_acks"] += bool(a.get("duplicate"))
                return True
        time.sleep(0.2)
    say("line %d (id %s) could not be published again" % (i, mid))
    return False


def publisher():
    pos = 0
    errf = open(os.path.join(work, "publish.err"), "ab")
    ackf = open(os.path.join(work, "acks.jsonl"), "a")
    while pos < N and not stop_all.is_set() and left() > 0:
        daemon.up.wait(min(5, max(0.1, left())))
        if not daemon.up.is_set():
            continue
        start = pos
        pub_stats["runs"] += 1
        p = spawn([MR, "--url", url, "--timeout", "15000", "publish", "--lines",
                   "-K", "\t", "--batch", "50", "--json", topic],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf)
        state = {"written": start, "last_ack": time.monotonic()}

        def feed():
            tstart = time.monotonic()
            try:
                for i in range(start, N):
                    p.stdin.write(line_bytes[i])
                    state["written"] = i + 1
                    if (i - start) % 50 == 49:
                        p.stdin.flush()
                        d = tstart + (i - start + 1) / RATE - time.monotonic()
                        if d > 0:
                            time.sleep(d)
                    if p.poll() is not None or stop_all.is_set():
                        break
                p.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass

        def watchdog():
            # A publisher that hangs: no ack for 60 s while it has lines.
            while p.poll() is None:
                if time.monotonic() - state["last_ack"] > 60 or left() < 0:
                    say("publisher hangs (no ack for 60 s): killing it")
                    p.send_signal(signal.SIGKILL)
                    return
                time.sleep(0.5)

        tf = threading.Thread(target=feed, daemon=True)
        tw = threading.Thread(target=watchdog, daemon=True)
        tf.start()
        tw.start()
        k = 0
        failed = []
        for raw in p.stdout:
            state["last_ack"] = time.monotonic()
            i = start + k
            k += 1
            ackf.write(raw.decode("utf-8", "replace"))
            try:
                a = json.loads(raw)
            except ValueError:
                failed.append((i, None))
                continue
            if a.get("status") == "ok":
                with lock:
                    acked[i] = (a["id"], a["partition"], a["offset"])
            else:
                failed.append((i, a.get("id")))
        ackf.flush()
        rc = p.wait()
        tf.join(10)
        pub_stats["exit_codes"].append(rc)
        pub_stats["error_acks"] += len(failed)
        err_acks_by_epoch[kills] = err_acks_by_epoch.get(kills, 0) + len(failed)
        if failed or rc != 0:
            say("publisher run %d exited %d after %d ack lines from line %d "
                "(%d error acks)" % (pub_stats["runs"], rc, k, start,
                                     len(failed)))
        # Error acks came for lines in flight at the kill: again, in line
        # order (so per key), with the same id.
        for i, mid in failed:
            if not mid:
                # An ack line that names no id: its first id is unknown.
                pub_stats["fresh_after_hang"] += 1
                mid = str(uuid.uuid4())
            republish(i, mid)
        pos = start + k
        if rc == -signal.SIGKILL and state["written"] > pos:
            # Killed by the watchdog: lines sent without an ack line go out
            # again with fresh ids (their first ids are unknown).
            pub_stats["fresh_after_hang"] += state["written"] - pos
    pub_done.set()


# --- the consumer and its guard ------------------------------------------------
deliveries = []     # (epoch, incarnation, id, key, seq, partition, offset, attempt)
applied = []        # (id, key, seq), in the order applied
cli_applied = []    # (id, applied flag) when the CLI's guard reports one
guard_path = os.path.join(work, "guard.ids")
cli_guard = os.path.join(work, "cli-guard.ids")
cons_stats = {"incarnations": 0, "exit_codes": [], "bad_lines": 0,
              "runs": []}
consumer_proc = [None]
has_cli_guard = "--guard" in subprocess.run(
    [MR, "consume", "--help"], stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT, text=True).stdout


def guard_load():
    claimed = set()
    try:
        with open(guard_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return claimed
    # A torn last line (no newline) was never claimed.
    for l in data.split(b"\n")[:-1]:
        claimed.add(l.decode())
    return claimed


def consume_chunk(lines, inc, claimed, gf, delf):
    batch = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            k, q = parse_payload(d["payload"])
        except (ValueError, KeyError, TypeError):
            cons_stats["bad_lines"] += 1
            continue
        batch.append((d, k, q))
        delf.write(raw.decode("utf-8", "replace") + "\n")
    # Claim first (one fsync for the chunk), then apply.
    to_apply = []
    for d, k, q in batch:
        if d["id"] not in claimed:
            claimed.add(d["id"])
            gf.write((d["id"] + "\n").encode())
            to_apply.append((d["id"], k, q))
    if to_apply:
        gf.flush()
        os.fsync(gf.fileno())
    with lock:
        for d, k, q in batch:
            deliveries.append((kills, inc, d["id"], k, q, d["partition"],
                               d["offset"], d.get("attempt", 1)))
            if has_cli_guard and "duplicate" in d:
                # --guard: "duplicate" is an id claimed before (not applied).
                cli_applied.append((d["id"], not d["duplicate"]))
        applied.extend(to_apply)


def consumer():
    errf = open(os.path.join(work, "consume.err"), "ab")
    delf = open(os.path.join(work, "deliveries.jsonl"), "a")
    while not stop_all.is_set() and left() > 0:
        daemon.up.wait(min(5, max(0.1, left())))
        if not daemon.up.is_set() or stop_all.is_set():
            continue
        cons_stats["incarnations"] += 1
        inc = cons_stats["incarnations"]
        claimed = guard_load()
        gf = open(guard_path, "ab")
        # Subscribing waits for the group's join (the mock's first JoinGroup
        # takes 3 s; after a kill the dead member's session must expire).
        # --reconnect 0: the consumer dies with mailroomd and is started
        # again here, so that an incarnation is one session (the checks
        # below count by incarnation); consume_restart_test.sh has the
        # consumer that rides through.
        cmd = [MR, "--url", url, "--timeout", "30000", "consume", "-g", group,
               "--mode", "key", "--json", "--batch", "200", "--reconnect", "0"]
        if has_cli_guard:
            cmd += ["--guard", cli_guard]
        p = spawn(cmd + [topic], stdout=subprocess.PIPE, stderr=errf)
        consumer_proc[0] = p
        buf = b""
        fd = p.stdout.fileno()
        with lock:
            run = {"inc": inc, "start": now(), "first": None, "last": None,
                   "n0": len(deliveries)}
            cons_stats["current"] = run
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            if run["first"] is None:
                run["first"] = now()
            run["last"] = now()
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            consume_chunk(lines, inc, claimed, gf, delf)
        if buf:
            consume_chunk([buf], inc, claimed, gf, delf)
        rc = p.wait()
        gf.close()
        delf.flush()
        cons_stats["exit_codes"].append(rc)
        with lock:
            run["n"] = len(deliveries) - run["n0"]
            run["end"] = now()
            cons_stats["runs"].append(run)
            cons_stats["current"] = None
        say("consumer incarnation %d exited %d" % (inc, rc))
        if not stop_all.is_set():
            time.sleep(0.2)


# --- the run -------------------------------------------------------------------
info("seed %d (MR_CRASH_SEED=%d repeats the kill timings)" % (SEED, SEED))
if not daemon.start():
    check(False, "mailroomd starts")
    sys.exit(1)
tp = threading.Thread(target=publisher, daemon=True)
tc = threading.Thread(target=consumer, daemon=True)
tp.start()
tc.start()

def consumer_running():
    """Deliveries of the consumer incarnation now running (0: none yet)."""
    with lock:
        r = cons_stats.get("current")
        return 0 if r is None else len(deliveries) - r["n0"]


# Each kill once the publisher's acks passed its mark and the consumer is
# delivering (a mailroomd restart costs the consumer a rejoin: the dead
# member's session must expire first), so that both sides are mid-stream.
for frac in KILL_AT:
    target = int(frac * N)
    end = min(time.monotonic() + 150, DEADLINE)
    while (len(acked) < target or consumer_running() < 500) and \
            time.monotonic() < end and not pub_done.is_set():
        time.sleep(0.02)
    # Somewhere in the publisher's request cycle (a batch of 50 lines every
    # 50 / RATE s), not always just after an ack.
    time.sleep(rng.uniform(0, 50.0 / RATE))
    with lock:
        snap = {"at": frac, "acks": len(acked), "deliveries": len(deliveries),
                "consumer_run": consumer_running(), "t": now()}
    if pub_done.is_set() or snap["acks"] < target:
        check(False, "kill at %d%%: the stream ended or stalled first (%d "
              "acks, the consumer incarnation had %d deliveries)" %
              (frac * 100, snap["acks"], snap["consumer_run"]))
        continue
    if snap["consumer_run"] < 500:
        info("kill at %d%% of acks: the consumer was not delivering yet" %
             (frac * 100))
    daemon.kill9()
    kills += 1
    say("kill -9 #%d of mailroomd at %d acks (%.0f%%), %d deliveries (%d by "
        "the consumer now running)" %
        (kills, snap["acks"], 100.0 * snap["acks"] / N, snap["deliveries"],
         snap["consumer_run"]))
    kill_log.append(snap)
    time.sleep(0.3)
    if not daemon.start():
        check(False, "mailroomd restarts after kill %d" % kills)
        stop_all.set()
        break

# The publisher finishes; then the consumer goes on until idle.
tp.join(max(1, left()))
say("publisher done: %d of %d lines acked" % (len(acked), N))
with lock:
    want = set(a[0] for a in acked.values())
end = min(time.monotonic() + 120, DEADLINE + 30)
idle_since, seen = time.monotonic(), -1
while time.monotonic() < end:
    with lock:
        n = len(deliveries)
        have = set(d[2] for d in deliveries) if n != seen else None
    if n != seen:
        seen, idle_since = n, time.monotonic()
        complete = want <= have
    # Idle: everything acked was seen, and nothing more came for 5 s (a
    # second copy of an id, further on in a partition, would show by then).
    if complete and time.monotonic() - idle_since > 5:
        break
    time.sleep(0.2)
stop_all.set()
p = consumer_proc[0]
if p is not None and p.poll() is None:
    p.send_signal(signal.SIGINT)
tc.join(20)
if p is not None and p.poll() is None:
    p.send_signal(signal.SIGKILL)
    tc.join(10)
daemon.stop()
say("stopped")

# --- checks --------------------------------------------------------------------
with lock:
    dl = list(deliveries)
    acks = dict(acked)
first = {}                  # id -> index in dl of its first delivery
for n, d in enumerate(dl):
    first.setdefault(d[2], n)

check(len(kill_log) >= 3 and len(set(s["acks"] for s in kill_log)) == len(kill_log),
      "mailroomd killed -9 %d times, at %s acks" %
      (len(kill_log), ", ".join(
          "%d (%.0f%%; the consumer running had delivered %d)" %
          (s["acks"], 100.0 * s["acks"] / N, s["consumer_run"])
          for s in kill_log)))
check(len(acks) == N, "the publisher got an ok ack for %d of %d lines "
      "(%d runs, exit codes %s; %d error acks at kills, republished with "
      "their ids: %d, of which mailroomd called %d duplicates)" %
      (len(acks), N, pub_stats["runs"], pub_stats["exit_codes"],
       pub_stats["error_acks"], pub_stats["republished"], pub_stats["dup_acks"]))

missing = sorted((i for i, a in acks.items() if a[0] not in first))
check(not missing, "every acked message was delivered (%d acked, %d missing%s)" %
      (len(acks), len(missing), "" if not missing else ": e.g. " + "; ".join(
          "line %d %s seq %d id=%s acked at %s/%d@%d" %
          (i, keys[i], seqs[i], acks[i][0], topic, acks[i][1], acks[i][2])
          for i in missing[:5])))

# Duplicates: deliveries beyond the first of an id, by the kill before them,
# and by cause: the same record again (a redelivery: same partition and
# offset) or a second record with the id (a publish retried after a kill
# that Kafka had taken the first time, which the group's dedupe on the id
# should hold back).
nk = len(kill_log)
redel_after = [0] * (nk + 1)
copy_after = [0] * (nk + 1)
dup_ids = set()
copy_examples = []
same_session = []   # an id again in the session that had acked it
for n, d in enumerate(dl):
    f = dl[first[d[2]]]
    if first[d[2]] == n:
        continue
    dup_ids.add(d[2])
    if f[1] == d[1]:
        same_session.append((d, f))
    if (f[5], f[6]) == (d[5], d[6]):
        redel_after[d[0]] += 1
    else:
        copy_after[d[0]] += 1
        if len(copy_examples) < 3:
            copy_examples.append(
                "id %s (%s seq %d) at %s/%d@%d, first delivered from @%d "
                "(incarnation %d), again in incarnation %d" %
                (d[2], d[3], d[4], topic, d[5], d[6], f[6], f[1], d[1]))
ndup = sum(redel_after) + sum(copy_after)
redeliv = sum(1 for d in dl if d[7] > 1)
per_kill = "; ".join(
    "kill %d: %d redelivered + %d second copies (publisher had %d in "
    "flight)" % (k, redel_after[k], copy_after[k], err_acks_by_epoch.get(k, 0))
    for k in range(1, nk + 1))
info("deliveries %d, distinct ids %d, duplicates %d (%.3f%% of %d): %d "
     "redeliveries of a record, %d second records of an id; ids delivered "
     "more than once %d; deliveries with attempt > 1: %d" %
     (len(dl), len(first), ndup, 100.0 * ndup / N, N, sum(redel_after),
      sum(copy_after), len(dup_ids), redeliv))
info("duplicates by the kill before them: %s; before any kill: %d + %d" %
     (per_kill or "none", redel_after[0], copy_after[0]))
if copy_examples:
    info("an id published twice (a retry after a kill) was delivered twice "
         "to the group: " + "; ".join(copy_examples))
# `mailroom consume` acks a batch (and waits for the answer) before it
# fetches the next, and key mode hands out a key's next record only after
# the previous one was acked: an id delivered twice to one consumer session
# came again after mailroomd had answered its ack (issue #3, 5a).
check(not same_session,
      "no id is delivered again to the session that acked it (the group's "
      "dedupe store; %d such deliveries%s)" %
      (len(same_session), "" if not same_session else ": e.g. " + "; ".join(
          "id %s (%s seq %d) acked from %s/%d@%d, delivered again from "
          "@%d (attempt %d) in consumer incarnation %d" %
          (d[2], d[3], d[4], topic, f[5], f[6], d[6], d[7], d[1])
          for d, f in same_session[:3])))
check(ndup <= N // 20, "duplicate deliveries %d <= 5%% of the stream (%d)" %
      (ndup, N // 20))

# The guard: each id applied exactly once, over all consumer incarnations.
app_count = {}
for a in applied:
    app_count[a[0]] = app_count.get(a[0], 0) + 1
twice = [i for i, c in app_count.items() if c > 1]
never = [i for i in first if i not in app_count]
check(not twice and not never,
      "the guard applied each of %d delivered ids exactly once over %d "
      "consumer incarnations (applied twice: %d%s, never: %d)" %
      (len(first), cons_stats["incarnations"], len(twice),
       "" if not twice else " e.g. " + ", ".join(twice[:3]), len(never)))
by_line = {}
for mid, k, q in applied:
    by_line[(k, q)] = by_line.get((k, q), 0) + 1
logical = sum(1 for c in by_line.values() if c > 1)
info("lines applied more than once under different ids: %d (lines resent "
     "with fresh ids after a publisher hang: %d)" %
     (logical, pub_stats["fresh_after_hang"]))
if has_cli_guard:
    cnt = {}
    for mid, f in cli_applied:
        cnt[mid] = cnt.get(mid, 0) + (1 if f else 0)
    bad = [m for m, c in cnt.items() if c != 1]
    check(cli_applied and not bad,
          "mailroom consume --guard: each of %d ids printed once not marked "
          "duplicate, over %d deliveries (%d ids applied %s)" %
          (len(cnt), len(cli_applied), len(bad),
           "0 or 2+ times" if not bad else "0 or 2+ times, e.g. " +
           ", ".join("%s x%d" % (m, cnt[m]) for m in bad[:3])))
else:
    info("mailroom consume has no --guard: the test's own guard (fsync'd "
         "id file) was used")

# Per-key order among first deliveries.
last = {}
viol = []
for n, d in enumerate(dl):
    if first[d[2]] != n:
        continue
    epoch, inc, mid, k, q, part, off, att = d
    prev = last.get(k)
    if prev is not None and q <= prev[0]:
        viol.append("%s: seq %d (id %s, %s/%d@%d, incarnation %d) after seq "
                    "%d (%s/%d@%d, incarnation %d)" %
                    (k, q, mid, topic, part, off, inc, prev[0], topic, prev[1],
                     prev[2], prev[3]))
    if prev is None or q > prev[0]:
        last[k] = (q, part, off, inc)
check(not viol, "per-key order among first deliveries over %d keys (%d "
      "violations%s)" % (len(last), len(viol),
                         "" if not viol else ": " + "; ".join(viol[:5])))

info("consumer incarnations %d (exit codes %s), unparsable lines %d; "
     "mailroomd started %d times" %
     (cons_stats["incarnations"], cons_stats["exit_codes"],
      cons_stats["bad_lines"], daemon.starts))
for r in cons_stats["runs"]:
    info("consumer incarnation %d: started at %.1fs, first delivery %s, "
         "%d deliveries, last at %s, ended at %.1fs" %
         (r["inc"], r["start"],
          "-" if r["first"] is None else "after %.1fs" % (r["first"] - r["start"]),
          r["n"], "-" if r["last"] is None else "%.1fs" % r["last"], r["end"]))
npass = sum(1 for r in results if r[0])
nfail = len(results) - npass
print("SUMMARY mode=%s messages=%d kills=%d acked=%d delivered=%d "
      "distinct=%d duplicates=%d (%s) missing=%d order_violations=%d "
      "guard_twice=%d elapsed=%.0fs" %
      (mode, N, len(kill_log), len(acks), len(dl), len(first), ndup,
       "/".join("%d+%d" % (redel_after[k], copy_after[k])
                for k in range(1, nk + 1)) or "-", len(missing),
       len(viol), len(twice), now()))
print("%d passed, %d failed" % (npass, nfail))
sys.exit(0 if nfail == 0 else 1)
PYEOF

if [[ $mode == kafka ]]; then
    # A first mailroomd only to create the topic; the driver starts its own.
    url="ipc://$work/setup.sock"
    "$MRD" --listen "$url" --brokers "$brokers" >"$work/setup.log" 2>&1 &
    setup_pid=$!
    echo "$setup_pid" >>"$work/pids"
    for _ in $(seq 300); do
        "$MR" --url "$url" --timeout 2000 status >/dev/null 2>&1 && break
        kill -0 "$setup_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! "$MR" --url "$url" --timeout 30000 topics create "$T" --partitions 4 >"$work/topics.out" 2>&1; then
        echo "FAIL: mailroom topics create $T --partitions 4: $(cat "$work/topics.out")"
        exit 1
    fi
    kill -TERM "$setup_pid"
    wait "$setup_pid" 2>/dev/null
fi

timeout -k 10 480 python3 -u "$work/driver.py" "$MR" "$MRD" "$work" \
    "ipc://$work/mailroomd.sock" "$T" "$G" "$mode" "$messages" "$rate" \
    "${daemon_args[@]}"
rc=$?

# What Kafka holds: an id written twice is a publish retried after a kill
# that Kafka had taken the first time (the publish dedupe window died with
# mailroomd); the group's dedupe must keep the second one from the handler.
if command -v kcat >/dev/null; then
    timeout 120 kcat -b "$brokers" -C -t "$T" -o beginning -e -q -f '%h\n' 2>/dev/null |
        sed -n 's/.*ce_id=\([^,]*\).*/\1/p' >"$work/kafka.ids"
    python3 - "$work/kafka.ids" <<'EOF2'
import collections, sys
ids = collections.Counter(l.strip() for l in open(sys.argv[1]))
print("info: Kafka holds %d records of the topic, %d distinct ids, %d ids "
      "written more than once" % (sum(ids.values()), len(ids),
                                  sum(1 for n in ids.values() if n > 1)))
EOF2
fi
if [[ $mode == embedded ]]; then
    # The mock drops the oldest records beyond ~5 MB a partition: say so if
    # it did (in the topic, or in the group's journal), since a loss or a
    # duplicate could then be the mock's and not mailroomd's.
    for t in "$T" "__mailroom.journal.$G"; do
        for p in 0 1 2 3; do
            lo=$(timeout 30 kcat -b "$brokers" -C -t "$t" -p "$p" -o beginning -c 1 -e -q \
                -f '%o\n' 2>/dev/null | head -n 1)
            if [[ -n $lo && $lo != 0 ]]; then
                echo "info: the mock dropped $t [$p] before offset $lo (its 5 MB limit)"
            fi
        done
    done
fi
if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "FAIL: the driver did not finish in 480 s"
    echo "mailroomd logs (last lines each):"
    for f in "$work"/mailroomd-*.log; do
        echo "--- $f"
        tail -n 15 "$f"
    done
    echo "--- publish.err"
    tail -n 10 "$work/publish.err" 2>/dev/null
    echo "--- consume.err"
    tail -n 10 "$work/consume.err" 2>/dev/null
    exit 1
fi
exit 0
