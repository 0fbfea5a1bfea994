#!/usr/bin/env bash
# kill -9 of mailroomd three times under one publisher and one consumer
# (issues #3 and #7).
#
# ONE `mailroom publish --lines --json --timeout 60000` streams 100,000
# messages (keys k0..k999; the payload carries the key and a per-key
# sequence number, ~50 bytes) into a 4-partition topic at a bounded rate,
# while ONE `mailroom consume --json --guard FILE --idle MS` (key mode)
# consumes them. mailroomd is killed with SIGKILL once the publisher's acks
# pass 20 %, 50 % and 80 % (and the consumer has delivered since the last
# restart), and restarted on the same URL at once. The publisher is never
# restarted: its client resends what was in flight, with the same ids, once
# mailroomd is back, so it must finish on its own, exit 0, one ok ack line
# per input line. The consumer must ride through the restarts too and exit 0
# on its own (--idle); with MR_CRASH_RESTART_CONSUMER=1 (while `mailroom
# consume` cannot reconnect) it is restarted when it dies, and that is no
# failure; with 0 (the default) a death is a failure (it is then restarted
# all the same, so that the other checks still say something).
#
# Then the whole topic is read back with kcat (the ce_id header, key and
# payload of each record; in embedded mode the data lives in mailroom_mockd
# and survives mailroomd's kill). Checks: every acked id is in Kafka; every
# record carries an id the publisher had, with that id's key and payload
# (a resend never makes a new id, so a duplicate record is a second record
# of an id already written); per key, the first records of ids are in
# sequence order (0 inversions); duplicate records are counted per kill and
# bounded (<= 5 % of the stream). On delivery: every acked message is
# delivered; the guard applies each id once (printed once without
# "duplicate": true); per key, first deliveries in sequence order;
# duplicate deliveries counted per kill and bounded (<= 5 %). Nothing is
# poisoned, so the dead-letter topic stays empty and the last mailroomd's
# breaker never opened (a session lost in a kill is one failure for it,
# however many records it held). A SUMMARY line
# gives the figures, then "N passed, N failed". The driver is
# crash_driver.py, beside this file.
#
# Usage: crash_test.sh [embedded|kafka]
#   embedded (default): librdkafka's mock cluster in a process of its own
#             (mailroom_mockd), mailroomd pointed at it with --brokers, so
#             that killing mailroomd does not kill the data. The mock
#             answers no CreateTopics: each subscribe waits ~10 s for the
#             journal topic's, so a consumer delivers ~15 s after a restart.
#   kafka:    the fixture's broker ($MR_KAFKA_DIR; exit 77 when unavailable)
# Environment: MR_BINARY_DIR (mailroomd, mailroom, tests/mailroom_mockd),
#   MR_KAFKA_DIR; MR_CRASH_RESTART_CONSUMER (0); MR_CRASH_MESSAGES (100000;
#   50000 on real Kafka);
#   MR_CRASH_RATE (messages per second offered to the publisher, 1200: ~85 s
#   of stream); MR_CRASH_IDLE_MS (the consumer's --idle, 30000: longer than
#   a restart takes it); MR_CRASH_SEED (the kill timings); KEEP=1 keeps the
#   work directory. About 125 s on 2 cores; every wait is bounded (the
#   driver by 480 s).
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
# On real Kafka half the stream (about 42 s of it) is enough for the three
# kills to land mid-stream: a restart there takes under a second.
if [[ $mode == kafka ]]; then
    export MR_CRASH_MESSAGES=${MR_CRASH_MESSAGES:-50000}
fi
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
mrt_need --skip python3 kcat
# The driver's children (mailroomd, the publisher, consumers) are in
# $work/pids, and the mock cluster is tracked: all killed on exit.
mrt_workdir crash

T="crash-$mode-$$"
G="crash-$mode-$$-g"
# The mock implements no CreateTopics: mailroom_mockd creates the topic.
cluster_start "$mode" "$work" "$T:4" || exit 1
brokers=$BROKERS
if [[ -n $cluster__mockd_pid ]]; then
    mrt_track "$cluster__mockd_pid"
fi

# mailroomd's settings for every incarnation. A mailroomd killed with -9
# leaves its group member behind until the session times out: 6 s (Kafka's
# smallest by default) rather than librdkafka's 45 s keeps each restart's
# rebalance short. lz4 keeps the mock's batches small: it keeps only about
# the last 5 MB of a partition, and the CloudEvents headers are ~150 bytes
# per record uncompressed.
daemon_args=(--brokers "$brokers"
    --set librdkafka.session.timeout.ms=6000
    --set librdkafka.heartbeat.interval.ms=1000
    --set librdkafka.compression.type=lz4)

if [[ $mode == kafka ]]; then
    # A first mailroomd only to create the topic; the driver starts its own.
    mrt_start_daemon setup
    if ! "$MR" --url "$url" --timeout 30000 topics create "$T" --partitions 4 >"$work/topics.out" 2>&1; then
        echo "FAIL: mailroom topics create $T --partitions 4: $(cat "$work/topics.out")"
        exit 1
    fi
    kill -TERM "$dpid"
    mrt_wait_exit "$dpid" 30
fi

mrt_run_driver 480 "$(dirname "$0")/crash_driver.py" "$MR" "$MRD" \
    "$work" "ipc://$work/mailroomd.sock" "$T" "$G" "$mode" "$brokers" \
    "${daemon_args[@]}"
rc=$?

if [[ $mode == embedded ]]; then
    # The mock drops the oldest records beyond ~5 MB a partition: a dropped
    # part of the group's journal could explain duplicate deliveries (the
    # driver reports the topic's own).
    for p in 0 1 2 3; do
        lo=$(timeout 30 kcat -b "$brokers" -C -t "__mailroom.journal.$G" -p "$p" \
            -o beginning -c 1 -e -q -f '%o\n' 2>/dev/null | head -n 1)
        if [[ -n $lo && $lo != 0 ]]; then
            echo "info: the mock dropped the journal's partition $p before offset $lo"
        fi
    done
fi
if [[ $rc -ne 0 ]]; then
    echo "mailroomd logs (last lines each):"
    mrt_tail_logs 15 "$work"/mailroomd-*.log
    # The publisher traces its connection and its resends
    # (MAILROOM_CLIENT_TRACE); the status is the last mailroomd's, taken
    # once the publisher was done.
    mrt_tail_logs 150 "$work/publish.err"
    mrt_tail_logs 10 "$work/consume.err" "$work/status-final.json"
    exit 1
fi
exit 0
