#!/usr/bin/env bash
# The HTTP API under failure (issue #12): mailroomd killed -9 under HTTP
# publishers and under an HTTP consumer, and Kafka down under HTTP traffic.
# mailroomd listens on a free loopback port with a token file; every
# incarnation on the same port and nng URL.
#
# 1. Two publishers, each on its own connection (keys k0..k9 and
#    k10..k19), publish 2,000 messages over HTTP in batches of 50, each
#    with an id, at a steady pace (250 a second together). Once 30 % are
#    acked, mailroomd is killed -9 and restarted at once. A request that
#    failed or got no answer (refused, reset, timed out) is sent again with
#    the same ids until it is acked. Then the topic is read back with kcat:
#    each ack's partition and offset hold its id, key and value; every id is
#    there, nothing else; per key, the first records of ids are in publish
#    order; ids written twice (in flight at the kill: mailroomd's dedupe
#    window does not survive it) are at most the 2 x 50 of the requests in
#    flight, each of a request that got no answer.
# 2. One HTTP consumer session (key mode) fetches and acks the topic;
#    mailroomd is killed -9 once 40 % are acked, and restarted. The old
#    session then answers 404 MR_ENOENT ("no session ...": it died with
#    mailroomd), the consumer subscribes again and goes on. Checks: every id
#    delivered (acked, but for those whose ack was in flight at the kill);
#    per key, first deliveries in order; nothing whose ack was answered
#    before the kill is delivered after it (docs/HTTP.md: an ack is
#    answered once the group's journal has it, and docs/ARCHITECTURE.md:
#    a record read again from the committed offset is found acked there);
#    what is delivered again was delivered and not acked at the kill, with
#    attempt >= 2 (the journal counted the first: the kill comes a second
#    after the held batch was fetched, once its record, written behind the
#    FETCH's answer, is in Kafka).
# 3. A mailroomd with producer.message_timeout_ms=3000 serves one HTTP
#    publisher (10 messages a request, one request after another), a
#    second connection polling GET /v1/status, /healthz and /readyz, and a
#    consumer session holding 5 messages that it acks in the outage, while
#    Kafka goes away for 10 s: the embedded cluster's broker set down and
#    up (fault injection, over HTTP's POST /v1/admin), or in kafka mode the
#    fixture's broker stopped and started (a watcher starts it again if the
#    test dies meanwhile). Checks: publishes in the outage are refused with
#    503 MR_EUNAVAIL saying Kafka is unreachable (every refusal a 503 or 504
#    with a JSON error); /readyz is 503 (kafka false, MR_EUNAVAIL); the
#    second connection is answered all along (/healthz and /v1/status 200);
#    the ack is answered only once Kafka is back (200, or 504 MR_EINDOUBT:
#    an ack waits for the group's journal, in Kafka), and those 5 are not
#    delivered again; once Kafka is back, with nothing restarted, /readyz
#    is 200 and publishes are acked again; every refused id, published
#    again with its id, is acked; Kafka holds every ack at its position,
#    and each id refused with nothing written exactly once (never a 2xx
#    for something not written, never a refusal for something written).
# The driver is http_outage_driver.py, beside this file; it prints the
# checks, a SUMMARY line, then "N passed, N failed". Every wait is bounded;
# no check is on a duration.
#
# Usage: http_outage_test.sh [embedded|kafka]
#   embedded (default): parts 1 and 2 on librdkafka's mock cluster in a
#             process of its own (mailroom_mockd), so that the data survives
#             mailroomd's kill; part 3 on mailroomd's own embedded cluster,
#             whose broker fault injection sets down. A subscribe there
#             waits ~5 s (the mock answers no CreateTopics for the group's
#             journal). About 60 s on 2 cores.
#   kafka:    the fixture's broker ($MR_KAFKA_DIR; exit 77 when
#             unavailable); part 3 stops and starts it. About 50 s.
# Environment: MR_BINARY_DIR (mailroomd, mailroom, tests/mailroom_mockd),
#   MR_SOURCE_DIR, MR_KAFKA_DIR; MR_HTTP_OUTAGE_MESSAGES (2000);
#   MR_HTTP_OUTAGE_DOWN_S (10); MR_HTTP_OUTAGE_SEED (the kill's timing
#   in a publish request); KEEP=1 keeps the work directory.
# Exit: 0 passed, 1 failed, 77 skipped.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
mrt_need python3 kcat
# The driver's mailroomd incarnations are in $work/pids, the mock cluster
# is tracked: all killed on exit.
mrt_workdir httpoutage
src=${MR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
[[ -f $src/examples/python/mailroom_http.py ]] || {
    echo "FAIL: no $src/examples/python/mailroom_http.py"
    exit 1
}
# mailroomd reads MAILROOM_* variables as settings: none from the caller's.
unset MAILROOM_HTTP_LISTEN MAILROOM_HTTP_TOKEN MAILROOM_HTTP_TOKEN_FILE

T="httpoutage-$mode-$$"
G="httpoutage-$mode-$$-g"
# The mock implements no CreateTopics: mailroom_mockd creates the topic (in
# kafka mode the driver does, over HTTP).
cluster_start "$mode" "$work" "$T:4" || exit 1
if [[ -n $cluster__mockd_pid ]]; then
    mrt_track "$cluster__mockd_pid"
fi
kafka=()
if [[ $mode == kafka ]]; then
    kafka=("$src/tests/kafka/kafka.sh" "$MR_KAFKA_DIR/broker")
fi

# The token, in a file of mode 0600 as mailroomd makes one.
(umask 077 && printf 'tok-%s-%s\n' "$$" "$RANDOM$RANDOM" >"$work/token")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

if mrt_run_driver 360 "$(dirname "$0")/http_outage_driver.py" "$MR" "$MRD" \
    "$work" "$src/examples/python" "$mode" "$BROKERS" \
    "http://127.0.0.1:$port" "ipc://$work/mailroomd.sock" "$T" "$G" \
    ${kafka[@]+"${kafka[@]}"}; then
    mrt_pass "the driver's checks (above)"
else
    mrt_fail "the driver's checks (above)"
fi
mrt_finish 15 "$work"/mailroomd-*.log
