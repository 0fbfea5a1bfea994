#!/usr/bin/env bash
# The publish benchmark (docs/BENCHMARKS.md): builds what is missing, starts
# a real single-node Kafka (tests/kafka/kafka.sh) and a mailroomd on it in a
# temporary directory, runs publish_bench in mode both (raw librdkafka and
# mailroom against the same Kafka, in the same run) for 100-byte and 1 KiB
# messages, then stops everything. Everything listens on 127.0.0.1.
#
# Two references follow the main runs: the raw producer writing mailroomd's
# CloudEvents headers (what the envelope alone costs), and the latency
# measured again with linger.ms 0 on both sides (a second mailroomd).
#
# Usage: bench/run_publish.sh [BUILD_DIR]   (default: build-bench at the
#                                            repository root)
# Environment (defaults in brackets):
#   N100 [1000000]  N1K [200000]   messages per throughput case
#   BATCH [1000]  INFLIGHT [8]     messages per request, requests in flight
#   LINGER [2]                     linger.ms of both producers
#   REPEAT [3]                     throughput runs per size (median reported)
#   SAMPLES [5000]                 latency samples per side
#   TIMEOUT_MS [10000]             the client's request timeout
#   REFERENCES [1]                 0: skip the two reference runs
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
REPEAT=${REPEAT:-3}
SAMPLES=${SAMPLES:-5000}
TIMEOUT_MS=${TIMEOUT_MS:-10000}
REFERENCES=${REFERENCES:-1}
KAFKA_SH=$ROOT/tests/kafka/kafka.sh

log() { printf 'run_publish: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- build ---------------------------------------------------------------
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    log "configuring $BUILD (Release)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DMR_TESTS=OFF -DMR_BENCH=ON >&2
fi
log "building mailroomd, mailroom and publish_bench in $BUILD"
cmake --build "$BUILD" -j"$(nproc)" \
    --target mailroomd mailroom-cli publish_bench >&2
BUILD=$(cd "$BUILD" && pwd)
MAILROOMD=${MAILROOMD:-$BUILD/mailroomd}
CLI=$BUILD/mailroom
BENCH=$BUILD/bench/publish_bench
for b in "$MAILROOMD" "$CLI" "$BENCH"; do
    [[ -x $b ]] || die "$b was not built"
done

# ---- helpers -------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bench.XXXXXX")
MRD_PID=
MRD_URL=
STATUS=1
FAILED=0

free_port() {
    python3 -c 'import socket; s = socket.socket();
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU seconds (user + system) a process has used so far.
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{
        sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU seconds every process on the machine has used so far (no steal).
cpu_all() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / {
        printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat
}

# start_mailroomd LINGER_MS LOG: sets MRD_PID and MRD_URL.
start_mailroomd() {
    local port i
    port=$(free_port)
    MRD_URL=tcp://127.0.0.1:$port
    "$MAILROOMD" --brokers "$BROKERS" --listen "$MRD_URL" \
        --set "producer.linger_ms=$1" >"$2" 2>&1 &
    MRD_PID=$!
    for i in $(seq 300); do
        if "$CLI" --url "$MRD_URL" --timeout 1000 status >/dev/null 2>&1
        then
            log "mailroomd ready on $MRD_URL (pid $MRD_PID, linger.ms $1)"
            return 0
        fi
        if ! kill -0 "$MRD_PID" 2>/dev/null; then
            tail -n 20 "$2" >&2
            MRD_PID=
            die "mailroomd exited during startup (see $2)"
        fi
        sleep 0.1
    done
    die "mailroomd did not answer status in 30 s (see $2)"
}

# SIGTERM, then SIGKILL after 30 s: a drained mailroomd stops at once.
stop_mailroomd() {
    local t0=$SECONDS
    [[ -n $MRD_PID ]] && kill -0 "$MRD_PID" 2>/dev/null || return 0
    kill -TERM "$MRD_PID"
    for _ in $(seq 300); do
        kill -0 "$MRD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$MRD_PID" 2>/dev/null; then
        log "mailroomd ($MRD_PID) did not stop 30 s after SIGTERM: SIGKILL"
        kill -KILL "$MRD_PID"
        FAILED=1
    elif (( SECONDS - t0 > 2 )); then
        log "mailroomd ($MRD_PID) took $((SECONDS - t0)) s to stop"
    fi
    wait "$MRD_PID" 2>/dev/null || true
    MRD_PID=
}

cleanup() {
    set +e
    stop_mailroomd
    if [[ -d $WORK/kafka ]]; then
        bash "$KAFKA_SH" stop "$WORK/kafka" >/dev/null
    fi
    if [[ $STATUS -ne 0 || ${KEEP:-0} == 1 ]]; then
        log "kept $WORK (mailroomd*.log, kafka/kafka.log)"
    else
        rm -rf "$WORK"
    fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

# run_bench LABEL publish_bench-args...: one publish_bench run, with the
# CPU that each party used meanwhile.
run_bench() {
    local label=$1 c_mrd=0 c_kafka c_all t0 bench_cpu rc=0
    shift
    [[ -n $MRD_PID ]] && c_mrd=$(cpu_secs "$MRD_PID")
    c_kafka=$(cpu_secs "$KAFKA_PID")
    c_all=$(cpu_all)
    t0=$(date +%s.%N)
    printf '\n## %s\n' "$label" | tee -a "$RESULTS"
    "$BENCH" --brokers "$BROKERS" --url "$MRD_URL" --samples "$SAMPLES" \
        --repeat "$REPEAT" --timeout-ms "$TIMEOUT_MS" "$@" 2>&1 |
        tee -a "$RESULTS" || rc=$?
    # On a shared machine "other processes" is everything that is not the
    # benchmark: it says how far to trust the run.
    bench_cpu=$(sed -n 's/.*"cpu_total_s":\([0-9.]*\).*/\1/p' "$RESULTS" |
        tail -n 1)
    awk -v wall="$(echo "$(date +%s.%N) - $t0" | bc)" \
        -v mrd="$(echo "$(cpu_secs "$MRD_PID") - $c_mrd" | bc)" \
        -v kafka="$(echo "$(cpu_secs "$KAFKA_PID") - $c_kafka" | bc)" \
        -v all="$(echo "$(cpu_all) - $c_all" | bc)" \
        -v bench="${bench_cpu:-0}" 'BEGIN {
        printf "cpu seconds over %.0f s of wall time: publish_bench " \
            "%.1f, mailroomd %.1f, kafka %.1f, other processes %.1f\n",
            wall, bench, mrd, kafka, all - bench - mrd - kafka }' |
        tee -a "$RESULTS"
    if [[ $rc -ne 0 ]]; then
        log "publish_bench exited $rc for $label"
        FAILED=1
    fi
    if [[ -n $MRD_PID ]] && ! kill -0 "$MRD_PID" 2>/dev/null; then
        MRD_PID=
        die "mailroomd died during $label (see $WORK)"
    fi
}

# ---- start Kafka and mailroomd ------------------------------------------
mkdir -p "$WORK/kafka"
log "starting Kafka in $WORK/kafka"
BROKERS=$(bash "$KAFKA_SH" start "$WORK/kafka")
KAFKA_PID=$(tr -dc '0-9' <"$WORK/kafka/kafka.pid")
log "Kafka ready on $BROKERS (pid $KAFKA_PID)"
start_mailroomd "$LINGER" "$WORK/mailroomd.log"

mkdir -p "$BUILD/bench-results"
RESULTS=$BUILD/bench-results/publish-$(date -u +%Y%m%dT%H%M%SZ).txt
{
    echo "# mailroom publish benchmark, $(date -u +%FT%TZ)"
    echo "# host: $(uname -srm), $(nproc) cores:" \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
            head -n 1)"
    echo "# librdkafka $(pkg-config --modversion rdkafka), Kafka 4.1.1" \
        "(single node, KRaft) on $BROKERS, mailroomd on $MRD_URL"
    echo "# git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null ||
        echo 'no commit'); mailroomd: $MAILROOMD"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS"

# ---- run -----------------------------------------------------------------
run_bench "100-byte messages" --mode both --linger-ms "$LINGER" \
    --size 100 --count "$N100" --batch "$BATCH" --inflight "$INFLIGHT"
run_bench "1 KiB messages" --mode both --linger-ms "$LINGER" \
    --size 1024 --count "$N1K" --batch "$BATCH" --inflight "$INFLIGHT"
if [[ $REFERENCES == 1 ]]; then
    run_bench "reference: 100-byte, raw producer with mailroomd's headers" \
        --mode raw --raw-headers --linger-ms "$LINGER" --samples 0 \
        --size 100 --count "$N100"
fi

printf '\n## mailroomd status after the runs\n' | tee -a "$RESULTS"
"$CLI" --url "$MRD_URL" status --json 2>&1 | tee -a "$RESULTS" || true
stop_mailroomd

if [[ $REFERENCES == 1 && $LINGER != 0 ]]; then
    start_mailroomd 0 "$WORK/mailroomd-linger0.log"
    run_bench "reference: latency with linger.ms 0 on both sides" \
        --mode both --no-throughput --linger-ms 0 --size 100
    stop_mailroomd
fi

for f in "$WORK"/mailroomd*.log; do
    if grep -Eq 'level=(err|crit|alert|emerg)' "$f"; then
        log "$(basename "$f") has errors:"
        grep -E 'level=(err|crit|alert|emerg)' "$f" | head -n 20 >&2
        cp "$f" "${RESULTS%.txt}-$(basename "$f")"
    fi
done

printf '\n## summary\n'
grep -E '^(target|added by|mailroom batched|raw librdkafka)' "$RESULTS" ||
    true
log "results saved to $RESULTS"
STATUS=$FAILED
exit "$FAILED"
