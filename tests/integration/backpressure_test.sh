#!/usr/bin/env bash
# Backpressure (issue #10, items 2, 3 and 6): a topic of 2 partitions, a
# group served by mailroomd (`mailroom consume -n`) that stops consuming,
# and a bound of 20 records on the topic naming it. A fast publisher to a
# key of partition 0 gets 20 records past the group's position accepted,
# and at most one request more, then MR_EBUSY with the lag, the bound and a
# retry-after; a key of partition 1 is acked meanwhile; `mailroom lag` and
# `mailroom bounds` say which partition refuses. With policy hold, a
# publish waits its block time then is refused (held_ms said), or goes as
# soon as the group consumes below the low mark; `--busy-retry` (the
# client's automatic retry) gets through once it does. An external group
# (kcat -G) that stopped drives the throttling the same way. Every
# accepted message is consumed exactly once by an idempotent consumer
# (--guard), and nothing refused was written. Bad bounds are refused with
# a sentence and the old bound kept.
#
# Usage: backpressure_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat python3
mrt_workdir backpressure

# The lag monitor every 200 ms, so that the waits below are short.
export MAILROOM_LAG_INTERVAL_MS=200
mrt_start_with_topics bp
G="bp-g-$$" KG="bp-kg-$$"

# ack_field FILE KEY: a field of the last JSON ack in FILE.
ack_field() {
    python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1].get(sys.argv[2], 0))' "$1" "$2"
}

# Two keys on different partitions, found by publishing one record each.
declare -A part
for k in k1 k2 k3 k4 k5 k6 k7 k8; do
    mr publish --json "$T/$k" "probe" >"$work/probe.json" ||
        mrt_fail "publish the probe of $k"
    part[$k]=$(ack_field "$work/probe.json" partition)
done
A="" B=""
for k in k1 k2 k3 k4 k5 k6 k7 k8; do
    [[ ${part[$k]} == 0 && -z $A ]] && A=$k
    [[ ${part[$k]} == 1 && -z $B ]] && B=$k
done
[[ -n $A && -n $B ]] || mrt_fail "no key for each partition: ${part[*]}"

# The group consumes what is there (8 records) and stops.
mr consume -g "$G" -n 8 --idle 30000 "$T" >"$work/c0.out" 2>&1 ||
    mrt_fail "consume -n 8 exits $?: $(tail -3 "$work/c0.out")"

# lag_of GROUP PARTITION: the monitor's lag and throttle state.
lag_of() {
    mr lag --json --group "$1" "$T" | python3 -c 'import json,sys
r = json.load(sys.stdin)
p = [x for x in r["partitions"] if x["partition"] == int(sys.argv[1])][0]
print(p["lag"], p["throttle"], p["committed"])' "$2"
}
# wait_state GROUP PARTITION STATE: until that partition is STATE (20 s).
wait_state() {
    local s=""
    for _ in $(seq 100); do
        s=$(lag_of "$1" "$2") && [[ $(cut -d' ' -f2 <<<"$s") == "$3" ]] && return 0
        sleep 0.2
    done
    echo "$s"
    return 1
}
# wait_lag GROUP PARTITION LAG: until the monitor shows that lag (20 s).
wait_lag() {
    local s=""
    for _ in $(seq 100); do
        s=$(lag_of "$1" "$2") && [[ $(cut -d' ' -f1 <<<"$s") == "$3" ]] && return 0
        sleep 0.2
    done
    echo "$s"
    return 1
}

# The group commits what it acked every 500 ms: the bounds below count
# from a lag of 0, so wait until the monitor has seen those commits.
for p in 0 1; do
    s=$(wait_lag "$G" $p 0) ||
        mrt_fail "partition $p: the group's 8 acks never showed as a lag of 0 (lag, throttle, committed: $s)"
done

# ---- bad bounds: refused, nothing set -------------------------------------
expect() { # CODE PATTERN CMD...
    local want=$1 pat=$2 rc=0
    shift 2
    mr "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ $rc -eq $want ]] && grep -q -- "$pat" "$work/err"; then
        mrt_pass "bounds refused: $* exits $want: $(grep -m1 -- "$pat" "$work/err")"
    else
        mrt_fail "$* exits $rc (want $want): $(cat "$work/err")"
    fi
}
expect 2 "takes an integer >= 0, not '-5'" bounds set "$T" --max-lag -5
expect 1 "resume_lag (30) must be below max_lag (20)" bounds set "$T" --max-lag 20 --resume-lag 30
expect 1 "resume_time_lag_ms (900) must be below max_time_lag_ms (500)" bounds set "$T" --max-time-lag 500 --resume-time-lag 900
expect 1 "needs max_lag (records) or max_time_lag_ms" bounds set "$T" --policy reject
expect 1 'policy must be "hold" or "reject"' bounds set "$T" --max-lag 5 --policy drop
expect 1 "group nobody-$$ has no committed offset on $T" bounds set "$T" --max-lag 5 --group "nobody-$$"
expect 1 "topic 'nope-$$' does not exist" bounds set "nope-$$" --max-lag 5
expect 1 "MR_ENOENT: nope-$$ has no bound to clear" bounds clear "nope-$$"
mr bounds --json >"$work/b0.json" &&
    python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["bounds"] == []' "$work/b0.json" &&
    mrt_pass "after the refusals, no bound is set" ||
    mrt_fail "bounds after refusals: $(cat "$work/b0.json")"

# ---- reject: at most the bound plus one request ---------------------------
mr bounds set "$T" --max-lag 20 --resume-lag 5 --policy reject --group "$G" \
    >"$work/set1.out" || mrt_fail "bounds set exits $?: $(cat "$work/set1.out")"
# Also a refused one keeps it: the bound is still 20.
expect 1 "resume_lag (30) must be below max_lag (25)" bounds set "$T" --max-lag 25 --resume-lag 30
mr bounds --json "$T" | python3 -c 'import json,sys; b=json.load(sys.stdin)["bounds"][0]; assert (b["max_lag"], b["resume_lag"], b["policy"]) == (20, 5, "reject"), b' &&
    mrt_pass "a refused bound leaves the old one as it was" ||
    mrt_fail "the bound changed: $(mr bounds --json)"
wait_state "$G" 0 open >/dev/null || mrt_fail "the bound never showed in mailroom lag: $(mr lag --json)"

rc=0
seq 60 | sed "s/^/$A:a/" | mr publish --lines -K : -b 5 --json "$T" \
    >"$work/p1.json" 2>"$work/p1.err" || rc=$?
python3 - "$work/p1.json" <<'PY' && mrt_pass "reject: 20 to 25 accepted past the group, the rest MR_EBUSY with lag, bound and retry-after (exit $rc)" || mrt_fail "reject: $(tail -3 "$work/p1.json") $(cat "$work/p1.err")"
import json, sys
acks = [json.loads(l) for l in open(sys.argv[1])]
ok = [a for a in acks if a["status"] == "ok"]
busy = [a for a in acks if a["status"] == "MR_EBUSY"]
assert len(acks) == 60 and len(ok) + len(busy) == 60, acks
assert 20 <= len(ok) <= 25, len(ok)
# accepted first, refused after: per key, nothing refused before an ack
assert all(a["status"] == "ok" for a in acks[:len(ok)]), acks
for a in busy:
    assert a["retry_after_ms"] > 0 and a["bound"] == 20, a
    assert a["lag"] >= 20 and a["bound_kind"] == "records", a
    assert "send it again in" in a["error"], a
PY
[[ $rc -eq 1 ]] && grep -q 'backpressure: 0 messages held, [0-9]* refused' "$work/p1.err" &&
    mrt_pass "publish exits 1 and sums up what backpressure refused" ||
    mrt_fail "publish exits $rc: $(tail -2 "$work/p1.err")"

mr publish --json "$T/$B" other >"$work/p2.json" &&
    [[ $(ack_field "$work/p2.json" partition) == 1 ]] &&
    mrt_pass "only the lagging partition is throttled: key $B (partition 1) is acked" ||
    mrt_fail "key $B: $(cat "$work/p2.json")"
s0=$(lag_of "$G" 0) s1=$(lag_of "$G" 1)
read -r lag0 st0 _ <<<"$s0"
[[ $st0 == refusing && $(cut -d' ' -f2 <<<"$s1") == open && $lag0 -le 25 ]] &&
    mrt_pass "mailroom lag: partition 0 refusing at lag $lag0 (<= 25), partition 1 open" ||
    mrt_fail "mailroom lag: p0 $s0, p1 $s1"
mr lag --group "$G" "$T" >"$work/lag1.txt" &&
    grep -q 'TIME LAG  BOUND  *THROTTLE$' "$work/lag1.txt" &&
    grep -q "^$G  *$T  *0 .* 20  *refusing$" "$work/lag1.txt" &&
    grep -q "^$G  *$T  *1 .* 20  *open" "$work/lag1.txt" &&
    mrt_pass "mailroom lag's table: BOUND and THROTTLE per partition" ||
    mrt_fail "mailroom lag's table: $(cat "$work/lag1.txt")"
mr bounds "$T" >"$work/b1.txt" &&
    grep -q "partition 0: refusing, lag" "$work/b1.txt" &&
    grep -q "1 of 2 partitions throttled" "$work/b1.txt" &&
    mrt_pass "mailroom bounds: the throttled partition" ||
    mrt_fail "mailroom bounds: $(cat "$work/b1.txt")"
mr status >"$work/status.txt" &&
    grep -q '^backpressure: 1 bounds, 1 partitions throttled; 0 messages held, [1-9][0-9]* refused' "$work/status.txt" &&
    mrt_pass "mailroom status: the backpressure line" ||
    mrt_fail "status: $(cat "$work/status.txt")"

# ---- hold: refused after the block time, with held_ms ---------------------
mr bounds set "$T" --max-lag 20 --resume-lag 5 --policy hold --block 1500 \
    --group "$G" >/dev/null || mrt_fail "bounds set hold"
rc=0
mr publish --json "$T/$A" held-out >"$work/h1.json" 2>/dev/null || rc=$?
[[ $rc -eq 1 && $(ack_field "$work/h1.json" status) == MR_EBUSY ]] &&
    (($(ack_field "$work/h1.json" held_ms) >= 1400)) &&
    mrt_pass "hold: held $(ack_field "$work/h1.json" held_ms) ms (block 1500), then MR_EBUSY (exit 1)" ||
    mrt_fail "hold: exit $rc: $(cat "$work/h1.json")"

# ---- hold: released when the group consumes below the low mark ------------
mr bounds set "$T" --max-lag 20 --resume-lag 5 --policy hold --block 30000 \
    --group "$G" >/dev/null || mrt_fail "bounds set hold 30 s"
mr publish --json "$T/$A" held-in >"$work/h2.json" 2>&1 &
hpid=$!
mrt_track "$hpid"
sleep 1
kill -0 "$hpid" 2>/dev/null && mrt_pass "hold: a publish to the lagging partition waits" ||
    mrt_fail "hold: the publish did not wait: $(cat "$work/h2.json")"
mr consume -g "$G" --idle 3000 "$T" >"$work/c1.out" 2>&1 ||
    mrt_fail "consume exits $?: $(tail -3 "$work/c1.out")"
mrt_wait_exit "$hpid" 60
hrc=$?
[[ $hrc -eq 0 && $(ack_field "$work/h2.json" status) == ok ]] &&
    (($(ack_field "$work/h2.json" held_ms) >= 500)) &&
    mrt_pass "hold: acked once the group caught up (held $(ack_field "$work/h2.json" held_ms) ms)" ||
    mrt_fail "hold release: exit $hrc: $(cat "$work/h2.json")"

# ---- the client's automatic retry (--busy-retry) --------------------------
mr bounds set "$T" --max-lag 20 --resume-lag 5 --policy reject --group "$G" \
    >/dev/null || mrt_fail "bounds set reject again"
wait_state "$G" 0 open >/dev/null || mrt_fail "partition 0 did not open"
seq 30 | sed "s/^/$A:b/" | mr publish --lines -K : -b 5 --json "$T" \
    >"$work/p3.json" 2>/dev/null
wait_state "$G" 0 refusing >/dev/null || mrt_fail "partition 0 is not refusing again: $(lag_of "$G" 0)"
mr publish --json --busy-retry 60000 "$T/$A" retried >"$work/r1.json" 2>&1 &
rpid=$!
mrt_track "$rpid"
sleep 1
mr consume -g "$G" --idle 3000 "$T" >"$work/c2.out" 2>&1 ||
    mrt_fail "consume exits $?: $(tail -3 "$work/c2.out")"
mrt_wait_exit "$rpid" 90
rrc=$?
[[ $rrc -eq 0 && $(ack_field "$work/r1.json" status) == ok ]] &&
    mrt_pass "--busy-retry: refused, sent again after retry-after, acked once the group caught up" ||
    mrt_fail "--busy-retry: exit $rrc: $(cat "$work/r1.json")"

# ---- an external group (kcat -G) that stops -------------------------------
mr bounds clear "$T" >/dev/null || mrt_fail "bounds clear"
timeout 60 kcat -b "$bootstrap" -G "$KG" -X auto.offset.reset=earliest \
    -c 5 "$T" >"$work/kcat.out" 2>"$work/kcat.err" ||
    mrt_fail "kcat -G exits $?: $(tail -3 "$work/kcat.err")"
for _ in $(seq 100); do
    mr bounds set "$T" --max-lag 10 --resume-lag 2 --policy reject \
        --group "$KG" >"$work/set2.out" 2>&1 && break
    sleep 0.3 # until Kafka shows the group's commit
done
wait_state "$KG" 0 refusing >/dev/null || wait_state "$KG" 1 refusing >/dev/null ||
    mrt_fail "the external group's lag throttled nothing: $(mr lag --json --group "$KG" "$T")"
rc=0
mr publish --json "$T/$A" ext-a >"$work/e1.json" 2>/dev/null || rc=$?
mr publish --json "$T/$B" ext-b >>"$work/e1.json" 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] && grep -q '"MR_EBUSY"' "$work/e1.json" &&
    mrt_pass "an external group (kcat -G) that stopped consuming throttles its topic" ||
    mrt_fail "external group: exit $rc: $(cat "$work/e1.json")"
mr bounds clear "$T" >/dev/null || mrt_fail "bounds clear"

# ---- exactly once: every accepted message, nothing refused ----------------
mr consume -g "$G-all" --guard "$work/guard" --json --idle 4000 "$T" \
    >"$work/all.json" 2>"$work/all.err" ||
    mrt_fail "consume all exits $?: $(tail -3 "$work/all.err")"
python3 - "$work" <<'PY' && mrt_pass "every accepted message consumed exactly once, none refused written" || mrt_fail "exactly once: see above"
import json, os, sys
w = sys.argv[1]
acked, refused = set(), set()
for f in os.listdir(w):
    if not (f.startswith(("p", "h", "r", "e", "probe")) and f.endswith(".json")):
        continue
    for l in open(os.path.join(w, f)):
        if not l.startswith("{"):
            continue
        a = json.loads(l)
        (acked if a["status"] == "ok" else refused).add(a["id"])
seen = {}
for l in open(os.path.join(w, "all.json")):
    d = json.loads(l)
    if not d["duplicate"]:
        seen[d["id"]] = seen.get(d["id"], 0) + 1
missing = acked - set(seen)
twice = [i for i, n in seen.items() if n > 1]
written = refused & set(seen)
if missing or twice or written:
    print("missing", len(missing), "twice", twice, "refused but written", written)
    sys.exit(1)
PY

mrt_stop_daemon
mrt_finish 30 "$log"
