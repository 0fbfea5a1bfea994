#!/usr/bin/env bash
# `mailroom consume` rides through restarts of mailroomd (issue #7): one
# `mailroom consume -g G --json --guard FILE -n N` runs while mailroomd is
# stopped with SIGTERM and started again, then killed with SIGKILL and
# started again, on the same URL. N messages are published in four rounds:
# one before the consumer starts, one before each restart while the
# consumer is stopped (SIGSTOP, so that the round is consumed only after the
# restart: it must survive it), one after the last restart.
#
# Checks: mailroomd exits 0 on SIGTERM; the consumer keeps going (it prints
# that it subscribed again, at least once per restart) and exits 0 once it
# has printed N deliveries not marked duplicate; those are exactly the N ids
# acked to the publisher, each once (a delivery that came again after a
# restart is marked duplicate by the guard); every line of its stdout is a
# JSON delivery; nothing it printed names an error code twice ("MR_ENOENT:
# MR_ENOENT: ..."). Then another consumer, whose mailroomd stops for good,
# exits 3 once its --reconnect time has run out, and says so.
#
# Usage: consume_restart_test.sh [embedded|kafka]
#   embedded (default): librdkafka's mock cluster in mailroom_mockd, a
#             process of its own (cluster.sh), so that the records survive
#             mailroomd's restarts.
#   kafka:    the fixture's broker ($MR_KAFKA_DIR; exit 77 when unavailable)
# Environment: MR_BINARY_DIR (mailroomd, mailroom, tests/mailroom_mockd),
#   MR_KAFKA_DIR; KEEP=1 keeps the work directory. Every wait is bounded.
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

mode=${1:-embedded}
case "$mode" in
    embedded | kafka) ;;
    *)
        echo "usage: consume_restart_test.sh [embedded|kafka]" >&2
        exit 2
        ;;
esac
: "${MR_BINARY_DIR:?MR_BINARY_DIR must name the build directory}"
MR="$MR_BINARY_DIR/mailroom"
MRD="$MR_BINARY_DIR/mailroomd"
# shellcheck source=cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
command -v python3 >/dev/null || {
    echo "SKIP: python3 is needed to check the output"
    exit 77
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-restart-XXXXXX")
dpid=""
cpid=""
cleanup() {
    local p
    for p in $cpid $dpid; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    cluster_stop
    [[ -n ${KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
# The end of the test on a failure that leaves nothing to check.
give_up() {
    echo "FAIL: $*"
    echo "--- consumer's stderr"
    cat "$work/consume.err" 2>/dev/null
    echo "--- mailroomd's log (last lines)"
    tail -n 20 "$work/mailroomd.log"
    exit 1
}

T="restart-$mode-$$"
G="restart-$mode-$$-g"
ROUND=40
N=$((4 * ROUND))
url="ipc://$work/mailroomd.sock"
cluster_start "$mode" "$work" "$T:4" || exit 1

# mailroomd on $url, its log appended to; a member killed with -9 stays in
# the group until its Kafka session expires: 6 s rather than 10.
daemon_start() {
    "$MRD" --listen "$url" --brokers "$BROKERS" \
        --set consumer.session_timeout_ms=6000 >>"$work/mailroomd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 300); do
        "$MR" --url "$url" --timeout 2000 status >/dev/null 2>&1 && return 0
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    give_up "mailroomd did not become ready"
}

# publish FROM TO: messages FROM..TO-1, keys k0..k7, each acked.
publish() {
    local i
    for ((i = $1; i < $2; i++)); do
        printf 'k%d\tm%d\n' $((i % 8)) "$i"
    done | timeout 120 "$MR" --url "$url" --timeout 30000 publish --lines \
        -K $'\t' --json "$T" >>"$work/acks.jsonl" ||
        give_up "publish of $1..$(($2 - 1)) failed"
}

# delivered: deliveries printed so far that are not marked duplicate.
delivered() {
    local n
    n=$(grep -c '"duplicate":false' "$work/out.jsonl" 2>/dev/null)
    echo "${n:-0}"
}

# wait_delivered K WHAT: until K deliveries, bounded; the consumer must
# still be running.
wait_delivered() {
    for _ in $(seq 900); do
        (($(delivered) >= $1)) && return 0
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.2
    done
    if ! kill -0 "$cpid" 2>/dev/null; then
        wait "$cpid"
        give_up "$2: the consumer exited ($?) after $(delivered) deliveries"
    fi
    give_up "$2: $(delivered) deliveries of $1 within 180 s"
}

# restart SIGNAL: publish a round while the consumer is stopped (SIGSTOP),
# so that it is consumed only after mailroomd was ended with SIGNAL and
# started again; then let the consumer go on (SIGCONT).
round=1
restart() {
    local rc
    kill -STOP "$cpid"
    publish $((round * ROUND)) $(((round + 1) * ROUND))
    round=$((round + 1))
    kill "-$1" "$dpid"
    for _ in $(seq 600); do
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$dpid" 2>/dev/null && give_up "mailroomd still runs 60 s after SIG$1"
    { wait "$dpid"; } 2>/dev/null # no "Killed" from bash
    rc=$?
    if [[ $1 == TERM ]]; then
        ((rc == 0)) && pass "mailroomd exits 0 on SIGTERM" ||
            fail "mailroomd exits $rc on SIGTERM"
    fi
    echo "info: SIG$1 to mailroomd after $(delivered) deliveries"
    daemon_start
    kill -CONT "$cpid"
}

daemon_start
if [[ $mode == kafka ]]; then
    "$MR" --url "$url" --timeout 30000 topics create "$T" --partitions 4 \
        >"$work/topics.out" 2>&1 ||
        give_up "topics create $T: $(cat "$work/topics.out")"
fi
publish 0 "$ROUND"
"$MR" --url "$url" --timeout 30000 consume -g "$G" --json --batch 5 \
    --guard "$work/guard.ids" -n "$N" "$T" >"$work/out.jsonl" \
    2>"$work/consume.err" &
cpid=$!
wait_delivered "$ROUND" "before the restarts"
restart TERM
wait_delivered $((2 * ROUND)) "after SIGTERM"
restart KILL
publish $((3 * ROUND)) "$N"

for _ in $(seq 900); do
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.2
done
kill -0 "$cpid" 2>/dev/null && give_up "the consumer still runs after $(delivered) deliveries of $N"
wait "$cpid"
rc=$?
cpid=""
((rc == 0)) && pass "mailroom consume -n $N exits 0 through both restarts" ||
    fail "mailroom consume exits $rc (deliveries: $(delivered) of $N)"

n=$(grep -c 'subscribed again' "$work/consume.err")
((n >= 2)) && pass "the consumer says it subscribed again ($n times)" ||
    fail "the consumer said it subscribed again $n times, not >= 2"
if grep -Eq '(MR_[A-Z]+): \1:' "$work/consume.err"; then
    fail "an error code is printed twice: $(grep -E '(MR_[A-Z]+): \1:' "$work/consume.err" | head -n 1)"
else
    pass "no error code printed twice"
fi

python3 - "$work/acks.jsonl" "$work/out.jsonl" "$N" <<'EOF' || failures=$((failures + 1))
import collections, json, sys

acks = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[3])
bad = [a for a in acks if a.get("status") != "ok"]
want = set(a["id"] for a in acks)
lines = open(sys.argv[2]).read().splitlines()
dels = []
for l in lines:
    try:
        d = json.loads(l)
    except ValueError:
        print("FAIL: stdout has a line that is not JSON: %r" % l[:200])
        sys.exit(1)
    if not isinstance(d, dict) or "id" not in d or "duplicate" not in d:
        print("FAIL: stdout has a line that is not a delivery: %r" % l[:200])
        sys.exit(1)
    dels.append(d)
first = collections.Counter(d["id"] for d in dels if not d["duplicate"])
again = [d["id"] for d in dels if d["duplicate"]]
ok = (not bad and len(want) == n and set(first) == want and
      all(c == 1 for c in first.values()) and set(again) <= set(first))
print("%s: %d ids acked to the publisher, %d printed once not duplicate "
      "(%d more than once, %d not acked, %d acked not printed), %d printed "
      "again as duplicate" %
      ("ok" if ok else "FAIL", len(want), len(first),
       sum(1 for c in first.values() if c > 1), len(set(first) - want),
       len(want - set(first)), len(again)))
sys.exit(0 if ok else 1)
EOF

# The reconnect timeout: a consumer whose mailroomd does not come back
# exits 3 with a clear error once --reconnect has run out (each attempt
# waits for mailroomd up to --timeout, so the exit comes after about both).
"$MR" --url "$url" --timeout 10000 consume -g "$G-2" --json --reconnect 1000 \
    "$T" >"$work/out2.jsonl" 2>"$work/consume2.err" &
cpid=$!
for _ in $(seq 900); do
    [[ -s "$work/out2.jsonl" ]] && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.2
done
[[ -s "$work/out2.jsonl" ]] || give_up "a second consumer printed nothing: $(cat "$work/consume2.err")"
kill -TERM "$dpid"
{ wait "$dpid"; } 2>/dev/null
dpid=""
for _ in $(seq 600); do
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$cpid" 2>/dev/null && give_up "the consumer still runs 60 s after mailroomd stopped for good"
wait "$cpid"
rc=$?
cpid=""
last=$(tail -n 1 "$work/consume2.err")
if ((rc == 3)) && [[ $last == *"could not subscribe again within 1000 ms"* ]] &&
    ! grep -Eq '(MR_[A-Z]+): \1:' "$work/consume2.err"; then
    pass "with mailroomd gone for good, consume --reconnect 1000 exits 3: $last"
else
    fail "with mailroomd gone for good, consume --reconnect 1000 exits $rc: $(cat "$work/consume2.err")"
fi

if ((failures > 0)); then
    echo "--- consumer's stderr"
    cat "$work/consume.err"
    echo "--- mailroomd's log (last lines)"
    tail -n 20 "$work/mailroomd.log"
    echo "$failures failed"
    exit 1
fi
echo "--- consumer's stderr"
cat "$work/consume.err"
echo "all passed"
exit 0
