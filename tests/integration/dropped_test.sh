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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_binaries
mrt_workdir dropped

mr() { timeout 120 "$MR" --url "$url" "$@"; }

mrt_start_daemon mailroomd --set consumer.idle_close_ms=500

T="dropped-$$"
G="dropped-group-$$"
mr topics create "$T" --partitions 1 >/dev/null || mrt_fail "topics create $T"
mr publish "$T/k" first >/dev/null || mrt_fail "publish the first record"
# The group reads and acks offset 0: it commits 1 when its session ends.
if mr consume -g "$G" -n 1 --idle 20000 --json "$T" >"$work/first.json" &&
    grep -q '"offset":0' "$work/first.json"; then
    mrt_pass "the group consumed offset 0"
else
    mrt_fail "the group did not consume offset 0: $(cat "$work/first.json")"
fi
# Wait until the subscription left the group (and committed).
for _ in $(seq 100); do
    grep -q "leaving the group" "$log" && break
    sleep 0.1
done
grep -q "leaving the group" "$log" || mrt_fail "the subscription did not leave its group"

# 8 MB more, in 1 KB records: the partition's first records are dropped.
python3 -c '
import sys
sys.stdout.write("".join("k\t%06d-%s\n" % (i, "x" * 1000) for i in range(8000)))
' >"$work/lines.txt"
mr publish "$T" --lines -K $'\t' --batch 500 -f "$work/lines.txt" >/dev/null ||
    mrt_fail "publishing 8 MB"

if mr consume -g "$G" -n 1 --idle 30000 --json "$T" >"$work/second.json"; then
    off=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["offset"])' "$work/second.json" 2>/dev/null)
    if [[ -n $off && $off -gt 1 ]]; then
        mrt_pass "the group reads on from the oldest record kept (offset $off)"
    else
        mrt_fail "the group got offset '${off}' after its position was dropped: $(head -c 300 "$work/second.json")"
    fi
else
    mrt_fail "the group got nothing after its position was dropped"
fi
if grep -q "level=crit .*group=$G .*POSITION ALREADY DROPPED" "$log"; then
    mrt_pass "mailroomd says loudly that the position was dropped"
else
    mrt_fail "no crit line about the dropped position; the log has: $(grep -i "$G" "$log" | tail -n 5)"
fi

mrt_finish
