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

mode=${1:-embedded}
: "${MR_BINARY_DIR:?MR_BINARY_DIR must name the build directory}"
MR="$MR_BINARY_DIR/mailroom"
MRD="$MR_BINARY_DIR/mailroomd"
brokers=""
if [[ $mode == kafka ]]; then
    : "${MR_KAFKA_DIR:?MR_KAFKA_DIR must name the fixture directory}"
    if [[ -f "$MR_KAFKA_DIR/unavailable" ]]; then
        echo "SKIP: $(cat "$MR_KAFKA_DIR/unavailable")"
        exit 77
    fi
    brokers=$(cat "$MR_KAFKA_DIR/bootstrap") || exit 1
fi
command -v kcat >/dev/null || {
    echo "FAIL: kcat not found"
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-foreign-XXXXXX")
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

"$MRD" --listen "$url" ${brokers:+--brokers "$brokers"} >"$log" 2>&1 &
dpid=$!
for _ in $(seq 300); do
    mr --timeout 2000 status >/dev/null 2>&1 && break
    sleep 0.1
done
bootstrap=$(mr status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap"])') || {
    echo "FAIL: mailroomd did not become ready"
    cat "$log"
    exit 1
}

T="foreign-$mode-$$"
mr topics create "$T" --partitions 2 >/dev/null || fail "topics create $T"
# 3 keys x 5 records, all to partition 1, plus a keyless one, from kcat.
for i in 1 2 3 4 5; do
    for k in a b c; do
        printf '%s:%s-%d\n' "$k" "$k" "$i"
    done
done >"$work/in.txt"
timeout 60 kcat -b "$bootstrap" -P -t "$T" -p 1 -K : -l "$work/in.txt" ||
    fail "kcat could not produce"
printf 'no key here\n' | timeout 60 kcat -b "$bootstrap" -P -t "$T" -p 1 ||
    fail "kcat could not produce a keyless record"

mr consume -g "g1-$$" --json -n 16 --idle 30000 "$T" >"$work/g1.json" ||
    fail "consume exits $?"
python3 - "$work/g1.json" "$T" <<'EOF' && pass "16 kcat records with every field, ids by position, keys in order" || fail "the kcat records as consumed are wrong"
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
[[ ! -s $work/again.json ]] && pass "the group does not get them again" ||
    fail "the group got $(wc -l <"$work/again.json") records again"
mr consume -g "g2-$$" --json -n 16 --idle 30000 "$T" >"$work/g2.json"
[[ $(wc -l <"$work/g2.json") -eq 16 ]] && pass "another group gets all 16" ||
    fail "another group got $(wc -l <"$work/g2.json") of 16"

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
