#!/usr/bin/env bash
# kill -9 of `mailroom consume` itself, mid-stream (issue #13): the CLI
# acks on a thread of its own while it fetches and prints the next batch,
# and must still ack nothing it has not written to stdout and flushed.
# N messages over K keys are published; `mailroom consume -g G --json
# --batch 5` (key mode) prints into a file and is killed with SIGKILL,
# three times (0.02-0.12 s after the run has printed N/10 lines), each
# time started again with the same group; the last run goes on until nothing
# came for a while.
#
# Checks, on the four outputs: no run prints an id twice; every id acked
# to the publisher is in one of them (nothing acked unprinted is lost); an
# id that a later run prints again comes as a redelivery (redelivery true,
# attempt >= 2: the earlier run never acked it), at most K of them per
# kill (key mode: one delivery per key in flight); within each run a
# key's offsets only grow (its order).
#
# Usage: consume_kill_test.sh [embedded|kafka]
#   embedded (default): librdkafka's mock cluster in mailroom_mockd
#   kafka:    the fixture's broker ($MR_KAFKA_DIR; exit 77 when unavailable)
# Environment: MR_BINARY_DIR (mailroomd, mailroom, tests/mailroom_mockd),
#   MR_KAFKA_DIR; KEEP=1 keeps the work directory. Every wait is bounded.
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

mode=${1:-embedded}
case "$mode" in
    embedded | kafka) ;;
    *)
        echo "usage: consume_kill_test.sh [embedded|kafka]" >&2
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

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-ckill-XXXXXX")
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

give_up() {
    echo "FAIL: $*"
    echo "--- consumers' stderr"
    cat "$work"/consume*.err 2>/dev/null
    echo "--- mailroomd's log (last lines)"
    tail -n 20 "$work/mailroomd.log"
    exit 1
}

T="ckill-$mode-$$"
G="ckill-$mode-$$-g"
N=6000
K=40
url="ipc://$work/mailroomd.sock"
cluster_start "$mode" "$work" "$T:4" || exit 1

"$MRD" --listen "$url" --brokers "$BROKERS" >"$work/mailroomd.log" 2>&1 &
dpid=$!
for _ in $(seq 300); do
    "$MR" --url "$url" --timeout 2000 status >/dev/null 2>&1 && break
    kill -0 "$dpid" 2>/dev/null || give_up "mailroomd exited"
    sleep 0.1
done
if [[ $mode == kafka ]]; then
    "$MR" --url "$url" --timeout 30000 topics create "$T" --partitions 4 \
        >"$work/topics.out" 2>&1 ||
        give_up "topics create $T: $(cat "$work/topics.out")"
fi
for ((i = 0; i < N; i++)); do
    printf 'k%d\tm%d\n' $((i % K)) "$i"
done | timeout 120 "$MR" --url "$url" --timeout 30000 publish --lines \
    -K $'\t' --json "$T" >"$work/acks.jsonl" || give_up "publish failed"

# consume OUT: the consumer of both runs, in the background. A short
# back-off, so that what the killed run held comes again soon.
consume() {
    "$MR" --url "$url" --timeout 30000 consume -g "$G" --json --batch 5 \
        --backoff 50 --idle 10000 "$T" >"$work/$1.jsonl" \
        2>"$work/$1.err" &
    cpid=$!
}

# Three runs killed soon after each has printed N/10 lines, then one that
# runs until nothing comes.
total() { cat "$work"/consume*.jsonl | wc -l; }
for run in 1 2 3; do
    consume "consume$run"
    for _ in $(seq 1200); do
        (($(wc -l <"$work/consume$run.jsonl") >= N / 10)) && break
        kill -0 "$cpid" 2>/dev/null || give_up "consumer $run exited"
        sleep 0.05
    done
    # Lines show up a flush at a time: kill at some point after one.
    sleep "$(printf '0.%02d' $((RANDOM % 10 + 2)))"
    kill -KILL "$cpid"
    { wait "$cpid"; } 2>/dev/null
    cpid=""
    echo "info: SIGKILL to consumer $run after $(total) lines in all"
done
(($(total) < N)) ||
    echo "info: the killed consumers printed all $N (the kills came late)"

consume consume4
for _ in $(seq 1200); do
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$cpid" 2>/dev/null && give_up "the last consumer still runs after 120 s"
wait "$cpid"
rc=$?
cpid=""
((rc == 0)) || give_up "the last consumer exited $rc"

python3 - "$work/acks.jsonl" "$K" "$work"/consume{1,2,3,4}.jsonl <<'EOF'
import collections, json, sys

acks = [json.loads(l) for l in open(sys.argv[1])]
keys = int(sys.argv[2])
bad = 0

def lines(path):
    # A kill between two write(2)s of one flush may leave half a line:
    # not printed, so not acked either.
    text = open(path).read()
    whole = text.split("\n")
    if whole[-1]:
        print("info: %s ends in half a line" % path)
    return [json.loads(l) for l in whole[:-1]]

runs = [lines(p) for p in sys.argv[3:]]

def check(ok, what):
    global bad
    print(("ok: " if ok else "FAIL: ") + what)
    bad += not ok

check(len(acks) == len(set(a["id"] for a in acks)) and
      all(a.get("status") == "ok" for a in acks),
      "the publisher had %d acks, all ok" % len(acks))
want = {a["id"] for a in acks}
for i, run in enumerate(runs, 1):
    ids = collections.Counter(d["id"] for d in run)
    twice = [k for k, c in ids.items() if c > 1]
    check(not twice, "run %d printed no id twice (%d lines%s)" % (
        i, len(run), ", e.g. " + twice[0] if twice else ""))
    last = {}
    inversions = 0
    for d in run:
        k = (d["partition"], d["key"])
        if k in last and d["offset"] <= last[k]:
            inversions += 1
        last[k] = d["offset"]
    check(inversions == 0, "run %d kept each key's order (%d inversions)" %
          (i, inversions))
got = {d["id"] for run in runs for d in run}
missing = want - got
check(len(want) > 0 and not missing,
      "every id acked to the publisher was printed (%d of %d missing)" %
      (len(missing), len(want)))
# An id printed again by a later run was not acked by the earlier one:
# it comes as a redelivery, and a kill leaves at most one per key so.
seen = set()
for i, run in enumerate(runs[1:], 2):
    before = {d["id"] for r in runs[:i - 1] for d in r}
    again = [d for d in run if d["id"] in before]
    notre = [d for d in again if not d["redelivery"] or d["attempt"] < 2]
    check(not notre, "run %d: what an earlier run printed came again as "
          "a redelivery (%d of %d were not)" % (i, len(notre), len(again)))
    fresh = {d["id"] for d in again} - seen
    seen |= fresh
    check(len(fresh) <= keys, "run %d: at most one delivery per key was "
          "unacked at the kill before (%d printed again, %d keys)" %
          (i, len(fresh), keys))
print("info: lines per run %s, %d ids printed by more than one run" %
      ([len(r) for r in runs], len(seen)))
sys.exit(1 if bad else 0)
EOF
