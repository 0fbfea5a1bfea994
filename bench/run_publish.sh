#!/usr/bin/env bash
# The publish benchmark (docs/benchmarks/publish.md): builds what is
# missing, starts a real single-node Kafka (tests/kafka/kafka.sh) and a
# mailroomd on it in a temporary directory, runs publish_bench in mode
# both (raw librdkafka and mailroom against the same Kafka, in the same
# run) for 100-byte and 1 KiB messages, then stops everything. Everything
# listens on 127.0.0.1.
#
# References follow the main runs: mailroom batched against the raw
# producer writing mailroomd's CloudEvents headers (issue #13's target 1:
# >= 0.9x), mailroom batched with a second mailroomd writing the lean
# envelope (producer.envelope=lean) against the raw producer writing none
# (target 2: >= 0.5x), and the latency measured again with linger.ms 0 on
# both sides (a third mailroomd). The first two also publish one message
# per call (target 3), so that it is measured against a raw producer
# writing the same headers as well as one writing none. Every mailroom
# run reports mailroomd's CPU µs per message beside the raw producer's.
#
# Usage: bench/run_publish.sh [BUILD_DIR]   (default: build-bench at the
#                                            repository root)
# Environment (defaults in brackets):
#   N100 [1000000]  N1K [200000]   messages per throughput case
#   BATCH [1000]  INFLIGHT [8]     messages per request, requests in flight
#   LINGER [2]                     linger.ms of both producers
#   LINGER_US [0]                  the client's linger_us (0: its default,
#                                  -1: no coalescing)
#   REPEAT [3]                     throughput runs per size (median reported)
#   SAMPLES [5000]                 latency samples per side
#   TIMEOUT_MS [10000]             the client's request timeout
#   REFERENCES [1]                 0: skip the reference runs
#   MAILROOMD [BUILD_DIR/mailroomd] another daemon binary, for A/B runs
#   KEEP=1                         keep the temporary directory (logs, data)
# Results are also saved to BUILD_DIR/bench-results/publish-<time>.txt.
# Exit status: 0 when every message of every case was acknowledged.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
N100=${N100:-1000000}
N1K=${N1K:-200000}
BATCH=${BATCH:-1000}
INFLIGHT=${INFLIGHT:-8}
LINGER=${LINGER:-2}
LINGER_US=${LINGER_US:-0}
REPEAT=${REPEAT:-3}
SAMPLES=${SAMPLES:-5000}
TIMEOUT_MS=${TIMEOUT_MS:-10000}
REFERENCES=${REFERENCES:-1}
BENCH_NAME=publish_bench
BENCH_ARGS=(--samples "$SAMPLES" --repeat "$REPEAT" --timeout-ms "$TIMEOUT_MS")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

bench_build
start_kafka
start_mailroomd "$WORK/mailroomd.log" "producer.linger_ms=$LINGER"
results_begin publish

run_bench "100-byte messages" --mode both --linger-ms "$LINGER" \
    --size 100 --count "$N100" --batch "$BATCH" --inflight "$INFLIGHT" \
    --linger-us "$LINGER_US" --mrd-pid "$MRD_PID"
run_bench "1 KiB messages" --mode both --linger-ms "$LINGER" \
    --size 1024 --count "$N1K" --batch "$BATCH" --inflight "$INFLIGHT" \
    --linger-us "$LINGER_US" --mrd-pid "$MRD_PID"
if [[ $REFERENCES == 1 ]]; then
    run_bench "reference: 100-byte, raw producer with mailroomd's headers" \
        --mode both --raw-headers --target 0.9 \
        --linger-ms "$LINGER" --samples 0 --size 100 --count "$N100" \
        --batch "$BATCH" --inflight "$INFLIGHT" --mrd-pid "$MRD_PID"
fi
status_and_stop
if [[ $REFERENCES == 1 ]]; then
    start_mailroomd "$WORK/mailroomd-lean.log" "producer.linger_ms=$LINGER" \
        producer.envelope=lean
    run_bench "lean envelope: 100-byte, raw producer without headers" \
        --mode both --target 0.5 --linger-ms "$LINGER" \
        --samples 0 --size 100 --count "$N100" --batch "$BATCH" \
        --inflight "$INFLIGHT" --mrd-pid "$MRD_PID"
    stop_mailroomd
fi
if [[ $REFERENCES == 1 && $LINGER != 0 ]]; then
    start_mailroomd "$WORK/mailroomd-linger0.log" producer.linger_ms=0
    run_bench "reference: latency with linger.ms 0 on both sides" \
        --mode both --no-throughput --linger-ms 0 --size 100
    stop_mailroomd
fi

check_logs
summary '^(target|added by|mailroom batched|mailroom 1 per|raw librdkafka|raw producer|mailroomd )'
exit "$FAILED"
