#!/usr/bin/env bash
# Records written by another Kafka client (kcat: no mailroom headers, no
# ce_id) consumed through mailroomd: every field is there, the id is
# topic/partition/offset, keys come in order, and a second group gets the
# same records while the first does not get them again (deduplicated by
# position).
#
# Usage: foreign_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat
mrt_workdir foreign

mrt_start_with_topics foreign
# 3 keys x 5 records, all to partition 1, plus a keyless one, from kcat.
for i in 1 2 3 4 5; do
    for k in a b c; do
        printf '%s:%s-%d\n' "$k" "$k" "$i"
    done
done >"$work/in.txt"
timeout 60 kcat -b "$bootstrap" -P -t "$T" -p 1 -K : -l "$work/in.txt" ||
    mrt_fail "kcat could not produce"
printf 'no key here\n' | timeout 60 kcat -b "$bootstrap" -P -t "$T" -p 1 ||
    mrt_fail "kcat could not produce a keyless record"

mr consume -g "g1-$$" --json -n 16 --idle 30000 "$T" >"$work/g1.json" ||
    mrt_fail "consume exits $?"
python3 - "$work/g1.json" "$T" <<'EOF' && mrt_pass "16 kcat records with every field, ids by position, keys in order" || mrt_fail "the kcat records as consumed are wrong"
import json, sys
ds = [json.loads(l) for l in open(sys.argv[1])]
topic = sys.argv[2]
assert len(ds) == 16, "%d deliveries, want 16" % len(ds)
seen = {}
for d in ds:
    assert d["topic"] == topic and d["partition"] == 1, d
    assert d["id"] == "%s/1/%d" % (topic, d["offset"]), d
    assert d["headers"] == [], d
    assert d["attempt"] == 1 and not d["redelivery"], d
    assert d["timestamp_ms"] > 0, d
    if d["key"] is None:
        assert d["payload"] == "no key here", d
        continue
    k, n = d["payload"].split("-")
    assert k == d["key"], d
    assert seen.get(k, 0) + 1 == int(n), "key %s: %s after %s" % (k, n, seen.get(k))
    seen[k] = int(n)
assert seen == {"a": 5, "b": 5, "c": 5}, seen
EOF

# The same group again: nothing (acked, committed); another group: all.
mr consume -g "g1-$$" --json --idle 6000 "$T" >"$work/again.json"
[[ ! -s $work/again.json ]] && mrt_pass "the group does not get them again" ||
    mrt_fail "the group got $(wc -l <"$work/again.json") records again"
mr consume -g "g2-$$" --json -n 16 --idle 30000 "$T" >"$work/g2.json"
[[ $(wc -l <"$work/g2.json") -eq 16 ]] && mrt_pass "another group gets all 16" ||
    mrt_fail "another group got $(wc -l <"$work/g2.json") of 16"

mrt_finish
