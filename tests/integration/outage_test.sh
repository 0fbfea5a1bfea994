#!/usr/bin/env bash
# Kafka going away mid-stream and coming back (issue #10, item 5), under ONE
# `mailroom publish --lines --json` (bursts of 20 numbered lines a second,
# keys k0..k7, payload KEY:SEQ) and ONE `mailroom consume --json --guard
# FILE` (key mode), neither restarted, nor mailroomd:
#   embedded: the embedded cluster's broker set down for 10 s (fault
#             injection; producer.message_timeout_ms 3000, so that some
#             publishes fail with MR_EUNAVAIL during the outage);
#   kafka:    the fixture's broker stopped (kafka.sh stop) for 30 s and
#             started again; a watcher starts it again if the test dies
#             meanwhile, so later tests find it running.
# A line refused with MR_EUNAVAIL (nothing of it written) is fed again as
# a new line of its key (resent=LINE); one that failed with MR_ETIMEDOUT or
# MR_EINDOUBT may have been written, and could only be published again with
# its id, which --lines cannot: it is left in doubt (not acked; consumed
# once at most). Checks: `mailroom status` says KAFKA DOWN during the
# outage; the publisher finishes by itself, one ack line per line; every
# acked line is consumed, the guard making it once; nothing refused is
# consumed (never a false ack); per key, first deliveries in the order
# published; `mailroom consume` says once on stderr that Kafka is
# unreachable, and when it is back. A SUMMARY line gives the figures, among
# them how long consumption took to resume once Kafka was back
# (consume_resume_s) and publishing (publish_resume_s). The driver is
# outage_driver.py, beside this file. About 25 s embedded, 55 s on Kafka.
#
# Usage: outage_test.sh [embedded|kafka]
# Environment: MR_BINARY_DIR, MR_SOURCE_DIR, MR_KAFKA_DIR; MR_OUTAGE_SET
#   (more mailroomd settings, NAME=VALUE separated by spaces, e.g.
#   librdkafka.debug=cgrp); KEEP=1 keeps the work directory. Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need python3
mrt_workdir outage

sets=()
for s in ${MR_OUTAGE_SET:-}; do
    sets+=(--set "$s")
done
if [[ $mode == kafka ]]; then
    : "${MR_SOURCE_DIR:?MR_SOURCE_DIR must name the source directory}"
    mrt_start_daemon mailroomd ${sets[@]+"${sets[@]}"}
    down_s=30
    kafka=("$MR_SOURCE_DIR/tests/kafka/kafka.sh" "$MR_KAFKA_DIR/broker")
else
    mrt_start_daemon mailroomd --set fault_injection=true \
        --set producer.message_timeout_ms=3000 ${sets[@]+"${sets[@]}"}
    down_s=10
    kafka=()
fi
T="outage-$mode-$$"
G="outage-$mode-$$-g"
"$MR" --url "$url" --timeout 30000 topics create "$T" --partitions 2 >/dev/null ||
    mrt_fail "topics create $T"

if mrt_run_driver 280 "$(dirname "$0")/outage_driver.py" "$MR" "$url" \
    "$work" "$T" "$G" "$mode" "$down_s" ${kafka[@]+"${kafka[@]}"}; then
    mrt_pass "the driver's checks (above)"
else
    mrt_fail "the driver's checks (above)"
fi
mrt_stop_daemon
mrt_finish 20 "$log" "$work/consume.err" "$work/publish.err"
