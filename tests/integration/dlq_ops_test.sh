#!/usr/bin/env bash
# The dead-letter queue's read side (issue #9): `mailroom dlq list` and
# `dlq show` over a dead-letter topic holding a record quarantined by
# mailroomd (`consume --reject`), a second copy of it written by kcat (the
# same mr_dlq_topic/partition/offset: counted once), and Spring-style and
# Connect-style records written by kcat (text header values, a binary
# payload); then the bad inputs: a topic that does not exist, an offset
# out of range, a malformed fingerprint, --since after --until.
#
# Usage: dlq_ops_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat python3
mrt_workdir dlqops

mrt_start_with_topics dlqops --dlq

# 1. mailroomd quarantines one: published, rejected.
mr publish "$T/poison-1" 'poison payload' >/dev/null || mrt_fail "publish"
mr consume -g "g-$$" --reject --nack-reason 'bad schema 42' -n 1 \
    --idle 30000 "$T" >/dev/null || mrt_fail "consume --reject exits $?"
for _ in $(seq 100); do
    n=$(mr dlq list --json "$D" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["scanned"])')
    [[ ${n:-0} -ge 1 ]] && break
    sleep 0.2
done
[[ ${n:-0} -eq 1 ]] && mrt_pass "mailroomd's quarantine listed" ||
    mrt_fail "the dead-letter topic has ${n:-no} records, want 1"
mr dlq list --json "$D" >"$work/l1.json"
read -r mp mo <<<"$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["groups"][0]["first"]; print(g["partition"], g["offset"])' "$work/l1.json")"
mr dlq show --json "$D" "$mp" "$mo" >"$work/mr.json" || mrt_fail "dlq show of mailroomd's record exits $?"
read -r op oo <<<"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["dead_letter"]; print(d["partition"], d["offset"])' "$work/mr.json")"

# 2. kcat: a second copy of it (same original position, a later time),
# Spring's (binary payload) and Connect's.
kc() { timeout 60 kcat -P -b "$bootstrap" -t "$D" -p 0 "$@"; }
printf 'poison payload' >"$work/p.txt"
kc -k poison-1 -H "mr_dlq_topic=$T" -H "mr_dlq_partition=$op" \
    -H "mr_dlq_offset=$oo" -H "mr_dlq_group=g-$$" -H mr_dlq_attempts=1 \
    -H 'mr_dlq_reason=bad schema 43' -H mr_dlq_time=2099-01-01T00:00:00.000Z \
    "$work/p.txt" || mrt_fail "kcat: the copy"
printf '\x00\x01\xfe\xffbinary' >"$work/bin"
kc -k spring-k -H "kafka_dlt-original-topic=$T" \
    -H kafka_dlt-original-partition=1 -H kafka_dlt-original-offset=7 \
    -H kafka_dlt-original-consumer-group=spring-g \
    -H kafka_dlt-exception-fqcn=org.example.BadOrder \
    -H 'kafka_dlt-exception-message=order 1234 is bad' \
    "$work/bin" || mrt_fail "kcat: Spring's"
printf '{"broken": ' >"$work/c.txt"
kc -k connect-k -H "__connect.errors.topic=$T" \
    -H __connect.errors.partition=0 -H __connect.errors.offset=3 \
    -H __connect.errors.connector.name=sink-1 -H __connect.errors.task.id=2 \
    -H __connect.errors.stage=VALUE_CONVERTER \
    -H __connect.errors.exception.class.name=org.apache.kafka.connect.errors.DataException \
    -H '__connect.errors.exception.message=Converting byte[] failed at 17' \
    "$work/c.txt" || mrt_fail "kcat: Connect's"

mr dlq list --json "$D" >"$work/all.json" || mrt_fail "dlq list exits $?"
python3 - "$work/all.json" "$T" "$mp" "$mo" <<'PY' && mrt_pass "list: 3 groups, the copy counted once, Spring's and Connect's in the same shape" || mrt_fail "the list is wrong: $(cat "$work/all.json")"
import json, sys
l = json.load(open(sys.argv[1])); T = sys.argv[2]
assert l["ok"] and l["complete"] and l["cut"] == "none", l
assert l["scanned"] == 4 and l["matched"] == 4 and l["duplicates"] == 1, l
gs = {tuple(g["dialects"]): g for g in l["groups"]}
assert len(l["groups"]) == 3 and l["groups_total"] == 3, l["groups"]
m = gs[("mailroom",)]
assert m["count"] == 1 and m["sources"] == [T] and m["groups"][0].startswith("g-"), m
assert m["reason"] == "bad schema 43" and m["last_seen"] == "2099-01-01T00:00:00.000Z", m
assert m["first"] == m["last"] and m["first"]["partition"] == 0, m  # the copy, kept
s = gs[("spring",)]
assert s["count"] == 1 and s["sources"] == [T] and s["groups"] == ["spring-g"], s
assert s["reason"] == "org.example.BadOrder: order 1234 is bad", s
c = gs[("connect",)]
assert c["count"] == 1 and c["groups"] == ["sink-1"], c
assert c["reason"] == "org.apache.kafka.connect.errors.DataException: Converting byte[] failed at 17", c
for g in l["groups"]:
    assert len(g["fingerprint"]) == 16, g
PY

# Filters.
count() { python3 -c 'import json,sys; l=json.load(sys.stdin); print(len(l["groups"]), sum(g["count"] for g in l["groups"]))'; }
[[ $(mr dlq list --json --group spring-g "$D" | count) == "1 1" ]] &&
    mrt_pass "--group" || mrt_fail "--group spring-g"
[[ $(mr dlq list --json --source nope "$D" | count) == "0 0" ]] &&
    mrt_pass "--source of another topic: nothing" || mrt_fail "--source nope"
[[ $(mr dlq list --json --key spring-k "$D" | count) == "1 1" ]] &&
    mrt_pass "--key" || mrt_fail "--key spring-k"
fp=$(python3 -c 'import json,sys; print([g for g in json.load(open(sys.argv[1]))["groups"] if g["dialects"]==["connect"]][0]["fingerprint"])' "$work/all.json")
[[ $(mr dlq list --json --fingerprint "$fp" "$D" | count) == "1 1" ]] &&
    mrt_pass "--fingerprint" || mrt_fail "--fingerprint $fp"
[[ $(mr dlq list --json --fingerprint 0123456789abcdef "$D" | count) == "0 0" ]] &&
    mrt_pass "an unknown fingerprint lists nothing" || mrt_fail "unknown fingerprint"
[[ $(mr dlq list --json --since 2098-01-01T00:00:00Z "$D" | count) == "1 1" ]] &&
    mrt_pass "--since (quarantine time)" || mrt_fail "--since"
[[ $(mr dlq list --json --since -10m --until now --dialect spring "$D" | count) == "1 1" ]] &&
    mrt_pass "--since -10m --until now --dialect" || mrt_fail "--since -10m --until now --dialect spring"
mr dlq list "$D" >"$work/table.txt" && grep -q '^3 records in 3 groups (1 duplicate' "$work/table.txt" &&
    grep -q 'order 1234 is bad' "$work/table.txt" &&
    mrt_pass "the table" || mrt_fail "the table: $(cat "$work/table.txt")"

# show: each decoded.
pos() { python3 -c 'import json,sys; g=[g for g in json.load(open(sys.argv[1]))["groups"] if g["dialects"]==[sys.argv[2]]][0]["first"]; print(g["partition"], g["offset"])' "$work/all.json" "$1"; }
mr dlq show --json "$D" $(pos spring) >"$work/spring.json" || mrt_fail "show spring exits $?"
python3 - "$work/spring.json" "$T" <<'PY' && mrt_pass "show: Spring's decoded, its binary payload as base64" || mrt_fail "show spring: $(cat "$work/spring.json")"
import base64, json, sys
s = json.load(open(sys.argv[1])); d = s["dead_letter"]
assert s["payload_encoding"] == "base64", s
assert base64.b64decode(s["payload"]) == b"\x00\x01\xfe\xffbinary", s
assert s["key"] == "spring-k" and s["key_encoding"] == "text", s
assert d["dialect"] == "spring" and d["topic"] == sys.argv[2], d
assert d["partition"] == 1 and d["offset"] == 7 and d["group"] == "spring-g", d
assert d["exception"] == "org.example.BadOrder" and d["message"] == "order 1234 is bad", d
assert d["reason"] == "org.example.BadOrder: order 1234 is bad", d
assert {"name": "kafka_dlt-original-offset", "value": "7", "value_encoding": "text"} in s["headers"], s
PY
mr dlq show --json "$D" $(pos connect) >"$work/connect.json" || mrt_fail "show connect exits $?"
python3 - "$work/connect.json" "$T" <<'PY' && mrt_pass "show: Connect's decoded" || mrt_fail "show connect: $(cat "$work/connect.json")"
import json, sys
s = json.load(open(sys.argv[1])); d = s["dead_letter"]
assert s["payload"] == '{"broken": ' and s["payload_encoding"] == "text", s
assert d["dialect"] == "connect" and d["topic"] == sys.argv[2], d
assert d["partition"] == 0 and d["offset"] == 3 and d["group"] == "sink-1", d
assert d["task_id"] == 2 and d["stage"] == "VALUE_CONVERTER", d
assert d["quarantined"] is None and s["time"] is not None, s
PY
python3 - "$work/mr.json" "$T" <<'PY' && mrt_pass "show: mailroomd's decoded" || mrt_fail "show mailroom: $(cat "$work/mr.json")"
import json, sys
s = json.load(open(sys.argv[1])); d = s["dead_letter"]
assert s["payload"] == "poison payload" and s["key"] == "poison-1", s
assert d["dialect"] == "mailroom" and d["topic"] == sys.argv[2], d
assert d["attempts"] == 1 and d["reason"] == "bad schema 42", d
assert d["group"].startswith("g-") and d["quarantined"] and d["first_failure"], d
assert any(h["name"] == "ce_id" for h in s["headers"]), s
PY
mr dlq show "$D" $(pos spring) >"$work/spring.txt" &&
    grep -q '^payload *(base64) AAH+/2JpbmFyeQ==$' "$work/spring.txt" &&
    mrt_pass "show's text: base64 for binary" || mrt_fail "show text: $(cat "$work/spring.txt")"

# Bad input: a clear sentence and the exit code.
expect() { # CODE PATTERN CMD...
    local want=$1 pat=$2 rc=0
    shift 2
    mr "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ $rc -eq $want ]] && grep -q -- "$pat" "$work/err"; then
        mrt_pass "$* exits $want: $(head -1 "$work/err")"
    else
        mrt_fail "$* exits $rc (want $want): $(cat "$work/err")"
    fi
}
expect 1 "MR_ENOENT: no topic nope-$$.dlq: nothing was quarantined" dlq list "nope-$$.dlq"
expect 1 "MR_ENOENT: no topic" dlq show "nope-$$.dlq" 0 0
expect 1 "MR_EINVAL: offset 999 is out of range" dlq show "$D" 0 999
expect 1 "MR_EINVAL: .*partitions 0 to 1, not 7" dlq show "$D" 7 0
expect 2 "16 hex digits" dlq list --fingerprint 12xz "$D"
expect 2 "since is after --until" dlq list --since 2026-02-01 --until 2026-01-01 "$D"
expect 2 "RFC 3339" dlq list --since yesterday "$D"
expect 2 "PARTITION and OFFSET" dlq show "$D" 0 1x
# Asking did not create it.
mr topics list | grep -q "nope-$$" && mrt_fail "asking created nope-$$.dlq" ||
    mrt_pass "a missing topic is not created by asking"

mrt_finish 30 "$log"
