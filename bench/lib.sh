# Shared by bench/run_publish.sh and bench/run_consume.sh (sourced, not
# run): the build, a real single-node Kafka and mailroomd in a temporary
# directory, one benchmark run with the CPU each party used, the results
# file, and cleanup on exit. Everything listens on 127.0.0.1.
#
# The sourcing script sets, before it calls anything here:
#   ROOT, BUILD      the repository and the build directory
#   BENCH_NAME       publish_bench or consume_bench (its CMake target too)
#   BENCH_ARGS       an array of arguments every run of it gets
# and uses: log, die, bench_build, start_kafka, start_mailroomd,
# stop_mailroomd, results_begin, run_bench, check_logs, summary.
# run_bench and the mailroomd functions set FAILED on trouble; the script
# ends with STATUS=$FAILED and exit "$FAILED".

KAFKA_SH=$ROOT/tests/kafka/kafka.sh
MRD_PID=
MRD_URL=
KAFKA_PID=
STATUS=1
FAILED=0

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Configure (Release, tests off) if needed and build mailroomd, the CLI and
# $BENCH_NAME; sets BUILD (absolute), MAILROOMD, CLI and BENCH.
bench_build() {
    if [[ ! -f $BUILD/CMakeCache.txt ]]; then
        log "configuring $BUILD (Release)"
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
            -DMR_TESTS=OFF -DMR_BENCH=ON >&2
    fi
    # An A/B's other daemon must not live in BUILD: it is rebuilt here,
    # from the tree as it is now.
    if [[ -n ${MAILROOMD:-} && $(realpath -m "$MAILROOMD") == \
          "$(realpath -m "$BUILD")"/* ]]; then
        log "warning: MAILROOMD=$MAILROOMD is in $BUILD, which is" \
            "rebuilt now: for an A/B, copy it out of $BUILD first"
    fi
    log "building mailroomd, mailroom and $BENCH_NAME in $BUILD"
    cmake --build "$BUILD" -j"$(nproc)" \
        --target mailroomd mailroom-cli "$BENCH_NAME" >&2
    BUILD=$(cd "$BUILD" && pwd)
    MAILROOMD=${MAILROOMD:-$BUILD/mailroomd}
    CLI=$BUILD/mailroom
    BENCH=$BUILD/bench/$BENCH_NAME
    for b in "$MAILROOMD" "$CLI" "$BENCH"; do
        [[ -x $b ]] || die "$b was not built"
    done
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-$BENCH_NAME.XXXXXX")
}

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

# Sets BROKERS and KAFKA_PID.
start_kafka() {
    mkdir -p "$WORK/kafka"
    log "starting Kafka in $WORK/kafka"
    BROKERS=$(bash "$KAFKA_SH" start "$WORK/kafka")
    KAFKA_PID=$(tr -dc '0-9' <"$WORK/kafka/kafka.pid")
    log "Kafka ready on $BROKERS (pid $KAFKA_PID)"
}

# start_mailroomd LOG [KEY=VALUE...]: mailroomd with those --set options
# (and no HTTP API unless HTTP_LISTEN says where);
# sets MRD_PID and MRD_URL.
start_mailroomd() {
    local log_file=$1 port i
    local -a sets=()
    shift
    for kv in "$@"; do
        sets+=(--set "$kv")
    done
    port=$(free_port)
    MRD_URL=tcp://127.0.0.1:$port
    # No HTTP API unless asked (HTTP_LISTEN): its default port may be
    # another mailroomd's.
    "$MAILROOMD" --brokers "$BROKERS" --listen "$MRD_URL" \
        --set "http.listen=${HTTP_LISTEN:-}" "${sets[@]}" \
        >"$log_file" 2>&1 &
    MRD_PID=$!
    for i in $(seq 300); do
        if "$CLI" --url "$MRD_URL" --timeout 1000 status >/dev/null 2>&1
        then
            log "mailroomd ready on $MRD_URL (pid $MRD_PID${*:+, $*})"
            return 0
        fi
        if ! kill -0 "$MRD_PID" 2>/dev/null; then
            tail -n 20 "$log_file" >&2
            MRD_PID=
            die "mailroomd exited during startup (see $log_file)"
        fi
        sleep 0.1
    done
    die "mailroomd did not answer status in 30 s (see $log_file)"
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

bench_cleanup() {
    set +e
    stop_mailroomd
    if [[ -n ${WORK:-} && -d $WORK/kafka ]]; then
        bash "$KAFKA_SH" stop "$WORK/kafka" >/dev/null
    fi
    if [[ -z ${WORK:-} ]]; then
        return
    elif [[ $STATUS -ne 0 || ${KEEP:-0} == 1 ]]; then
        log "kept $WORK (mailroomd*.log, kafka/kafka.log)"
    else
        rm -rf "$WORK"
    fi
}
trap 'bench_cleanup' EXIT
trap 'exit 130' INT TERM

# results_begin TITLE: RESULTS names a new file in BUILD/bench-results
# (TITLE-<time>.txt), headed by what the run was made on.
results_begin() {
    mkdir -p "$BUILD/bench-results"
    RESULTS=$BUILD/bench-results/$1-$(date -u +%Y%m%dT%H%M%SZ).txt
    {
        echo "# mailroom $1 benchmark, $(date -u +%FT%TZ)"
        echo "# host: $(uname -srm), $(nproc) cores:" \
            "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
                head -n 1)"
        echo "# librdkafka $(pkg-config --modversion rdkafka), Kafka 4.1.1" \
            "(single node, KRaft) on $BROKERS, mailroomd on $MRD_URL"
        echo "# git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null ||
            echo 'no commit'); mailroomd: $MAILROOMD"
        echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee "$RESULTS"
}

# cpu_mark: note the CPU of mailroomd, Kafka and the whole machine, and the
# time, for cpu_report.
cpu_mark() {
    CPU_MRD0=0
    [[ -n $MRD_PID ]] && CPU_MRD0=$(cpu_secs "$MRD_PID")
    CPU_KAFKA0=$(cpu_secs "$KAFKA_PID")
    CPU_ALL0=$(cpu_all)
    CPU_T0=$(date +%s.%N)
}

# cpu_report NAME BENCH_CPU: the CPU each party used since cpu_mark (NAME,
# the benchmark process, used BENCH_CPU seconds) into RESULTS. On a shared
# machine "other processes" is everything that is not the benchmark: it
# says how far to trust the run.
cpu_report() {
    awk -v wall="$(echo "$(date +%s.%N) - $CPU_T0" | bc)" \
        -v mrd="$(echo "$(cpu_secs "$MRD_PID") - $CPU_MRD0" | bc)" \
        -v kafka="$(echo "$(cpu_secs "$KAFKA_PID") - $CPU_KAFKA0" | bc)" \
        -v all="$(echo "$(cpu_all) - $CPU_ALL0" | bc)" \
        -v bench="${2:-0}" -v name="$1" 'BEGIN {
        printf "cpu seconds over %.0f s of wall time: %s %.1f, " \
            "mailroomd %.1f, kafka %.1f, other processes %.1f\n",
            wall, name, bench, mrd, kafka, all - bench - mrd - kafka }' |
        tee -a "$RESULTS"
}

# run_bench LABEL args...: one run of $BENCH with BENCH_ARGS and args, and
# the CPU that each party used meanwhile.
run_bench() {
    local label=$1 bench_cpu rc=0
    shift
    cpu_mark
    printf '\n## %s\n' "$label" | tee -a "$RESULTS"
    printf '# load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" |
        tee -a "$RESULTS"
    "$BENCH" --brokers "$BROKERS" --url "$MRD_URL" "${BENCH_ARGS[@]}" "$@" \
        2>&1 | tee -a "$RESULTS" || rc=$?
    bench_cpu=$(sed -n 's/.*"cpu_total_s":\([0-9.]*\).*/\1/p' "$RESULTS" |
        tail -n 1)
    cpu_report "$BENCH_NAME" "$bench_cpu"
    if [[ $rc -ne 0 ]]; then
        log "$BENCH_NAME exited $rc for $label"
        FAILED=1
    fi
    if [[ -n $MRD_PID ]] && ! kill -0 "$MRD_PID" 2>/dev/null; then
        MRD_PID=
        die "mailroomd died during $label (see $WORK)"
    fi
}

# mailroomd's status, then stop it.
status_and_stop() {
    printf '\n## mailroomd status after the runs\n' | tee -a "$RESULTS"
    "$CLI" --url "$MRD_URL" status --json 2>&1 | tee -a "$RESULTS" || true
    stop_mailroomd
}

# Copy the logs of every mailroomd that logged an error next to RESULTS.
check_logs() {
    for f in "$WORK"/mailroomd*.log; do
        if grep -Eq 'level=(err|crit|alert|emerg)' "$f"; then
            log "$(basename "$f") has errors:"
            grep -E 'level=(err|crit|alert|emerg)' "$f" | head -n 20 >&2
            cp "$f" "${RESULTS%.txt}-$(basename "$f")"
        fi
    done
}

# summary REGEX: the lines of RESULTS that matter, then the exit status.
summary() {
    printf '\n## summary\n'
    grep -E "$1" "$RESULTS" || true
    log "results saved to $RESULTS"
    STATUS=$FAILED
}
