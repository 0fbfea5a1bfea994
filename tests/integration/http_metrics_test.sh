#!/usr/bin/env bash
# /metrics after a known workload (issue #12), parsed with
# prometheus_client's parser as Prometheus would: mailroomd with its HTTP
# API on a free loopback port; a topic of 2 partitions; 20 messages over
# HTTP (10 keys), 3 of them sent again with their ids (duplicates), 5 more
# with `mailroom publish`; a group fetches all 25 over HTTP, nacks 2 and
# acks the rest, then gets the 2 again (attempt 2) and acks them. Then:
#   - mailroom_publish_messages_total{topic=T}: ok 25, duplicate 3, refused
#     and error 0; the latency histogram counts 28 messages, its buckets
#     cumulative;
#   - the ack latency (record timestamp to ack) of the group counts its 25
#     acks, the nacks not; the second group's counts none;
#   - two processes report restarts of supervisor "accounts" (one twice,
#     2 then 3; the other 4): mailroom_actor_restarts_total is 7, and a
#     report of -1 restarts is refused (400);
#   - for the group: deliveries 27, redeliveries 2, acks 25, nacks 2,
#     failed attempts 2, sessions 1, nothing in flight, breaker closed;
#   - lag and end offsets per partition equal Kafka's own: the ends kcat
#     reads (-Q, the end of each partition), lag 0 and the committed offset
#     at the end once the group committed;
#   - a second group that acked nothing lags by every record: its lag on
#     each partition is kcat's end;
#   - a third group rejects 3 records: mailroom_dlq_quarantined_total 3,
#     and mailroom_dlq_records of its dead-letter topic is what kcat reads;
#   - on a topic X of 8 records, three groups of their own: one holding 5
#     fetched: inflight 5, buffered 8; acked: inflight 0, buffered 3, acks
#     5. One whose 8 outlive a 5 s ack deadline: expiries 8, then fetched
#     again (attempt 2) and acked: deliveries 16, redeliveries 8, failed 8,
#     acks 8; while it lags, lag_seconds > 0 and at most the oldest
#     record's age plus 2 s. One with a breaker of 2 that nacks 2: breaker
#     trips 1, state open (2). And on a topic Y, a bound (max_lag 5,
#     reject) naming a fourth group, that never consumes: the
#     backpressure refused counter and publish result=refused equal the
#     acks that said MR_EBUSY, result=ok those that had an offset, nothing
#     held, 1 partition throttled;
#   - without the token /metrics is 401; every family has HELP and TYPE;
#   - mailroomd logs JSON lines (log.format=json): every line is an object
#     with ts, level and component, and the group is a field of its lines;
#     a quarantine's line has the group and the message's id as fields.
#
# Usage: http_metrics_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need curl python3 kcat
python3 -c 'import prometheus_client' 2>/dev/null || {
    echo "SKIP: python3 has no prometheus_client (scripts/deps.sh test installs it with pip)"
    exit 77
}
mrt_workdir metrics
unset MAILROOM_HTTP_LISTEN

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
U="http://127.0.0.1:$port"
mrt_start_daemon mailroomd --set "http.listen=$U" \
    --set "http.token_file=$work/token" --set lag.interval_ms=200 \
    --set log.format=json
TOKEN=$(cat "$work/token")
mr() { timeout 120 "$MR" --url "$url" "$@"; }
bootstrap=$(mr status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap"])')
T="metrics-$mode-$$" G="mg-$$" G2="mg2-$$"
mr topics create "$T" --partitions 2 >/dev/null || mrt_fail "topics create $T"

# The workload, driven over HTTP with the standard library.
MRT_URL=$U MRT_TOKEN=$TOKEN MRT_TOPIC=$T MRT_GROUP=$G MRT_GROUP2=$G2 \
    timeout 180 python3 - >"$work/driver.out" 2>&1 <<'PY'
import json, os, sys, time, urllib.request

U, TOKEN = os.environ["MRT_URL"], os.environ["MRT_TOKEN"]
T, G, G2 = os.environ["MRT_TOPIC"], os.environ["MRT_GROUP"], os.environ["MRT_GROUP2"]

def call(method, path, body=None):
    req = urllib.request.Request(U + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)

msgs = [{"key": "k%d" % (i % 10), "value": "v%d" % i, "id": "%s-%d" % (T, i)}
        for i in range(20)]
r = call("POST", "/v1/topics/%s/messages" % T, {"messages": msgs})
assert r["published"] == 20 and r["failed"] == 0, r
r = call("POST", "/v1/topics/%s/messages" % T, {"messages": msgs[:3]})
assert all(a["duplicate"] for a in r["acks"]), r
print("published 20, then 3 duplicates")

# Two processes report their restarts, as mr_actors_report does: i-1
# twice (2, then 3: it grew by 1), i-2 once (4); 7 in all. A bad report
# is refused and counts nothing.
for inst, n in (("i-1", 2), ("i-1", 3), ("i-2", 4)):
    call("POST", "/v1/actors", {"process": "svc/" + inst, "instance": inst,
                                "supervisors": [{"name": "accounts", "restarts": n}]})
try:
    call("POST", "/v1/actors", {"process": "svc", "instance": "i-3",
                                "supervisors": [{"name": "accounts", "restarts": -1}]})
    sys.exit("a report of -1 restarts was taken")
except urllib.error.HTTPError as e:
    assert e.code == 400, e.code
print("restarts reported: accounts 7")
PY
[[ $? -eq 0 ]] && mrt_pass "20 messages and 3 duplicates published over HTTP" ||
    mrt_fail "the HTTP publish: $(tail -5 "$work/driver.out")"
for i in 1 2 3 4 5; do
    mr publish "$T/cli" "c$i" >/dev/null || mrt_fail "mailroom publish $i"
done

MRT_URL=$U MRT_TOKEN=$TOKEN MRT_TOPIC=$T MRT_GROUP=$G MRT_GROUP2=$G2 \
    timeout 180 python3 - >"$work/consume.out" 2>&1 <<'PY'
import json, os, time, urllib.request

U, TOKEN = os.environ["MRT_URL"], os.environ["MRT_TOKEN"]
T, G, G2 = os.environ["MRT_TOPIC"], os.environ["MRT_GROUP"], os.environ["MRT_GROUP2"]

def call(method, path, body=None):
    req = urllib.request.Request(U + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)

s = call("POST", "/v1/sessions", {"group": G, "topics": [T], "mode": "unordered",
                                  "retry": {"backoff_initial_ms": 0}})["session"]
got, deadline = [], time.time() + 90
while len(got) < 25 and time.time() < deadline:
    got += call("POST", "/v1/sessions/%s/fetch" % s,
                {"max_messages": 100, "wait_ms": 1000})["messages"]
assert len(got) == 25, len(got)
nacked = [m["handle"] for m in got[:2]]
r = call("POST", "/v1/sessions/%s/nack" % s, {"handles": nacked, "reason": "test"})
assert r["settled"] == 2, r
r = call("POST", "/v1/sessions/%s/ack" % s, {"handles": [m["handle"] for m in got[2:]]})
assert r["settled"] == 23, r
again, deadline = [], time.time() + 60
while len(again) < 2 and time.time() < deadline:
    again += call("POST", "/v1/sessions/%s/fetch" % s,
                  {"max_messages": 100, "wait_ms": 1000})["messages"]
assert len(again) == 2 and all(m["attempt"] == 2 for m in again), again
r = call("POST", "/v1/sessions/%s/ack" % s, {"handles": [m["handle"] for m in again]})
assert r["settled"] == 2, r
# A second group joins and acks nothing: the lag monitor tracks it.
s2 = call("POST", "/v1/sessions", {"group": G2, "topics": [T]})["session"]
call("POST", "/v1/sessions/%s/fetch" % s2, {"max_messages": 1, "wait_ms": 3000})
print("consumed 25, nacked 2, acked 27")
PY
[[ $? -eq 0 ]] && mrt_pass "25 fetched over HTTP, 2 nacked and fetched again, all acked" ||
    mrt_fail "the HTTP consume: $(tail -5 "$work/consume.out")"

# Kafka's own ends of the partitions.
for p in 0 1; do
    kcat -b "$bootstrap" -Q -t "$T:$p:-1" 2>/dev/null |
        awk -v p="$p" '{print p, $NF}'
done >"$work/ends"
[[ $(wc -l <"$work/ends") -eq 2 ]] || mrt_fail "kcat -Q: $(cat "$work/ends")"

[[ $(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$U/metrics") == 401 ]] &&
    mrt_pass "/metrics without the token is 401" ||
    mrt_fail "/metrics without the token is not 401"

# check: scrape until the lag monitor saw G's commits (30 s), then every
# figure above.
MRT_URL=$U MRT_TOKEN=$TOKEN MRT_TOPIC=$T MRT_GROUP=$G MRT_GROUP2=$G2 \
    MRT_ENDS=$work/ends timeout 120 python3 - >"$work/check.out" 2>&1 <<'PY'
import os, time, urllib.request
from prometheus_client.parser import text_string_to_metric_families

U, TOKEN = os.environ["MRT_URL"], os.environ["MRT_TOKEN"]
T, G, G2 = os.environ["MRT_TOPIC"], os.environ["MRT_GROUP"], os.environ["MRT_GROUP2"]
ends = {int(p): int(e) for p, e in (l.split() for l in open(os.environ["MRT_ENDS"]))}
assert sum(ends.values()) == 25, ends

def scrape():
    req = urllib.request.Request(U + "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers
        text = r.read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert "# HELP " + name + " " in text, name
    return fams

def value(fams, family, sample, **labels):
    for s in fams[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None

deadline = time.time() + 30
while True:
    f = scrape()
    lags = [value(f, "mailroom_consumer_lag_messages", "mailroom_consumer_lag_messages",
                  group=G, topic=T, partition=str(p)) for p in (0, 1)]
    lags2 = [value(f, "mailroom_consumer_lag_messages", "mailroom_consumer_lag_messages",
                   group=G2, topic=T, partition=str(p)) for p in (0, 1)]
    if (lags == [0, 0] and lags2 == [ends[0], ends[1]]) or time.time() > deadline:
        break
    time.sleep(0.3)
assert lags == [0, 0], ("lag of %s" % G, lags)
assert lags2 == [ends[0], ends[1]], ("lag of %s" % G2, lags2, ends)
for p in (0, 1):
    for fam in ("mailroom_partition_end_offset", "mailroom_consumer_committed_offset"):
        v = value(f, fam, fam, group=G, topic=T, partition=str(p))
        assert v == ends[p], (fam, p, v, ends)
    assert value(f, "mailroom_consumer_lag_seconds", "mailroom_consumer_lag_seconds",
                 group=G, topic=T, partition=str(p)) == 0

P = "mailroom_publish_messages"
want = {"ok": 25, "duplicate": 3, "refused": 0, "error": 0}
got = {r: value(f, P, P + "_total", topic=T, result=r) for r in want}
assert got == want, got
buckets = sorted((float(s.labels["le"]), s.value)
                 for s in f["mailroom_publish_latency_seconds"].samples
                 if s.name.endswith("_bucket"))
assert buckets[-1] == (float("inf"), 28), buckets
assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
assert value(f, "mailroom_publish_latency_seconds", "mailroom_publish_latency_seconds_count") == 28

# Record timestamp to ack: the 25 acks of G (nacks are not), none of G2's.
A = "mailroom_consumer_ack_latency_seconds"
buckets = sorted((float(s.labels["le"]), s.value) for s in f[A].samples
                 if s.name.endswith("_bucket") and s.labels["group"] == G)
assert buckets[-1] == (float("inf"), 25), buckets
assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
assert value(f, A, A + "_count", group=G) == 25
assert 0 <= value(f, A, A + "_sum", group=G) < 25 * 600
assert value(f, A, A + "_count", group=G2) == 0

for fam, want in (("mailroom_consumer_deliveries", 27), ("mailroom_consumer_redeliveries", 2),
                  ("mailroom_consumer_acks", 25), ("mailroom_consumer_nacks", 2),
                  ("mailroom_consumer_failed_attempts", 2), ("mailroom_consumer_rejects", 0),
                  ("mailroom_consumer_expiries", 0)):
    v = value(f, fam, fam + "_total", group=G)
    assert v == want, (fam, v, want)
for fam, want in (("mailroom_consumer_sessions", 1), ("mailroom_consumer_inflight_messages", 0),
                  ("mailroom_breaker_state", 0)):
    v = value(f, fam, fam, group=G)
    assert v == want, (fam, v, want)
assert value(f, "mailroom_kafka_reachable", "mailroom_kafka_reachable") == 1
R = "mailroom_actor_restarts"
assert value(f, R, R + "_total", supervisor="accounts") == 7, value(f, R, R + "_total")
print("every figure as the workload made it")
PY
if [[ $? -eq 0 ]]; then
    mrt_pass "/metrics: publishes by result, latency, the group's counts, lag and offsets equal Kafka's"
else
    mrt_fail "/metrics: $(tail -8 "$work/check.out")"
fi

# ---- the dead-letter depth: mailroom_dlq_records ----------------------------
# A third group, G3, rejects 3 of T's records: its supervisor writes them
# to its dead-letter topic, D = T.dlq (made here with 2 partitions). While
# G3's session lives, the lag monitor watches D, and
# mailroom_dlq_records{topic=D} must come to the number of records kcat
# reads from D (scraped until equal, within 60 s: the monitor refreshes on
# its interval). Nothing before this block sees G3 or D.
D="$T.dlq" G3="mg3-$$"
mr topics create "$D" --partitions 2 >/dev/null || mrt_fail "topics create $D"
MRT_URL=$U MRT_TOKEN=$TOKEN MRT_TOPIC=$T MRT_DLQ=$D MRT_GROUP3=$G3 \
    MRT_BOOTSTRAP=$bootstrap timeout 180 python3 - >"$work/dlq.out" 2>&1 <<'PY'
import json, os, subprocess, time, urllib.request
from prometheus_client.parser import text_string_to_metric_families

U, TOKEN = os.environ["MRT_URL"], os.environ["MRT_TOKEN"]
T, D, G3 = os.environ["MRT_TOPIC"], os.environ["MRT_DLQ"], os.environ["MRT_GROUP3"]

def call(method, path, body=None):
    req = urllib.request.Request(U + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)

def scrape():
    req = urllib.request.Request(U + "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=30) as r:
        return {f.name: f for f in text_string_to_metric_families(r.read().decode())}

def value(fams, family, sample, **labels):
    for s in fams[family].samples if family in fams else []:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None

s = call("POST", "/v1/sessions", {"group": G3, "topics": [T], "mode": "unordered"})["session"]
got, deadline = [], time.time() + 60
while len(got) < 3 and time.time() < deadline:
    got += call("POST", "/v1/sessions/%s/fetch" % s,
                {"max_messages": 3 - len(got), "wait_ms": 1000})["messages"]
assert len(got) == 3, len(got)
r = call("POST", "/v1/sessions/%s/reject" % s,
         {"handles": [m["handle"] for m in got], "reason": "dlq depth"})
assert r["settled"] == 3, r
deadline = time.time() + 60
while True:
    q = value(scrape(), "mailroom_dlq_quarantined", "mailroom_dlq_quarantined_total", group=G3)
    if q == 3 or time.time() > deadline:
        break
    time.sleep(0.3)
assert q == 3, ("quarantined", q)
# Confirmed by Kafka: kcat reads them all.
out = subprocess.run(["kcat", "-b", os.environ["MRT_BOOTSTRAP"], "-C", "-t", D,
                      "-o", "beginning", "-e", "-q", "-f", "%p %o\n"],
                     capture_output=True, text=True, timeout=60).stdout
held = len(out.splitlines())
# A rebalance may quarantine a record twice (a duplicate, listed once).
assert held >= 3, ("kcat read", held, out)
deadline = time.time() + 60
while True:
    # A request on the session keeps it (and its subscription) alive.
    call("GET", "/v1/sessions/%s/assignment" % s)
    v = value(scrape(), "mailroom_dlq_records", "mailroom_dlq_records", topic=D)
    if v == held or time.time() > deadline:
        break
    time.sleep(0.3)
assert v == held, ("mailroom_dlq_records", D, v, "kcat", held)
print("mailroom_dlq_records{topic=%s} %d, as kcat reads" % (D, held))
PY
if [[ $? -eq 0 ]]; then
    mrt_pass "/metrics: mailroom_dlq_records of the dead-letter topic equals the records kcat reads from it"
else
    mrt_fail "/metrics, the dead-letter depth: $(tail -8 "$work/dlq.out")"
fi
# ---- end of the dead-letter depth -------------------------------------------

# ---- in flight, expiries, the breaker, backpressure, time lag --------------
# Topics X (1 partition, 8 records) and Y (1 partition, empty) and four new
# groups, each on its own, so that no figure above moves:
#   - G4 (default deadline) fetches K=5 of X's 8 and holds them: inflight 5,
#     buffered 8 (the mailbox: in flight included); it acks them: inflight
#     0, buffered 3, acks 5;
#   - G5 (ack deadline 5 s, back-off 0) fetches all 8 and acks none: once
#     the deadline passed, expiries 8 exactly (only 8 were ever out); its
#     time lag on X is above 0 and at most the age of X's oldest record
#     (the fetch's own timestamp_ms) plus 2 s; it fetches the 8 again
#     (attempt 2) and acks them: deliveries 16, redeliveries 8, failed
#     attempts 8, expiries 8, acks 8;
#   - G7 (breaker 2 failures in 600 s, cool-down 600 s) fetches 2 and
#     nacks them: one trip, the breaker open (2), nacks 2;
#   - G6 stops on Y (it never fetches); with a bound on Y of max_lag 5,
#     policy reject, naming G6, batches of 3 messages are published until
#     two are refused: mailroom_backpressure_refused_messages_total and
#     mailroom_publish_messages_total{topic=Y,result=refused} equal the
#     acks that said MR_EBUSY, result=ok those with an offset, nothing
#     held; nothing was refused before 5 were accepted.
# Each is its own line below; the figures are in the failure message.
X="$T-x" Y="$T-bp" G4="mg4-$$" G5="mg5-$$" G6="mg6-$$" G7="mg7-$$"
mr topics create "$X" --partitions 1 >/dev/null || mrt_fail "topics create $X"
mr topics create "$Y" --partitions 1 >/dev/null || mrt_fail "topics create $Y"
: >"$work/more.results"
MRT_URL=$U MRT_TOKEN=$TOKEN MRT_X=$X MRT_Y=$Y MRT_G4=$G4 MRT_G5=$G5 MRT_G6=$G6 \
    MRT_G7=$G7 MRT_RESULTS=$work/more.results \
    timeout 240 python3 - >"$work/more.out" 2>&1 <<'PY'
import json, os, time, urllib.error, urllib.request
from prometheus_client.parser import text_string_to_metric_families

U, TOKEN = os.environ["MRT_URL"], os.environ["MRT_TOKEN"]
X, Y = os.environ["MRT_X"], os.environ["MRT_Y"]
G4, G5, G6, G7 = (os.environ["MRT_G" + c] for c in "4567")
results = open(os.environ["MRT_RESULTS"], "w", buffering=1)
# The workload's numbers, and what /metrics must show for them.
ON_X, HELD, DEADLINE_MS, TRIP_AT, MAX_LAG, BATCH = 8, 5, 5000, 2, 5, 3
LAG_MARGIN_S = 2.0

def verdict(ok, what):
    results.write("%s\t%s\n" % ("ok" if ok else "FAIL", what))

def call_any(method, path, body=None):
    """(status, JSON answer), errors included."""
    req = urllib.request.Request(U + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def call(method, path, body=None):
    code, r = call_any(method, path, body)
    assert code == 200, (method, path, code, r)
    return r

def scrape():
    req = urllib.request.Request(U + "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=30) as r:
        return {f.name: f for f in text_string_to_metric_families(r.read().decode())}

def value(fams, family, sample=None, **labels):
    """The sample's value (the family's name, or _total for a counter)."""
    if sample is None:
        counter = family in fams and fams[family].type == "counter"
        sample = family + "_total" if counter else family
    for s in fams[family].samples if family in fams else []:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None

def until(pred, secs=30):
    """Scrapes until pred(scrape) holds or secs pass; the last scrape."""
    deadline = time.time() + secs
    while True:
        f = scrape()
        if pred(f) or time.time() > deadline:
            return f
        time.sleep(0.2)

def session(group, topic, **kw):
    body = {"group": group, "topics": [topic], "mode": "unordered"}
    body.update(kw)
    return call("POST", "/v1/sessions", body)["session"]

def fetch(s, n, secs=60):
    got, deadline = [], time.time() + secs
    while len(got) < n and time.time() < deadline:
        got += call("POST", "/v1/sessions/%s/fetch" % s,
                    {"max_messages": n - len(got), "wait_ms": 1000})["messages"]
    return got

def settle(s, how, msgs, **kw):
    body = {"handles": [m["handle"] for m in msgs]}
    body.update(kw)
    return call("POST", "/v1/sessions/%s/%s" % (s, how), body)["settled"]

def buffered(f, group, topic):
    return value(f, "mailroom_consumer_buffered_messages", group=group, topic=topic,
                 partition="0")

msgs = [{"key": "x%d" % i, "value": "x%d" % i, "id": "%s-%d" % (X, i)} for i in range(ON_X)]
r = call("POST", "/v1/topics/%s/messages" % X, {"messages": msgs})
assert r["published"] == ON_X, r
# The four groups join at once (each first join waits ~3 s).
s4 = session(G4, X)
s5 = session(G5, X, ack_deadline_ms=DEADLINE_MS,
             retry={"max_attempts": 5, "backoff_initial_ms": 0})
s6 = session(G6, Y)
s7 = session(G7, X, retry={"max_attempts": 0, "backoff_initial_ms": 0},
             dead_letter={"breaker_max": TRIP_AT, "breaker_period_ms": 600000,
                          "breaker_cooldown_ms": 600000})

# G5 takes all of X in one fetch once its mailbox has them (its deadline
# runs from there), and acks none.
f = until(lambda f: buffered(f, G5, X) == ON_X, 60)
assert buffered(f, G5, X) == ON_X, ("G5 buffered", buffered(f, G5, X))
got5 = fetch(s5, ON_X)
assert len(got5) == ON_X and all(m["attempt"] == 1 for m in got5), got5
oldest_ms = min(m["timestamp_ms"] for m in got5)

# G4 holds HELD of X's records: in flight, and in the mailbox with the rest.
until(lambda f: buffered(f, G4, X) == ON_X, 60)
got4 = fetch(s4, HELD)
assert len(got4) == HELD, got4
want = (HELD, ON_X)
f = until(lambda f: (value(f, "mailroom_consumer_inflight_messages", group=G4),
                     buffered(f, G4, X)) == want, 10)
v = (value(f, "mailroom_consumer_inflight_messages", group=G4), buffered(f, G4, X))
verdict(v == want, "%s holds %d of %d fetched: inflight, buffered %s (want %s)"
        % (G4, HELD, ON_X, v, want))
assert settle(s4, "ack", got4) == HELD
want = (0, ON_X - HELD, HELD)
f = until(lambda f: (value(f, "mailroom_consumer_inflight_messages", group=G4),
                     buffered(f, G4, X),
                     value(f, "mailroom_consumer_acks", group=G4)) == want, 10)
v = (value(f, "mailroom_consumer_inflight_messages", group=G4), buffered(f, G4, X),
     value(f, "mailroom_consumer_acks", group=G4))
verdict(v == want, "%s acked its %d: inflight, buffered, acks %s (want %s)"
        % (G4, HELD, v, want))

# G7 nacks TRIP_AT records: its breaker trips, once.
got7 = fetch(s7, TRIP_AT)
assert len(got7) == TRIP_AT, got7
assert settle(s7, "nack", got7, reason="trip") == TRIP_AT
fams = ("mailroom_breaker_trips", "mailroom_breaker_state", "mailroom_consumer_nacks",
        "mailroom_consumer_failed_attempts")
want = (1, 2, TRIP_AT, TRIP_AT)
f = until(lambda f: tuple(value(f, n, group=G7) for n in fams) == want, 10)
v = tuple(value(f, n, group=G7) for n in fams)
verdict(v == want, "%s nacked %d (breaker_max %d): trips, state, nacks, failed %s (want %s)"
        % (G7, TRIP_AT, TRIP_AT, v, want))

# Backpressure: a bound on Y naming G6, which never consumes.
bound = {"max_lag": MAX_LAG, "resume_lag": 2, "policy": "reject", "groups": [G6]}
deadline = time.time() + 30
while True:  # until the lag monitor knows G6 serves Y
    code, r = call_any("PUT", "/v1/bounds/%s" % Y, bound)
    if code == 200 or time.time() > deadline:
        break
    time.sleep(0.3)
assert code == 200, ("bounds.set", code, r)
ok = refused = other = n = 0
deadline = time.time() + 60
while refused < 2 * BATCH and time.time() < deadline:
    batch = [{"key": "b", "value": "b%d" % (n + i), "id": "%s-%d" % (Y, n + i)}
             for i in range(BATCH)]
    n += BATCH
    code, r = call_any("POST", "/v1/topics/%s/messages" % Y, {"messages": batch})
    for a in r["acks"]:
        if "offset" in a:
            ok += 1
        elif a.get("error") == "MR_EBUSY":
            refused += 1
        else:
            other += 1
    time.sleep(0.05)
assert refused >= 2 * BATCH and other == 0, (ok, refused, other)
P = "mailroom_publish_messages"
figures = lambda f: (value(f, "mailroom_backpressure_refused_messages"),
                     value(f, P, P + "_total", topic=Y, result="refused"),
                     value(f, P, P + "_total", topic=Y, result="ok"),
                     value(f, "mailroom_backpressure_held_messages"),
                     value(f, "mailroom_backpressure_throttled_partitions"))
want = (refused, refused, ok, 0, 1)
f = until(lambda f: figures(f) == want, 10)
verdict(figures(f) == want and ok >= MAX_LAG,
        "bound max_lag %d on %s: %d accepted, %d refused (MR_EBUSY) in batches of %d: "
        "refused, publish refused, publish ok, held, throttled partitions %s (want %s)"
        % (MAX_LAG, Y, ok, refused, BATCH, figures(f), want))
call("DELETE", "/v1/bounds/%s" % Y)

# G5's deadline passes: its ON_X come back, each expired once.
lagging = lambda f: (value(f, "mailroom_consumer_expiries", group=G5),
                     value(f, "mailroom_consumer_lag_seconds", group=G5, topic=X,
                           partition="0"),
                     value(f, "mailroom_consumer_lag_messages", group=G5, topic=X,
                           partition="0"))
f = until(lambda f: lagging(f)[0] == ON_X and (lagging(f)[1] or 0) > 0
          and lagging(f)[2] == ON_X, 60)
age = time.time() - oldest_ms / 1000.0
v = lagging(f)
verdict(v[0] == ON_X, "%s held %d past its %d ms deadline: expiries %s (want %d)"
        % (G5, ON_X, DEADLINE_MS, v[0], ON_X))
verdict(v[1] is not None and 0 < v[1] <= age + LAG_MARGIN_S and v[2] == ON_X,
        "%s lags on %s: lag_seconds %s (want > 0 and <= %.3f, the oldest record's age"
        " plus %.0f s), lag_messages %s (want %d)"
        % (G5, X, v[1], age + LAG_MARGIN_S, LAG_MARGIN_S, v[2], ON_X))
again = fetch(s5, ON_X)
assert len(again) == ON_X and all(m["attempt"] == 2 for m in again), again
assert settle(s5, "ack", again) == ON_X
fams = ("mailroom_consumer_deliveries", "mailroom_consumer_redeliveries",
        "mailroom_consumer_failed_attempts", "mailroom_consumer_expiries",
        "mailroom_consumer_acks", "mailroom_consumer_inflight_messages")
want = (2 * ON_X, ON_X, ON_X, ON_X, ON_X, 0)
f = until(lambda f: tuple(value(f, n, group=G5) for n in fams) == want, 10)
v = tuple(value(f, n, group=G5) for n in fams)
verdict(v == want, "%s fetched the %d again (attempt 2) and acked them: deliveries, "
        "redeliveries, failed, expiries, acks, inflight %s (want %s)" % (G5, ON_X, v, want))
print("done")
PY
rc=$?
while IFS=$'\t' read -r how what; do
    if [[ $how == ok ]]; then mrt_pass "/metrics: $what"; else mrt_fail "/metrics: $what"; fi
done <"$work/more.results"
[[ $rc -eq 0 && $(wc -l <"$work/more.results") -eq 7 ]] ||
    mrt_fail "/metrics, in flight to time lag (exit $rc): $(tail -8 "$work/more.out")"
# ---- end of in flight, expiries, the breaker, backpressure, time lag -------

mrt_stop_daemon
if python3 - "$log" "$G" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
objs = [json.loads(l) for l in lines]
assert all({"ts", "level", "component"} <= o.keys() for o in objs), \
    [o for o in objs if not {"ts", "level", "component"} <= o.keys()][:3]
assert any(o.get("group") == sys.argv[2] for o in objs), "no line with the group"
assert any(o.get("msg") == "stopped" for o in objs), "no stopped line"
q = [o for o in objs if o.get("msg") == "quarantined"]
assert q and all(o.get("id") and o.get("group") for o in q), ("quarantine lines", q[:3])
PY
then
    mrt_pass "the log: $(wc -l <"$log") JSON lines with ts, level, component, group;" \
        "a quarantine's line names its group and the message's id"
else
    mrt_fail "the log is not JSON lines with ts, level, component and group," \
        "or a quarantine's line lacks the group or the message's id"
fi
mrt_finish 40 "$log"
