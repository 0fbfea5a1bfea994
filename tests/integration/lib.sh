# The setup the test scripts share, sourced (not run) by the *_test.sh beside
# this file and by tests/install/install_test.sh: the embedded|kafka mode and
# the Kafka fixture, the binaries, the tools, a work directory cleaned up on
# exit, mailroomd on an ipc:// URL, and "ok:"/"FAIL:" lines counted up to the
# final "N passed, N failed". Safe under set -u (and set -e).
#
# What it sets for the script: mode and brokers (mrt_mode, mrt_kafka); MR
# and MRD (mrt_binaries); work (mrt_workdir); url, log and dpid
# (mrt_start_daemon). Exit codes: 0 passed, 1 failed, 2 usage, 77 skipped.

mrt_passed=0
mrt_failed=0
mrt_pids=()

# mrt_kafka: brokers, the bootstrap of the CTest fixture in $MR_KAFKA_DIR;
# exit 77 with the fixture's reason when Kafka is unavailable, 1 when absent.
mrt_kafka() {
    : "${MR_KAFKA_DIR:?MR_KAFKA_DIR must name the fixture directory}"
    if [[ -f "$MR_KAFKA_DIR/unavailable" ]]; then
        echo "SKIP: $(cat "$MR_KAFKA_DIR/unavailable")"
        exit 77
    fi
    brokers=$(cat "$MR_KAFKA_DIR/bootstrap") && [[ -n $brokers ]] || {
        echo "FAIL: no $MR_KAFKA_DIR/bootstrap: did the kafka_start fixture run?"
        exit 1
    }
}

# mrt_mode [embedded|kafka]: sets mode (embedded by default) and brokers
# (empty, or the fixture's as mrt_kafka); exit 2 on any other argument.
mrt_mode() {
    mode=${1:-embedded}
    case $mode in
        embedded) brokers="" ;;
        kafka) mrt_kafka ;;
        *)
            echo "usage: $(basename "$0") [embedded|kafka]" >&2
            exit 2
            ;;
    esac
}

# mrt_binaries: MR and MRD, the mailroom CLI and mailroomd built in
# $MR_BINARY_DIR; exit 1 when either is missing.
mrt_binaries() {
    : "${MR_BINARY_DIR:?MR_BINARY_DIR must name the build directory}"
    MR="$MR_BINARY_DIR/mailroom"
    MRD="$MR_BINARY_DIR/mailroomd"
    local f
    for f in "$MR" "$MRD"; do
        [[ -x $f ]] || {
            echo "FAIL: $f not built"
            exit 1
        }
    done
}

# mrt_need [--skip] TOOL...: exit 1 unless every TOOL is on PATH; with
# --skip, exit 77 (skipped) instead.
mrt_need() {
    local skip="" t
    if [[ ${1:-} == --skip ]]; then
        skip=1
        shift
    fi
    for t in "$@"; do
        command -v "$t" >/dev/null && continue
        if [[ -n $skip ]]; then
            echo "SKIP: $t is needed to drive the test"
            exit 77
        fi
        echo "FAIL: $t not found"
        exit 1
    done
}

# mrt_workdir NAME: work, a new directory mailroom-NAME-* in ${TMPDIR:-/tmp};
# on exit, tracked processes are killed and it is removed (KEEP=1 keeps it).
mrt_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-$1-XXXXXX") || exit 1
    trap mrt__cleanup EXIT
    trap 'exit 1' INT TERM
}

# mrt__cleanup: the EXIT trap of mrt_workdir: SIGKILL to what mrt_track
# holds and to the pids a driver wrote to $work/pids, then $work goes.
mrt__cleanup() {
    local p
    for p in ${mrt_pids[@]+"${mrt_pids[@]}"}; do
        kill -KILL "$p" 2>/dev/null || continue
        wait "$p" 2>/dev/null || true
    done
    if [[ -f $work/pids ]]; then
        while read -r p; do
            kill -KILL "$p" 2>/dev/null || true
        done <"$work/pids"
    fi
    if [[ -n ${KEEP:-} ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}

# mrt_track PID...: background processes of this shell, killed on exit
# unless mrt_wait_exit has reaped them.
mrt_track() { mrt_pids+=("$@"); }

# mrt__untrack PID: reaped, so not to be killed (its pid may be reused).
mrt__untrack() {
    local p keep=()
    for p in ${mrt_pids[@]+"${mrt_pids[@]}"}; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    mrt_pids=(${keep[@]+"${keep[@]}"})
}

# mrt_wait_exit PID SECONDS: returns the exit code of PID, a child of this
# shell, or 255 (after a SIGKILL) when it still runs after SECONDS.
mrt_wait_exit() {
    local pid=$1 secs=$2 rc=0
    for _ in $(seq $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rc=255
    else
        wait "$pid" || rc=$?
    fi
    mrt__untrack "$pid"
    return $rc
}

# mrt_start_daemon NAME ARGS...: mailroomd ARGS (--brokers too when brokers
# is set) on url=ipc://$work/NAME.sock, log=$work/NAME.log, pid dpid; exit 1
# with its log when it does not answer status within 30 s.
mrt_start_daemon() {
    local name=$1 what=mailroomd
    shift
    url="ipc://$work/$name.sock"
    log="$work/$name.log"
    "$MRD" --listen "$url" ${brokers:+--brokers "$brokers"} "$@" >"$log" 2>&1 &
    dpid=$!
    mrt_track "$dpid"
    for _ in $(seq 300); do
        "$MR" --url "$url" --timeout 2000 status >/dev/null 2>&1 && return 0
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
    done
    [[ $name == mailroomd ]] || what="mailroomd ($name)"
    echo "FAIL: $what did not become ready; its log:"
    cat "$log"
    exit 1
}

# mrt_start_with_topics PREFIX [--dlq]: mailroomd started (as
# mrt_start_daemon mailroomd), mr (the CLI at $url, bounded), $bootstrap
# (the Kafka it uses) and topic T=PREFIX-MODE-PID made with 2 partitions;
# with --dlq also D=$T.dlq, its dead-letter topic.
mrt_start_with_topics() {
    mr() { timeout 120 "$MR" --url "$url" "$@"; }
    mrt_start_daemon mailroomd
    bootstrap=$(mr status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kafka"]["bootstrap"])') || {
        echo "FAIL: mailroomd did not become ready"
        cat "$log"
        exit 1
    }
    T="$1-$mode-$$"
    mr topics create "$T" --partitions 2 >/dev/null ||
        mrt_fail "topics create $T"
    if [[ ${2:-} == --dlq ]]; then
        D="$T.dlq"
        mr topics create "$D" --partitions 2 >/dev/null ||
            mrt_fail "topics create $D"
    fi
}

# mrt_stop_daemon: SIGTERM to dpid, and a failed check unless it exits 0
# within 30 s.
mrt_stop_daemon() {
    local rc=0
    kill -TERM "$dpid" || true
    mrt_wait_exit "$dpid" 30 || rc=$?
    if [[ $rc -eq 255 ]]; then
        mrt_fail "mailroomd did not exit within 30 s of SIGTERM"
    elif [[ $rc -ne 0 ]]; then
        mrt_fail "mailroomd exited with $rc on SIGTERM"
    fi
}

# mrt_pass TEXT, mrt_fail TEXT: an "ok: TEXT" or "FAIL: TEXT" line, counted
# for mrt_finish. Both return 0.
mrt_pass() {
    echo "ok: $*"
    mrt_passed=$((mrt_passed + 1))
}
mrt_fail() {
    echo "FAIL: $*"
    mrt_failed=$((mrt_failed + 1))
}

# mrt_tail_logs LINES FILE...: the last LINES of each FILE that is not
# empty, each under a "--- FILE" line; librdkafka's configuration warnings
# (CONFWARN, the same few at every start) are left out.
mrt_tail_logs() {
    local n=$1 f
    shift
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "--- $f"
        grep -v 'facility=CONFWARN' "$f" | tail -n "$n"
    done
}

# mrt_finish [LINES FILE...]: "N passed, N failed", then exit 0, or 1 when a
# check failed (after the last LINES of each FILE, as mrt_tail_logs).
mrt_finish() {
    if [[ $mrt_failed -ne 0 && $# -gt 1 ]]; then
        mrt_tail_logs "$@"
    fi
    echo "$mrt_passed passed, $mrt_failed failed"
    [[ $mrt_failed -eq 0 ]] || exit 1
    exit 0
}

# mrt_run_driver SECONDS ARGS...: python3 -u ARGS in the background (INT and
# TERM end the test at once), killed after SECONDS; its exit code, 1 then.
mrt_run_driver() {
    local secs=$1 pid rc=0
    shift
    timeout -k 10 "$secs" python3 -u "$@" &
    pid=$!
    mrt_track "$pid"
    wait "$pid" || rc=$?
    mrt__untrack "$pid"
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "FAIL: the driver did not finish in $secs s"
        rc=1
    fi
    return $rc
}
