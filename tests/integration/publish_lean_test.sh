#!/usr/bin/env bash
# The lean envelope (producer.envelope=lean, docs/PROTOCOL.md "The lean
# envelope") end to end: a mailroomd started lean writes ce_id and only the
# headers a publisher set, read back with kcat (-f '%h', in order); ids,
# the dedupe window and `mailroom consume` (ids, headers, record times)
# work on such records; SIGHUP to full brings the CloudEvents headers
# back, and a reload with another word is refused (the running setting
# kept).
#
# Usage: publish_lean_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat python3 timeout
mrt_workdir lean

mr() { timeout 60 "$MR" --url "$url" "$@"; }

echo '{"producer.envelope": "lean"}' >"$work/settings.json"
mrt_start_daemon mailroomd -c "$work/settings.json"
bootstrap=$(mr status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap"])') || {
    echo "FAIL: mailroomd did not answer status"
    exit 1
}
T="lean-$mode-$$"
mr topics create "$T" --partitions 2 >/dev/null || mrt_fail "topics create $T"

# publish_hdrs KEY ARGS...: publish one message (--json), then print its
# ack's "id duplicate" on the first line and its record's headers as kcat
# shows them (name=value, comma-separated, in order) on the second.
publish_hdrs() {
    local key=$1 ack p o id dup
    shift
    ack=$(mr publish "$T/$key" "payload-$key" --json "$@") || {
        echo "publish failed" >&2
        return 1
    }
    read -r p o id dup < <(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); print(a["partition"], a["offset"], a["id"], a.get("duplicate", False))' "$ack")
    echo "$id $dup"
    timeout 60 kcat -b "$bootstrap" -C -t "$T" -p "$p" -o "$o" -c 1 -e -q \
        -f '%h\n' 2>/dev/null
}

# capture KEY ARGS...: publish (publish_hdrs); sets got (the headers),
# ack_id and ack_dup. Returns 1 if the publish failed.
capture() {
    local out
    got="" ack_id="" ack_dup=""
    out=$(publish_hdrs "$@") || return 1
    got=$(sed -n 2p <<<"$out")
    ack_id=$(sed -n 1p <<<"$out" | cut -d' ' -f1)
    ack_dup=$(sed -n 1p <<<"$out" | cut -d' ' -f2)
}

# expect_hdrs WHAT WANT KEY ARGS...: the record's headers are exactly WANT.
expect_hdrs() {
    local what=$1 want=$2
    shift 2
    if ! capture "$@"; then
        mrt_fail "$what: the publish failed"
    elif [[ $got == "$want" ]]; then
        mrt_pass "$what: $got"
    else
        mrt_fail "$what: headers '$got', expected '$want'"
    fi
}

# --- lean -----------------------------------------------------------------
id1="lean-id-1-$$"
expect_hdrs "lean, nothing set: ce_id only" "ce_id=$id1" k1 --id "$id1"
expect_hdrs "lean, the same id again is a duplicate" "ce_id=$id1" k1 --id "$id1"
[[ $ack_dup == True ]] || mrt_fail "the same id again in lean: not a duplicate ($ack_dup)"
# The id mailroomd assigned (the ack says which) is the record's ce_id.
if capture k2 && [[ $got == "ce_id=$ack_id" && ${#ack_id} -eq 36 ]]; then
    mrt_pass "lean, an assigned id: $got"
else
    mrt_fail "lean, an assigned id: headers '$got', the ack's id '$ack_id'"
fi
id3="lean-id-3-$$"
expect_hdrs "lean, what the publisher set, in the envelope's order" \
    "ce_id=$id3,ce_type=t.lean,content-type=text/plain,mr_correlation_id=c-3,x-a=1,x-b=2" \
    k3 --id "$id3" -H x-a=1 --type t.lean -H x-b=2 --correlation-id c-3 \
    --content-type text/plain

# mailroom consume reads lean records: their ids, headers and times.
if mr consume -g "g-$T" -n 3 --idle 30000 --json "$T" >"$work/consume.out" 2>"$work/consume.err"; then
    if python3 - "$work/consume.out" "$id1" "$id3" <<'EOF'; then
import json, sys, time
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by_id = {r["id"]: r for r in recs}
assert len(recs) == 3, "%d deliveries, expected 3" % len(recs)
assert sys.argv[2] in by_id and sys.argv[3] in by_id, sorted(by_id)
now = time.time() * 1000
for r in recs:
    names = [h[0] for h in r["headers"]]
    assert names[0] == "ce_id" and "ce_specversion" not in names, names
    assert dict(r["headers"])["ce_id"] == r["id"], r
    # No ce_time: the record's own timestamp is the time, and it is set.
    assert 0 < now - r["timestamp_ms"] < 3600 * 1000, r["timestamp_ms"]
r3 = by_id[sys.argv[3]]
assert [h[0] for h in r3["headers"]] == ["ce_id", "ce_type", "content-type",
    "mr_correlation_id", "x-a", "x-b"], r3["headers"]
assert r3["payload"] == "payload-k3", r3
EOF
        mrt_pass "mailroom consume: 3 lean records, their ids, headers and timestamps"
    else
        mrt_fail "mailroom consume of lean records: $(head -c 1500 "$work/consume.out")"
    fi
else
    mrt_fail "mailroom consume exited $?: $(head -c 500 "$work/consume.err")"
fi

# --- SIGHUP: full, then a word that is neither ------------------------------
# reload SETTINGS SAYS: write the file, SIGHUP, and wait (up to 10 s) for
# mailroomd to log SAYS once more than before: it has applied the file
# ('msg="reloaded"') or refused it ('reload refused').
reload() {
    local before
    before=$(grep -c -- "$2" "$log")
    echo "$1" >"$work/settings.json"
    kill -HUP "$dpid"
    for _ in $(seq 100); do
        [[ $(grep -c -- "$2" "$log") -gt $before ]] && return 0
        sleep 0.1
    done
    mrt_fail "SIGHUP with $1: mailroomd did not log '$2' within 10 s"
}
reload '{"producer.envelope": "full"}' 'msg="reloaded"'
id4="lean-id-4-$$"
# ce_time is the time mailroomd took it: its shape, not its value.
if capture k4 --id "$id4" && [[ $got =~ ^ce_specversion=1\.0,ce_id=$id4,ce_source=mailroomd,ce_type=mailroom\.message,ce_time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z$ ]]; then
    mrt_pass "reloaded full: the CloudEvents envelope again: $got"
else
    mrt_fail "reloaded full: headers '$got'"
fi
reload '{"producer.envelope": "thin"}' 'reload refused'
grep -q "producer.envelope: 'thin' is neither full nor lean" "$log" ||
    mrt_fail "a reload with producer.envelope=thin is not refused in the log"
id5="lean-id-5-$$"
if capture k5 --id "$id5" && [[ $got == "ce_specversion=1.0,ce_id=$id5,"* ]]; then
    mrt_pass "a refused reload keeps the running envelope (full)"
else
    mrt_fail "after a refused reload: '$got'"
fi

mrt_stop_daemon
mrt_finish 40 "$log"
