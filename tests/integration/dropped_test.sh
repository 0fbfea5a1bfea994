#!/usr/bin/env bash
# A consumer group whose committed position Kafka has already dropped: the
# embedded cluster keeps only about the last 5 MB of a partition, so a
# group that committed offset 1 and comes back after 8 MB more finds its
# position gone. mailroomd must say so loudly (a crit line naming the group
# and partition) and read on from the oldest record still there, instead of
# stopping or starting over silently.
#
# Usage: dropped_test.sh   (embedded only: real Kafka keeps what it is told)
# Environment: MR_BINARY_DIR (mailroomd, mailroom).
set -uo pipefail

: "${MR_BINARY_DIR:?MR_BINARY_DIR must name the build directory}"
MR="$MR_BINARY_DIR/mailroom"
MRD="$MR_BINARY_DIR/mailroomd"

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-dropped-XXXXXX")
dpid=""
cleanup() {
    if [[ -n $dpid ]] && kill -0 "$dpid" 2>/dev/null; then
        kill -KILL "$dpid" 2>/dev/null
        wait "$dpid" 2>/dev/null
    fi
    [[ -n ${KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

passed=0
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
    passed=$((passed + 1))
}

url="ipc://$work/mailroomd.sock"
log="$work/mailroomd.log"
mr() { timeout 120 "$MR" --url "$url" "$@"; }

"$MRD" --listen "$url" --set consumer.idle_close_ms=500 >"$log" 2>&1 &
dpid=$!
for _ in $(seq 300); do
    mr --timeout 2000 status >/dev/null 2>&1 && break
    sleep 0.1
done
mr status >/dev/null || {
    echo "FAIL: mailroomd did not become ready"
    cat "$log"
    exit 1
}

T="dropped-$$"
G="dropped-group-$$"
mr topics create "$T" --partitions 1 >/dev/null || fail "topics create $T"
mr publish "$T/k" first >/dev/null || fail "publish the first record"
# The group reads and acks offset 0: it commits 1 when its session ends.
if mr consume -g "$G" -n 1 --idle 20000 --json "$T" >"$work/first.json" &&
    grep -q '"offset":0' "$work/first.json"; then
    pass "the group consumed offset 0"
else
    fail "the group did not consume offset 0: $(cat "$work/first.json")"
fi
# Wait until the subscription left the group (and committed).
for _ in $(seq 100); do
    grep -q "leaving the group" "$log" && break
    sleep 0.1
done
grep -q "leaving the group" "$log" || fail "the subscription did not leave its group"

# 8 MB more, in 1 KB records: the partition's first records are dropped.
python3 -c '
import sys
sys.stdout.write("".join("k\t%06d-%s\n" % (i, "x" * 1000) for i in range(8000)))
' >"$work/lines.txt"
mr publish "$T" --lines -K $'\t' --batch 500 -f "$work/lines.txt" >/dev/null ||
    fail "publishing 8 MB"

if mr consume -g "$G" -n 1 --idle 30000 --json "$T" >"$work/second.json"; then
    off=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["offset"])' "$work/second.json" 2>/dev/null)
    if [[ -n $off && $off -gt 1 ]]; then
        pass "the group reads on from the oldest record kept (offset $off)"
    else
        fail "the group got offset '${off}' after its position was dropped: $(head -c 300 "$work/second.json")"
    fi
else
    fail "the group got nothing after its position was dropped"
fi
if grep -q "level=crit .*group=$G .*POSITION ALREADY DROPPED" "$log"; then
    pass "mailroomd says loudly that the position was dropped"
else
    fail "no crit line about the dropped position; the log has: $(grep -i "$G" "$log" | tail -n 5)"
fi

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
