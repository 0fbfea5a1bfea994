#!/usr/bin/env bash
# The dead-letter benchmark (docs/benchmarks/dlq.md): builds what is missing,
# starts a real single-node Kafka (tests/kafka/kafka.sh) and a mailroomd on
# it in a temporary directory, runs dlq_bench (key mode: no poison against
# one key poisoned, rounds alternating), then stops everything. Everything
# listens on 127.0.0.1.
#
# Usage: bench/run_dlq.sh [BUILD_DIR]   (default: build-bench at the
#                                        repository root)
# Environment (defaults in brackets):
#   N [200000]  SIZE [100]  PARTITIONS [4]  KEYS [1000]   the data topic
#   BATCH [1000]  FETCHERS [4]    messages per fetch, fetch threads
#   ATTEMPTS [5]  BACKOFF [50-1000]  MULTIPLIER [2]  JITTER [0.2]
#                            the poisoned key's retry policy
#   REPEAT [3]               rounds of clean and poison, alternating
#   BREAKER [0]              1: then one run with mailroomd's default breaker
#   BUFFERED [0]             > 0: then REPEAT rounds again on a second
#                            mailroomd with consumer.max_buffered=BUFFERED
#   MAILROOMD [BUILD_DIR/mailroomd] another daemon binary, for A/B runs
#   KEEP=1                   keep the temporary directory (logs, data)
# Results are also saved to BUILD_DIR/bench-results/dlq-<time>.txt.
# Exit status: 0 when every run acked every healthy message once and found
# every poisoned one in its dead-letter topic.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
N=${N:-200000}
SIZE=${SIZE:-100}
PARTITIONS=${PARTITIONS:-4}
KEYS=${KEYS:-1000}
BATCH=${BATCH:-1000}
FETCHERS=${FETCHERS:-4}
ATTEMPTS=${ATTEMPTS:-5}
BACKOFF=${BACKOFF:-50-1000}
MULTIPLIER=${MULTIPLIER:-2}
JITTER=${JITTER:-0.2}
REPEAT=${REPEAT:-3}
BREAKER=${BREAKER:-0}
BUFFERED=${BUFFERED:-0}
BENCH_NAME=dlq_bench
BENCH_ARGS=(--count "$N" --size "$SIZE" --partitions "$PARTITIONS"
    --keys "$KEYS" --batch "$BATCH" --fetchers "$FETCHERS"
    --attempts "$ATTEMPTS" --backoff "$BACKOFF" --multiplier "$MULTIPLIER"
    --jitter "$JITTER")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

bench_build
start_kafka
start_mailroomd "$WORK/mailroomd.log"
results_begin dlq

run_bench "mailroomd defaults: clean and poison, $REPEAT rounds" \
    --mrd-pid "$MRD_PID" --variants clean,poison --repeat "$REPEAT" \
    --topic mrdlq
if [[ $BREAKER == 1 ]]; then
    run_bench "mailroomd defaults: poison with the default breaker" \
        --mrd-pid "$MRD_PID" --variants breaker --repeat 1 \
        --topic mrdlq-breaker
fi
status_and_stop
if (( BUFFERED > 0 )); then
    start_mailroomd "$WORK/mailroomd-buffered.log" \
        "consumer.max_buffered=$BUFFERED"
    run_bench "consumer.max_buffered=$BUFFERED: clean and poison" \
        --mrd-pid "$MRD_PID" --variants clean,poison --repeat "$REPEAT" \
        --topic mrdlq-buffered
    stop_mailroomd
fi

check_logs
summary '^(## |clean|poison|breaker|  healthy|  client|  mailroomd|  ratio|  run |  correctness|cpu seconds)'
exit "$FAILED"
