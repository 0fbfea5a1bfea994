#!/usr/bin/env bash
# Kafka going away and coming back (issue #10, item 5), on the embedded
# cluster, whose one broker fault injection sets down and up: mailroomd
# says so (log, `mailroom status`, its JSON), a publish it cannot send
# fails with MR_EUNAVAIL and a sentence saying Kafka is unreachable (never
# an ack, never the client's own timeout: `mailroom`'s default outlasts
# producer.message_timeout_ms), and when the broker is back mailroomd finds
# it by itself, says how long it was away, and publishing and consuming go
# on without restarting anything.
#
# Usage: kafka_down_test.sh   (embedded only: real Kafka is stopped by
#                              publish_api_kafka's test_kafka_down)
# Environment: MR_BINARY_DIR (mailroomd, mailroom).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_binaries
mrt_need python3
mrt_workdir kafkadown

mr() { timeout 120 "$MR" --url "$url" "$@"; }
field() {
    mr status --json | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

# A short wait for Kafka, so that the refusal comes within seconds.
mrt_start_daemon mailroomd --set fault_injection=true \
    --set producer.message_timeout_ms=3000
T="kafkadown-$$"
G="kafkadown-g-$$"
mr topics create "$T" --partitions 2 >/dev/null || mrt_fail "topics create $T"
mr publish "$T/k" before >/dev/null || mrt_fail "publish before the outage"
[[ $(field 'j["kafka"]["reachable"]') == True ]] &&
    mrt_pass "status: Kafka reachable before the outage" ||
    mrt_fail "status: Kafka not reachable before the outage"

mr admin '{"op":"fault.broker_down","broker":1}' >/dev/null ||
    mrt_fail "fault.broker_down"
down=""
for _ in $(seq 200); do
    down=$(field 'j["kafka"]["reachable"]')
    [[ $down == False ]] && break
    sleep 0.1
done
[[ $down == False ]] && mrt_pass "status: Kafka unreachable once its broker is down" ||
    mrt_fail "status: Kafka still reachable 20 s after its broker went down"
mr status >"$work/status-down.txt"
grep -q '^KAFKA DOWN: unreachable for [0-9]* s: .' "$work/status-down.txt" &&
    mrt_pass "mailroom status says KAFKA DOWN, for how long and why" ||
    mrt_fail "mailroom status does not say Kafka is down: $(cat "$work/status-down.txt")"

# No --timeout: the default must outlast mailroomd's 3 s wait for Kafka.
mr publish --json "$T/k" during >"$work/during.json" 2>"$work/during.err"
rc=$?
if [[ $rc -eq 1 ]] && grep -q '"status": *"MR_EUNAVAIL"' "$work/during.json" &&
    grep -q 'Kafka is unreachable' "$work/during.json"; then
    mrt_pass "a publish during the outage fails with MR_EUNAVAIL and says why (exit 1)"
else
    mrt_fail "a publish during the outage: exit $rc, $(cat "$work/during.json" "$work/during.err")"
fi

mr admin '{"op":"fault.broker_up","broker":1}' >/dev/null ||
    mrt_fail "fault.broker_up"
up=""
for _ in $(seq 200); do
    up=$(field 'j["kafka"]["reachable"]')
    [[ $up == True ]] && break
    sleep 0.1
done
[[ $up == True ]] && mrt_pass "status: Kafka reachable again, found by mailroomd itself" ||
    mrt_fail "status: Kafka still unreachable 20 s after its broker came back"
mr publish "$T/k" after >/dev/null && mrt_pass "a publish after the outage is acked" ||
    mrt_fail "a publish after the outage failed"
mr consume -g "$G" -n 2 --idle 30000 --json "$T" >"$work/consumed.json" 2>"$work/consume.err"
if python3 - "$work/consumed.json" <<'PY'
import json, sys
got = [json.loads(l)["payload"] for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if got == ["before", "after"] else 1)
PY
then
    mrt_pass "the consumer reads what was acked, before and after, in order; nothing of the refused publish"
else
    mrt_fail "consumed: $(cat "$work/consumed.json" "$work/consume.err")"
fi
[[ $(grep -c 'msg="Kafka is unreachable' "$log") -eq 1 ]] &&
    mrt_pass "the log says once that Kafka is unreachable" ||
    mrt_fail "the log says $(grep -c 'msg="Kafka is unreachable' "$log") times that Kafka is unreachable"
grep -q 'down_ms=[0-9]* msg="Kafka is reachable again"' "$log" &&
    mrt_pass "the log says Kafka is back, and after how long" ||
    mrt_fail "the log does not say Kafka is back"
mrt_stop_daemon
mrt_finish 20 "$log"
