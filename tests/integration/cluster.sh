# Sourced by the fault tests that restart or kill mailroomd and need the
# records to survive it: a Kafka outside mailroomd.
#
#   cluster_start MODE WORKDIR [TOPIC:PARTITIONS]...
#     embedded: librdkafka's mock cluster in mailroom_mockd, a process of
#               its own, with the topics made (the mock answers no
#               CreateTopics); it stops by itself after 900 s at most.
#     kafka:    the CTest fixture's broker ($MR_KAFKA_DIR); exits 77 (skip)
#               when the fixture says Kafka is unavailable. The topics are
#               the caller's to make (mailroom topics create).
#   Sets BROKERS (the bootstrap servers for mailroomd --brokers); prints why
#   and returns 1 when the cluster cannot be had.
#
#   cluster_stop
#     Stops the mailroom_mockd that cluster_start started, if any (SIGTERM,
#     then SIGKILL after 5 s). For the caller's EXIT trap.
#
# Needs MR_BINARY_DIR (mailroom_mockd is in its tests/ or itself), and
# MR_KAFKA_DIR in kafka mode.

BROKERS=""
cluster__mockd_pid=""

cluster_start() {
    local mode=$1 work=$2 mockd="" f
    shift 2
    case "$mode" in
    kafka)
        : "${MR_KAFKA_DIR:?MR_KAFKA_DIR must name the fixture directory}"
        if [[ -f "$MR_KAFKA_DIR/unavailable" ]]; then
            echo "SKIP: $(cat "$MR_KAFKA_DIR/unavailable")"
            exit 77
        fi
        BROKERS=$(cat "$MR_KAFKA_DIR/bootstrap" 2>/dev/null) || {
            echo "FAIL: no $MR_KAFKA_DIR/bootstrap: did the kafka_start fixture run?"
            return 1
        }
        ;;
    embedded)
        for f in "$MR_BINARY_DIR/tests/mailroom_mockd" "$MR_BINARY_DIR/mailroom_mockd"; do
            [[ -x $f ]] && mockd=$f && break
        done
        if [[ -z $mockd ]]; then
            echo "FAIL: no mailroom_mockd in $MR_BINARY_DIR/tests or $MR_BINARY_DIR"
            return 1
        fi
        local args=(--ttl 900) t
        for t in "$@"; do
            args+=(--topic "$t")
        done
        "$mockd" "${args[@]}" "$work/bootstrap" >"$work/mockd.out" 2>"$work/mockd.err" &
        cluster__mockd_pid=$!
        for _ in $(seq 100); do
            [[ -s "$work/bootstrap" ]] && break
            kill -0 "$cluster__mockd_pid" 2>/dev/null || break
            sleep 0.1
        done
        if [[ ! -s "$work/bootstrap" ]]; then
            echo "FAIL: mailroom_mockd did not start: $(cat "$work/mockd.err")"
            return 1
        fi
        BROKERS=$(cat "$work/bootstrap")
        echo "info: mock cluster in mailroom_mockd (pid $cluster__mockd_pid) at $BROKERS"
        ;;
    *)
        echo "FAIL: cluster_start: mode is embedded or kafka, not '$mode'"
        return 1
        ;;
    esac
}

cluster_stop() {
    local p=$cluster__mockd_pid
    [[ -n $p ]] || return 0
    cluster__mockd_pid=""
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}
