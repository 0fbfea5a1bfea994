#!/usr/bin/env bash
# mailroomd's signals (STYLE.md, broker/main.c): SIGTERM drains and stops
# with exit 0 while a big publish is in flight, and the publisher gets an ack
# or a clear error for every line, without hanging; SIGPIPE is ignored;
# SIGHUP reloads the reloadable settings of the -c file (log.level,
# cloudevents.source) and survives a broken file; one SIGINT stops cleanly,
# a second one exits at once while the first still drains.
#
# Usage: shutdown_test.sh [embedded|kafka]
#   embedded (default): the embedded cluster dies with mailroomd, so acked
#             lines are only counted, not read back
#   kafka:    the fixture's broker ($MR_KAFKA_DIR); every acked line is then
#             read back from Kafka (exit 77 when it is unavailable)
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_workdir shutdown

# alive: mailroomd still answers status.
answers() { timeout 30 "$MR" --url "$url" --timeout 5000 status >/dev/null 2>&1; }

# status_field EXPR: a python expression over the status JSON j.
status_field() {
    "$MR" --url "$url" status --json 2>/dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null
}

# --- SIGTERM drains: a publish in flight gets its ack ------------------------
if [[ $mode == embedded ]]; then
    mrt_start_daemon drain --set fault_injection=true
    D="drain-$$"
    "$MR" --url "$url" topics create "$D" --partitions 1 >/dev/null || mrt_fail "topics create $D"
    "$MR" --url "$url" publish "$D" warm-up >/dev/null || mrt_fail "warm-up publish"
    # Kafka now takes 1.5 s to answer: the publish below is in flight when
    # SIGTERM comes, and the drain waits for it (shutdown.timeout_ms 10 s).
    "$MR" --url "$url" admin '{"op":"fault.broker_rtt","broker":1,"rtt_ms":1500}' >/dev/null ||
        mrt_fail "fault.broker_rtt"
    timeout 60 "$MR" --url "$url" --timeout 20000 publish "$D/k" in-flight --json \
        >"$work/drain.out" 2>"$work/drain.err" &
    cpid=$!
    mrt_track "$cpid"
    for _ in $(seq 100); do
        [[ $(status_field 'j["producer"]["outq"]') -gt 0 ]] && break
        sleep 0.05
    done
    kill -TERM "$dpid"
    mrt_wait_exit "$dpid" 60 || mrt_fail "mailroomd exited with $? on SIGTERM (draining one publish)"
    mrt_wait_exit "$cpid" 60
    crc=$?
    if [[ $crc -eq 0 ]] && grep -q '"status":"ok"' "$work/drain.out"; then
        mrt_pass "a publish in flight at SIGTERM is drained and acked"
    else
        mrt_fail "a publish in flight at SIGTERM: exit $crc, ack $(cat "$work/drain.out") $(cat "$work/drain.err") (mailroomd waited for Kafka: $(grep -c 'draining: 1 requests' "$log") drain logged)"
    fi
fi

# --- SIGTERM with a big publish in flight ----------------------------------
lines=200000
T="shutdown-$mode-$$"
python3 -c '
import sys
n = int(sys.argv[1])
sys.stdout.write("".join("k%d:line-%d-%s\n" % (i % 100, i, "x" * 40) for i in range(n)))
' "$lines" >"$work/lines.txt"

if [[ $mode == embedded ]]; then
    # A slow broker, so that SIGTERM lands while the publish is under way.
    mrt_start_daemon term --set fault_injection=true
    "$MR" --url "$url" admin '{"op":"fault.broker_rtt","broker":1,"rtt_ms":20}' >/dev/null ||
        mrt_fail "fault.broker_rtt"
else
    mrt_start_daemon term
fi
"$MR" --url "$url" topics create "$T" --partitions 4 >/dev/null || mrt_fail "topics create $T"
timeout 180 "$MR" --url "$url" --timeout 5000 publish "$T" --lines --key-delim : \
    --batch 500 -f "$work/lines.txt" --json >"$work/acks.jsonl" 2>"$work/publish.err" &
ppid=$!
mrt_track "$ppid"
# Mid-way: once some acks are in, while most lines are not.
for _ in $(seq 600); do
    [[ -s "$work/acks.jsonl" ]] && break
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.1
done
acked_before=$(wc -l <"$work/acks.jsonl")
kill -TERM "$dpid"
if mrt_wait_exit "$dpid" 60; then
    mrt_pass "mailroomd exits 0 on SIGTERM with a publish in flight ($acked_before acks before it)"
else
    rc=$?
    mrt_fail "mailroomd exited with $rc on SIGTERM (255: still running after 60 s)"
fi
if [[ $acked_before -ge $lines ]]; then
    mrt_fail "the publish was over before SIGTERM: nothing was in flight"
fi
mrt_wait_exit "$ppid" 200
prc=$?
# 0: all acked; 1: some refused (MR_ESHUTDOWN while draining); 3: some
# requests were never sent because mailroomd had gone; 5: some requests in
# flight got no answer before mailroomd went away, and it did not come back
# within the publisher's timeout: their outcome is unknown (cli/cli.h).
case $prc in
    0 | 1 | 3 | 5) mrt_pass "the publisher ends with $prc" ;;
    124 | 255) mrt_fail "the publisher hung (exit $prc)" ;;
    *) mrt_fail "the publisher exits with $prc: $(tail -n 3 "$work/publish.err")" ;;
esac
# Every line got exactly one ack line (ok, or an error with a sentence), or
# the publisher said that it could not send the rest.
python3 - "$work/acks.jsonl" "$lines" "$work/publish.err" >"$work/acks.summary" <<'EOF'
import collections, json, sys
total = int(sys.argv[2])
err = open(sys.argv[3]).read()
acks = []
for i, l in enumerate(open(sys.argv[1])):
    try:
        acks.append(json.loads(l))
    except ValueError:
        sys.exit("ack line %d is not JSON (cut short?): %r" % (i + 1, l[:200]))
ok = [a for a in acks if a["status"] == "ok"]
bad = [a for a in acks if a["status"] != "ok"]
ids = collections.Counter(a["id"] for a in ok)
dup = [i for i, n in ids.items() if n > 1]
assert not dup, "%d ids acked more than once, e.g. %s" % (len(dup), dup[:3])
for a in bad:
    assert a.get("error") and len(a["error"]) >= 5, "a failed ack without a reason: %r" % a
assert len(acks) <= total, "%d acks for %d lines" % (len(acks), total)
if len(acks) < total:
    assert "publish failed" in err, "%d of %d lines got no ack line, and the publisher did not say it could not send them (stderr: %r)" % (total - len(acks), total, err[-300:])
statuses = collections.Counter(a["status"] for a in bad)
print(len(ok), len(bad), total - len(acks), ",".join("%s:%d" % kv for kv in sorted(statuses.items())) or "none")
EOF
if [[ $? -eq 0 ]]; then
    read -r n_ok n_bad n_unsent statuses <"$work/acks.summary"
    mrt_pass "every line accounted for: $n_ok acked, $n_bad failed ($statuses), $n_unsent reported unsent"
    [[ $n_ok -gt 0 ]] || mrt_fail "nothing was acked before the shutdown"
else
    mrt_fail "the publisher's acks do not account for every line"
fi
# A failed message's ack names it (topic and id), so that it can be
# published again with the same id, as the error sentences advise.
python3 - "$work/acks.jsonl" <<'EOF' || mrt_fail "failed acks do not name their message"
import json, sys
bad = unnamed = 0
for l in open(sys.argv[1]):
    try:
        a = json.loads(l)
    except ValueError:
        continue
    if a["status"] != "ok":
        bad += 1
        unnamed += not a["id"] or not a["topic"]
if unnamed:
    sys.exit("%d of %d failed acks have no id or topic, e.g. the publisher cannot retry them with the same id" % (unnamed, bad))
EOF
grep -q 'msg="stopped"' "$log" || mrt_fail "mailroomd did not log that it stopped"

if [[ $mode == kafka && -s "$work/acks.jsonl" ]]; then
    # Every acked line is in Kafka (at least once: the publisher may have
    # been told a line failed that Kafka wrote after all).
    n_ok=$(grep -c '"status":"ok"' "$work/acks.jsonl")
    timeout 120 kcat -b "$brokers" -C -t "$T" -o beginning -e -q -f '%h\n' 2>/dev/null |
        sed -n 's/.*ce_id=\([^,]*\).*/\1/p' | sort -u >"$work/kafka.ids"
    python3 -c '
import json, sys
ok = sorted(a["id"] for a in map(json.loads, open(sys.argv[1])) if a["status"] == "ok")
have = set(l.strip() for l in open(sys.argv[2]))
missing = [i for i in ok if i not in have]
assert not missing, "%d acked lines are not in Kafka, e.g. %s" % (len(missing), missing[:3])
' "$work/acks.jsonl" "$work/kafka.ids" && mrt_pass "all $n_ok acked lines are in Kafka" ||
        mrt_fail "acked lines are missing from Kafka"
fi

# --- SIGPIPE is ignored; SIGHUP reloads ----------------------------------------
cat >"$work/settings.json" <<'EOF'
{"log.level": "info", "cloudevents.source": "before-reload"}
EOF
mrt_start_daemon hup -c "$work/settings.json"
bootstrap=$brokers
[[ -n $bootstrap ]] || bootstrap=$(status_field 'j["kafka"]["bootstrap"]')
[[ -n $bootstrap ]] || mrt_fail "mailroomd's status names no Kafka bootstrap"
H="hup-$mode-$$"
"$MR" --url "$url" topics create "$H" --partitions 1 >/dev/null || mrt_fail "topics create $H"

# ce_source of a fresh publish, as Kafka has it.
source_now() {
    local out p o
    out=$("$MR" --url "$url" publish "$H" probe --json) || return 1
    read -r p o < <(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); print(a["partition"], a["offset"])' "$out")
    timeout 60 kcat -b "$bootstrap" -C -t "$H" -p "$p" -o "$o" -c 1 -e -q -f '%h' 2>/dev/null |
        tr ',' '\n' | sed -n 's/^ce_source=//p'
}

kill -PIPE "$dpid"
sleep 0.5
if kill -0 "$dpid" 2>/dev/null && answers; then
    mrt_pass "SIGPIPE does not kill mailroomd"
else
    mrt_fail "mailroomd did not survive SIGPIPE"
fi
got=$(source_now)
[[ $got == before-reload ]] || mrt_fail "ce_source from the -c file: '$got'"

cat >"$work/settings.json" <<'EOF'
{"log.level": "debug", "cloudevents.source": "after-reload"}
EOF
kill -HUP "$dpid"
for _ in $(seq 100); do
    grep -q 'SIGHUP: reloading' "$log" && break
    sleep 0.1
done
grep -q 'SIGHUP: reloading' "$log" || mrt_fail "no reload logged after SIGHUP"
got=""
for _ in $(seq 20); do
    got=$(source_now)
    [[ $got == after-reload ]] && break
    sleep 0.2
done
if [[ $got == after-reload ]] && answers; then
    mrt_pass "SIGHUP reloads cloudevents.source and log.level=debug, and mailroomd still answers"
else
    mrt_fail "after SIGHUP, ce_source is '$got', expected 'after-reload'"
fi

# A broken file on reload: an error logged, the running settings kept.
echo '{"log.level": ' >"$work/settings.json"
kill -HUP "$dpid"
for _ in $(seq 100); do
    [[ $(grep -c 'SIGHUP: reloading' "$log") -ge 2 ]] && break
    sleep 0.1
done
sleep 0.3
if kill -0 "$dpid" 2>/dev/null && answers; then
    mrt_pass "a broken settings file on SIGHUP does not stop mailroomd"
else
    mrt_fail "mailroomd died on SIGHUP with a broken settings file"
fi
grep -q 'level=err component=config' "$log" || mrt_fail "the broken settings file is not reported in the log"
got=$(source_now)
[[ $got == after-reload ]] || mrt_fail "after a failed reload, ce_source is '$got', expected the running 'after-reload'"

# log.level=err through SIGHUP: the notices of the shutdown are not logged.
cat >"$work/settings.json" <<'EOF'
{"log.level": "err", "cloudevents.source": "after-reload"}
EOF
kill -HUP "$dpid"
for _ in $(seq 100); do
    [[ $(grep -c 'SIGHUP: reloading' "$log") -ge 3 ]] && break
    sleep 0.1
done
sleep 0.3
answers || mrt_fail "mailroomd does not answer after the third SIGHUP"
# One SIGINT: drain and stop, exit 0.
kill -INT "$dpid"
if mrt_wait_exit "$dpid" 60; then
    mrt_pass "one SIGINT stops mailroomd with exit 0"
else
    mrt_fail "one SIGINT: mailroomd exited with $? (255: still running after 60 s)"
fi
if grep -q 'msg="stopping"' "$log"; then
    mrt_fail "log.level=err from SIGHUP was not applied: the 'stopping' notice was logged"
else
    mrt_pass "log.level=err from SIGHUP silences the notices"
fi

# --- a second SIGINT exits at once, while the first drains ----------------------
if [[ $mode == embedded ]]; then
    mrt_start_daemon int --set fault_injection=true --set shutdown.timeout_ms=60000 \
        --set producer.message_timeout_ms=120000
    I="int-$$"
    "$MR" --url "$url" topics create "$I" --partitions 2 >/dev/null || mrt_fail "topics create $I"
    "$MR" --url "$url" admin '{"op":"fault.broker_down","broker":1}' >/dev/null ||
        mrt_fail "fault.broker_down"
    # Messages that Kafka cannot confirm: the drain would wait 60 s for them.
    head -n 1000 "$work/lines.txt" >"$work/few.txt"
    timeout 180 "$MR" --url "$url" --timeout 5000 publish "$I" --lines --key-delim : \
        -f "$work/few.txt" --json >/dev/null 2>&1 &
    mrt_track "$!"
    inflight=0
    for _ in $(seq 100); do
        inflight=$(status_field 'j["producer"]["outq"]')
        [[ ${inflight:-0} -gt 0 ]] && break
        sleep 0.1
    done
    [[ ${inflight:-0} -gt 0 ]] || mrt_fail "no message waiting for Kafka before SIGINT"
    kill -INT "$dpid"
    sleep 1
    if ! kill -0 "$dpid" 2>/dev/null; then
        mrt_fail "after one SIGINT with unconfirmed messages, mailroomd did not drain (it is gone within 1 s)"
    fi
    kill -INT "$dpid"
    # At once: far less than the 60 s the drain would take.
    mrt_wait_exit "$dpid" 15
    rc=$?
    if [[ $rc -eq 130 ]]; then
        mrt_pass "a second SIGINT exits at once (130) while the first drains"
    else
        mrt_fail "a second SIGINT: exit $rc, expected 130 (255: still running after 15 s)"
    fi
fi

mrt_finish 20 "$work"/*.log
