#!/usr/bin/env bash
# Cost curves (issue #13, target 6; docs/benchmarks/curves.md): how
# mailroom's cost grows with the work, each point against raw librdkafka
# doing the same work on the same Kafka in the same run. Builds what is
# missing, starts a real single-node Kafka (tests/kafka/kafka.sh) in a
# temporary directory, and for every point a fresh mailroomd (defaults,
# journal on) that is stopped after it, so that its peak RSS is the
# point's. Everything listens on 127.0.0.1.
#
# Curves (CURVES picks some):
#   keys      consume, key mode, 1 k / 100 k / 1 M distinct keys
#   parts     consume, key mode, 4 / 64 / 256 partitions
#   groups    consume, key mode, 1 / 10 / 50 groups on one mailroomd, each
#             reading the whole topic at once (raw: one librdkafka consumer
#             per group, on threads of one process); aggregate msgs/s
#   cpayload  consume, key mode, payloads 100 B to 1 MiB
#   ppayload  publish, batched, payloads 100 B to 1 MiB; the raw producer
#             writes mailroomd's five CloudEvents headers (same records);
#             topics made through mailroomd (max.message.bytes for 1 MiB)
# Each point runs consume_bench (--mode raw,key) or publish_bench (--mode
# both, batched only) with --repeat REPEAT, raw and mailroom alternating,
# and records per run: msgs/s, CPU µs per message of the benchmark process,
# mailroomd and Kafka (/proc/PID/stat, over the timed part), and
# mailroomd's peak RSS (VmHWM, reset before each mailroom run); then
# mailroomd's VmHWM over the whole point.
#
# Usage: bench/run_curves.sh [BUILD_DIR]   (default: build-bench at the
#                                           repository root)
# Environment (defaults in brackets):
#   CURVES [keys parts groups cpayload ppayload]
#   REPEAT [2]                runs per point and side (range reported)
#   N [1000000]               messages per point (keys, parts)
#   KEYS_LIST [1000 100000 1000000]   PARTS_LIST [4 64 256]
#   GROUPS_LIST [1 10 50]     GROUP_N [100000] messages, read by each group
#   SIZES [100 1024 10240 102400 1048576]
#   CBYTES [1000000000]  PBYTES [400000000]   payload bytes per consume
#                             and publish payload point: N = min(N,
#                             BYTES / size); Kafka keeps them all in the
#                             temporary directory (about 14 GB in all)
#   PARTITIONS [4]  KEYS [1000]   where the curve does not set them
#   BATCH [1000]  FETCHERS [4]    messages per fetch, fetch threads (per
#                             group); publish: BATCH messages per request,
#                             at most 1 MiB of payload
#   INFLIGHT [8]  LINGER [2]  publish: requests in flight, linger.ms
#   CASE_TIMEOUT [900]        seconds one point may take before it is killed
#   SETS                      more mailroomd --set KEY=VALUE, space-separated
#   MAILROOMD [BUILD_DIR/mailroomd]   KEEP=1: keep the temporary directory
# Results: BUILD_DIR/bench-results/curves-<time>.txt (every run's output)
# and .jsonl beside it (one line per point: the benchmark's JSON with the
# curve, the point and mailroomd's VmHWM); bench/curves_table.py makes the
# tables of docs/benchmarks/curves.md from the .jsonl.
# Exit status: 0 when every point read or wrote every message.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
CURVES=${CURVES:-keys parts groups cpayload ppayload}
REPEAT=${REPEAT:-2}
N=${N:-1000000}
KEYS_LIST=${KEYS_LIST:-1000 100000 1000000}
PARTS_LIST=${PARTS_LIST:-4 64 256}
GROUPS_LIST=${GROUPS_LIST:-1 10 50}
GROUP_N=${GROUP_N:-100000}
SIZES=${SIZES:-100 1024 10240 102400 1048576}
CBYTES=${CBYTES:-1000000000}
PBYTES=${PBYTES:-400000000}
PARTITIONS=${PARTITIONS:-4}
KEYS=${KEYS:-1000}
BATCH=${BATCH:-1000}
FETCHERS=${FETCHERS:-4}
INFLIGHT=${INFLIGHT:-8}
LINGER=${LINGER:-2}
CASE_TIMEOUT=${CASE_TIMEOUT:-900}
BENCH_NAME=consume_bench
BENCH_ARGS=()
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# point CURVE VALUE BENCH_NAME args...: a fresh mailroomd, one run of the
# benchmark with args, mailroomd's peak RSS, mailroomd stopped; the JSON
# line goes to JSONL. A failure is recorded and the sweep goes on.
point() {
    local curve=$1 value=$2 name=$3 rc=0 hwm json mlog
    local bench_cpu
    shift 3
    mlog=$WORK/mailroomd-$curve-$value.log
    # shellcheck disable=SC2086
    start_mailroomd "$mlog" "producer.linger_ms=$LINGER" ${SETS:-}
    printf '\n## %s = %s (%s)\n' "$curve" "$value" "$name" | tee -a "$RESULTS"
    printf '# load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" |
        tee -a "$RESULTS"
    printf '# %s --brokers %s --url %s %s\n' "$name" "$BROKERS" "$MRD_URL" \
        "$* --mrd-pid $MRD_PID --kafka-pid $KAFKA_PID" >>"$RESULTS"
    cpu_mark
    timeout -k 10 "$CASE_TIMEOUT" "$BUILD/bench/$name" --brokers "$BROKERS" \
        --url "$MRD_URL" "$@" --mrd-pid "$MRD_PID" \
        --kafka-pid "$KAFKA_PID" 2>&1 | tee "$WORK/point.txt" |
        tee -a "$RESULTS" || rc=$?
    bench_cpu=$(sed -n 's/.*"cpu_total_s":\([0-9.]*\).*/\1/p' \
        "$WORK/point.txt" | tail -n 1)
    cpu_report "$name" "$bench_cpu"
    if kill -0 "$MRD_PID" 2>/dev/null; then
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MRD_PID/status")
        stop_mailroomd
    else
        log "mailroomd died during $curve=$value (see $mlog)"
        tail -n 20 "$mlog" | tee -a "$RESULTS" >&2
        hwm=0
        MRD_PID=
        [[ $rc == 0 ]] && rc=99
    fi
    json=$(grep '^{"bench"' "$WORK/point.txt" | tail -n 1 || true)
    printf 'point %s=%s: exit %s, mailroomd VmHWM %s kB\n' "$curve" \
        "$value" "$rc" "$hwm" | tee -a "$RESULTS"
    python3 - "$curve" "$value" "$rc" "$hwm" "$GIT" "${json:-null}" \
        >>"$JSONL" <<'EOF'
import json, sys
curve, value, rc, hwm, git, line = sys.argv[1:]
d = json.loads(line) if line != "null" else {}
d.update(curve=curve, value=int(value), exit=int(rc),
         mrd_vmhwm_kb=int(hwm or 0), git=git)
print(json.dumps(d))
EOF
    if [[ $rc -ne 0 ]]; then
        log "$name exited $rc for $curve=$value"
        FAILED=1
    fi
}

consume() {
    point "$1" "$2" consume_bench --mode raw,key --repeat "$REPEAT" \
        --batch "$BATCH" --fetchers "$FETCHERS" --topic "mrcurve-$1" \
        "${@:3}"
}

# count_for SIZE BYTES: messages for payloads of SIZE bytes, at most N.
count_for() {
    local n=$(($2 / $1))
    echo $((n < N ? n : N))
}

bench_build
cmake --build "$BUILD" -j"$(nproc)" --target publish_bench >&2
start_kafka
MRD_URL="(a fresh mailroomd per point)"
results_begin curves
GIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
if [[ -n $(git -C "$ROOT" status --porcelain -- bench broker consumers \
    bridge core client proto 2>/dev/null) ]]; then
    GIT="$GIT+changes"
fi
JSONL=${RESULTS%.txt}.jsonl
: >"$JSONL"
echo "# curves: $CURVES; REPEAT $REPEAT" | tee -a "$RESULTS"

for curve in $CURVES; do
    case $curve in
    keys)
        for k in $KEYS_LIST; do
            consume keys "$k" --count "$N" --size 100 \
                --partitions "$PARTITIONS" --keys "$k"
        done ;;
    parts)
        for p in $PARTS_LIST; do
            consume parts "$p" --count "$N" --size 100 --partitions "$p" \
                --keys "$KEYS"
        done ;;
    groups)
        for g in $GROUPS_LIST; do
            consume groups "$g" --count "$GROUP_N" --size 100 \
                --partitions "$PARTITIONS" --keys "$KEYS" --groups "$g"
        done ;;
    cpayload)
        for s in $SIZES; do
            consume cpayload "$s" --count "$(count_for "$s" "$CBYTES")" \
                --size "$s" --partitions "$PARTITIONS" --keys "$KEYS"
        done ;;
    ppayload)
        for s in $SIZES; do
            b=$((1048576 / s))
            b=$((b < 1 ? 1 : b > BATCH ? BATCH : b))
            point ppayload "$s" publish_bench --mode both --raw-headers \
                --no-unbatched --samples 0 --repeat "$REPEAT" \
                --linger-ms "$LINGER" --size "$s" \
                --count "$(count_for "$s" "$PBYTES")" --batch "$b" \
                --inflight "$INFLIGHT" --partitions "$PARTITIONS" \
                --topic mrcurve-ppayload
        done ;;
    *) die "unknown curve '$curve'" ;;
    esac
done

check_logs
printf '\n## summary\n'
python3 "$ROOT/bench/curves_table.py" "$JSONL" | tee -a "$RESULTS" || true
log "results saved to $RESULTS and $JSONL"
STATUS=$FAILED
exit "$FAILED"
