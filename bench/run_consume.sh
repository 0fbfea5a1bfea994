#!/usr/bin/env bash
# The consume benchmark (docs/benchmarks/consume.md): builds what is
# missing, starts a real single-node Kafka (tests/kafka/kafka.sh) and a
# mailroomd on it in a temporary directory, runs consume_bench (a raw
# librdkafka consumer and mailroom's unordered, key and partition modes on
# the same preloaded topic, then the slow-handler case), then stops
# everything. Everything listens on 127.0.0.1.
#
# mailroomd runs twice: with its defaults (consumer.journal=true: each
# SETTLE of acks waits for one journal record written to Kafka, which also
# carries the FETCH's record of attempts),
# then, as a reference, a second mailroomd with consumer.journal=false.
#
# Usage: bench/run_consume.sh [BUILD_DIR]   (default: build-bench at the
#                                            repository root)
# Environment (defaults in brackets):
#   N [1000000]              messages preloaded and read per case
#   SIZE [100]               payload bytes
#   PARTITIONS [4]  KEYS [1000]   the data topic
#   BATCH [1000]  FETCHERS [4]    messages per fetch, fetch threads
#   CLIENT [sync]               sync: FETCHERS threads fetch and ack in turn;
#                               async: one mr_consume_run_async
#   PARTITION_N [20000]      messages read in partition mode
#   SLOW_N [2000]  SLOW_KEYS [50]  SLOW_INFLIGHT [100]  SLOW_WORK [sleep]
#   REPEAT [3]               throughput runs (median reported)
#   MODE [all]               consume_bench's --mode: e.g. raw,run,mirror
#                            for mirrored actors against mr_consume_run
#                            (SLOW_INFLIGHT is their workers)
#   REFERENCES [1]           0: skip the journal-off mailroomd
#   MAILROOMD [BUILD_DIR/mailroomd] another daemon binary, for A/B runs
#   SETS                     more mailroomd --set KEY=VALUE, space-separated
#   KEEP=1                   keep the temporary directory (logs, data)
# Results are also saved to BUILD_DIR/bench-results/consume-<time>.txt.
# Exit status: 0 when every case read every message it should.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
N=${N:-1000000}
SIZE=${SIZE:-100}
PARTITIONS=${PARTITIONS:-4}
KEYS=${KEYS:-1000}
BATCH=${BATCH:-1000}
FETCHERS=${FETCHERS:-4}
CLIENT=${CLIENT:-sync}
PARTITION_N=${PARTITION_N:-20000}
SLOW_N=${SLOW_N:-2000}
SLOW_KEYS=${SLOW_KEYS:-50}
SLOW_INFLIGHT=${SLOW_INFLIGHT:-100}
SLOW_WORK=${SLOW_WORK:-sleep}
REPEAT=${REPEAT:-3}
MODE=${MODE:-all}
REFERENCES=${REFERENCES:-1}
BENCH_NAME=consume_bench
BENCH_ARGS=(--repeat "$REPEAT" --count "$N" --size "$SIZE"
    --partitions "$PARTITIONS" --keys "$KEYS" --batch "$BATCH"
    --fetchers "$FETCHERS" --client "$CLIENT"
    --partition-count "$PARTITION_N"
    --slow-count "$SLOW_N" --slow-keys "$SLOW_KEYS"
    --slow-inflight "$SLOW_INFLIGHT" --slow-work "$SLOW_WORK")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

bench_build
start_kafka
# shellcheck disable=SC2086
start_mailroomd "$WORK/mailroomd.log" consumer.journal=true ${SETS:-}
results_begin consume

run_bench "mailroomd defaults (consumer.journal=true)" --mode "$MODE" \
    --topic mrcbench-journal --mrd-pid "$MRD_PID" --kafka-pid "$KAFKA_PID"
status_and_stop
if [[ $REFERENCES == 1 ]]; then
    # shellcheck disable=SC2086
    start_mailroomd "$WORK/mailroomd-nojournal.log" consumer.journal=false \
        ${SETS:-}
    run_bench "reference: consumer.journal=false" --mode "$MODE" \
        --topic mrcbench-nojournal --mrd-pid "$MRD_PID" \
        --kafka-pid "$KAFKA_PID"
    stop_mailroomd
fi

check_logs
summary '^(## |target|mailroomd consumer.journal|raw librdkafka|mailroom |slow handler|mr_consume_run|mirrored actors|cpu seconds|cpu us per message|  (raw|unordered|key|partition) )'
exit "$FAILED"
