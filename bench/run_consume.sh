#!/usr/bin/env bash
# The consume benchmark (docs/BENCHMARKS.md): builds what is missing, starts
# a real single-node Kafka (tests/kafka/kafka.sh) and a mailroomd on it in a
# temporary directory, runs consume_bench (a raw librdkafka consumer and
# mailroom's unordered, key and partition modes on the same preloaded topic,
# then the slow-handler case), then stops everything. Everything listens on
# 127.0.0.1.
#
# mailroomd runs twice: with its defaults (consumer.journal=true: each FETCH
# and each SETTLE of acks waits for one journal record written to Kafka),
# then, as a reference, a second mailroomd with consumer.journal=false.
#
# Usage: bench/run_consume.sh [BUILD_DIR]   (default: build-bench at the
#                                            repository root)
# Environment (defaults in brackets):
#   N [1000000]              messages preloaded and read per case
#   SIZE [100]               payload bytes
#   PARTITIONS [4]  KEYS [1000]   the data topic
#   BATCH [1000]  FETCHERS [4]    messages per fetch, fetch threads
#   PARTITION_N [20000]      messages read in partition mode
#   SLOW_N [2000]  SLOW_KEYS [50]  SLOW_INFLIGHT [100]  SLOW_WORK [sleep]
#   REPEAT [3]               throughput runs (median reported)
#   REFERENCES [1]           0: skip the journal-off mailroomd
#   MAILROOMD [BUILD_DIR/mailroomd] another daemon binary, for A/B runs
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
PARTITION_N=${PARTITION_N:-20000}
SLOW_N=${SLOW_N:-2000}
SLOW_KEYS=${SLOW_KEYS:-50}
SLOW_INFLIGHT=${SLOW_INFLIGHT:-100}
SLOW_WORK=${SLOW_WORK:-sleep}
REPEAT=${REPEAT:-3}
REFERENCES=${REFERENCES:-1}
KAFKA_SH=$ROOT/tests/kafka/kafka.sh

log() { printf 'run_consume: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- build ---------------------------------------------------------------
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    log "configuring $BUILD (Release)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DMR_TESTS=OFF -DMR_BENCH=ON >&2
fi
log "building mailroomd, mailroom and consume_bench in $BUILD"
cmake --build "$BUILD" -j"$(nproc)" \
    --target mailroomd mailroom-cli consume_bench >&2
BUILD=$(cd "$BUILD" && pwd)
MAILROOMD=${MAILROOMD:-$BUILD/mailroomd}
CLI=$BUILD/mailroom
BENCH=$BUILD/bench/consume_bench
for b in "$MAILROOMD" "$CLI" "$BENCH"; do
    [[ -x $b ]] || die "$b was not built"
done

# ---- helpers -------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-cbench.XXXXXX")
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

# start_mailroomd JOURNAL LOG: sets MRD_PID and MRD_URL.
start_mailroomd() {
    local port i
    port=$(free_port)
    MRD_URL=tcp://127.0.0.1:$port
    "$MAILROOMD" --brokers "$BROKERS" --listen "$MRD_URL" \
        --set "consumer.journal=$1" >"$2" 2>&1 &
    MRD_PID=$!
    for i in $(seq 300); do
        if "$CLI" --url "$MRD_URL" --timeout 1000 status >/dev/null 2>&1
        then
            log "mailroomd ready on $MRD_URL (pid $MRD_PID," \
                "consumer.journal=$1)"
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

# run_bench LABEL consume_bench-args...: one consume_bench run, with the
# CPU that each party used meanwhile.
run_bench() {
    local label=$1 c_mrd=0 c_kafka c_all t0 bench_cpu rc=0
    shift
    [[ -n $MRD_PID ]] && c_mrd=$(cpu_secs "$MRD_PID")
    c_kafka=$(cpu_secs "$KAFKA_PID")
    c_all=$(cpu_all)
    t0=$(date +%s.%N)
    printf '\n## %s\n' "$label" | tee -a "$RESULTS"
    printf '# load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" |
        tee -a "$RESULTS"
    "$BENCH" --brokers "$BROKERS" --url "$MRD_URL" --repeat "$REPEAT" \
        --count "$N" --size "$SIZE" --partitions "$PARTITIONS" \
        --keys "$KEYS" --batch "$BATCH" --fetchers "$FETCHERS" \
        --partition-count "$PARTITION_N" --slow-count "$SLOW_N" \
        --slow-keys "$SLOW_KEYS" --slow-inflight "$SLOW_INFLIGHT" \
        --slow-work "$SLOW_WORK" "$@" 2>&1 |
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
        printf "cpu seconds over %.0f s of wall time: consume_bench " \
            "%.1f, mailroomd %.1f, kafka %.1f, other processes %.1f\n",
            wall, bench, mrd, kafka, all - bench - mrd - kafka }' |
        tee -a "$RESULTS"
    if [[ $rc -ne 0 ]]; then
        log "consume_bench exited $rc for $label"
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
start_mailroomd true "$WORK/mailroomd.log"

mkdir -p "$BUILD/bench-results"
RESULTS=$BUILD/bench-results/consume-$(date -u +%Y%m%dT%H%M%SZ).txt
{
    echo "# mailroom consume benchmark, $(date -u +%FT%TZ)"
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
run_bench "mailroomd defaults (consumer.journal=true)" --mode all \
    --topic mrcbench-journal
printf '\n## mailroomd status after the runs\n' | tee -a "$RESULTS"
"$CLI" --url "$MRD_URL" status --json 2>&1 | tee -a "$RESULTS" || true
stop_mailroomd

if [[ $REFERENCES == 1 ]]; then
    start_mailroomd false "$WORK/mailroomd-nojournal.log"
    run_bench "reference: consumer.journal=false" --mode all \
        --topic mrcbench-nojournal
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
grep -E '^(## |target|mailroomd consumer.journal|raw librdkafka|mailroom |slow handler|cpu seconds)' \
    "$RESULTS" || true
log "results saved to $RESULTS"
STATUS=$FAILED
exit "$FAILED"
