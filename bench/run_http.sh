#!/usr/bin/env bash
# The HTTP publish benchmark (docs/benchmarks/http.md): builds
# what is missing, starts a real single-node Kafka (tests/kafka/kafka.sh)
# and one mailroomd on it with its HTTP API, and publishes the same
# 100-byte messages (1,000 keys) in batches of 1, 10, 100 and 1,000 two
# ways: JSON over HTTP (http_bench, 1 and 4 keep-alive connections) and
# the nng protocol (publish_bench's batched case, 1 and 4 requests in
# flight on one connection). Cases alternate, so both paths see the same
# Kafka and neighbours. Then the latency of one message at a time over nng
# (publish_bench's latency case), to set beside http_bench's at batch 1.
#
# publish_bench runs its batched case first, then always its unbatched
# pipelined and sync cases (up to 100,000 and 20,000 messages); this
# script reads its batched figure (stderr: "run 1 mailroom batched: X
# msgs/s"), reads its CPU and mailroomd's, and stops it there (SIGTERM).
# Its CPU then includes its start, its connection and its warm-up publish
# (the case's topic made by Kafka's auto-creation, 4 partitions);
# http_bench's does not (its topic is made before, with 4 partitions).
#
# Usage: bench/run_http.sh [BUILD_DIR]   (default: $BUILD_DIR, else
#                                         build-bench at the root)
# Environment (defaults in brackets):
#   N [100000]     messages per case at batch 10, 100, 1000
#   N1 [5000]      messages per case at batch 1
#   BATCHES ["1 10 100 1000"]  CONNS ["1 4"]
#   REPEAT [3]     runs of each case (the range is reported)
#   SAMPLES [2000] nng latency samples (one message at a time), per run
#   LINGER [2]     mailroomd's producer.linger_ms
#   KEEP=1         keep the temporary directory (logs, data)
# Results are also saved to BUILD_DIR/bench-results/http-<time>.txt.
# Exit status: 0 when every message of every case was acknowledged.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD_DIR:-$ROOT/build-bench}}
N=${N:-100000}
N1=${N1:-5000}
BATCHES=${BATCHES:-1 10 100 1000}
CONNS=${CONNS:-1 4}
REPEAT=${REPEAT:-3}
SAMPLES=${SAMPLES:-2000}
LINGER=${LINGER:-2}
BENCH_NAME=http_bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

bench_build
cmake --build "$BUILD" -j"$(nproc)" --target publish_bench >&2
PUBLISH_BENCH=$BUILD/bench/publish_bench
start_kafka
HTTP_PORT=$(free_port)
HTTP_URL=http://127.0.0.1:$HTTP_PORT
TOKEN_FILE=$WORK/http.token
start_mailroomd "$WORK/mailroomd.log" "producer.linger_ms=$LINGER" \
    "http.listen=$HTTP_URL" "http.token_file=$TOKEN_FILE"
for _ in $(seq 100); do
    curl -sf "$HTTP_URL/healthz" >/dev/null && break
    sleep 0.1
done
curl -sf "$HTTP_URL/healthz" >/dev/null || die "no /healthz on $HTTP_URL"
results_begin http
echo "# HTTP API on $HTTP_URL; mailroomd pid $MRD_PID," \
    "producer.linger_ms $LINGER; Kafka pid $KAFKA_PID" | tee -a "$RESULTS"

STAMP=$(date +%s)
TOPIC=httpbench-$STAMP
created=$(curl -s -H "Authorization: Bearer $(head -n 1 "$TOKEN_FILE")" \
    -d "{\"topic\": \"$TOPIC\", \"partitions\": 4, \"replication\": 1}" \
    "$HTTP_URL/v1/topics")
echo "# topic $TOPIC: $created" | tee -a "$RESULTS"
[[ $created == *'"ok": true'* || $created == *'"ok":true'* ]] ||
    die "topics.create failed: $created"

# One row per run: path batch conns run msgs/s req/s p50 p99 client-us
# mailroomd-us kafka-us other-us (µs of CPU per message; "-": not
# measured). Rows go to $ROWS, and with the tools' own lines to $RESULTS.
ROWS=$WORK/rows.txt
: >"$ROWS"

# per_msg BEFORE AFTER COUNT: CPU seconds to µs per message.
per_msg() { echo "$1 $2 $3" | awk '{ printf "%.2f", ($2 - $1) * 1e6 / $3 }'; }

http_case() {
    local b=$1 c=$2 run=$3 n=$4 k0 a0 out rc=0 line
    k0=$(cpu_secs "$KAFKA_PID")
    a0=$(cpu_all)
    out=$("$BUILD/bench/http_bench" --url "$HTTP_URL" --topic "$TOPIC" \
        --token-file "$TOKEN_FILE" --count "$n" --size 100 --batch "$b" \
        --conns "$c" --pid "$MRD_PID" 2>&1) || rc=$?
    local k1 a1
    k1=$(cpu_secs "$KAFKA_PID")
    a1=$(cpu_all)
    printf '\n## http batch %s conns %s run %s\n%s\n' "$b" "$c" "$run" \
        "$out" >>"$RESULTS"
    if [[ $rc -ne 0 ]]; then
        log "http_bench failed (exit $rc) at batch $b, $c connections:"
        printf '%s\n' "$out" >&2
        FAILED=1
        echo "http $b $c $run FAILED" >>"$ROWS"
        return
    fi
    line=$(printf '%s\n' "$out" | grep '^{"bench"')
    local kafka_us all_us
    kafka_us=$(per_msg "$k0" "$k1" "$n")
    all_us=$(per_msg "$a0" "$a1" "$n")
    printf '%s\n' "$line" | awk -v b="$b" -v c="$c" -v run="$run" \
        -v kus="$kafka_us" -v aus="$all_us" '{
        match($0, /"msgs_per_s":[0-9.]+/); m = substr($0, RSTART + 13, RLENGTH - 13)
        match($0, /"reqs_per_s":[0-9.]+/); r = substr($0, RSTART + 13, RLENGTH - 13)
        match($0, /"p50_ms":[0-9.]+/); p5 = substr($0, RSTART + 9, RLENGTH - 9)
        match($0, /"p99_ms":[0-9.]+/); p9 = substr($0, RSTART + 9, RLENGTH - 9)
        match($0, /"cpu_us_per_msg":[0-9.]+/); cu = substr($0, RSTART + 17, RLENGTH - 17)
        match($0, /"mailroomd_cpu_us_per_msg":[0-9.]+/)
        mu = substr($0, RSTART + 27, RLENGTH - 27)
        printf "http %s %s %s %.0f %.0f %.3f %.3f %.2f %.2f %.2f %.2f\n",
            b, c, run, m, r, p5, p9, cu, mu, kus, aus - cu - mu - kus }' \
        >>"$ROWS"
    log "http  B=$b C=$c run $run: $(tail -n 1 "$ROWS")"
}

# publish_bench's batched case, stopped before its unbatched cases.
nng_case() {
    local b=$1 f=$2 run=$3 n=$4 m0 k0 a0 pid fifo line rate="" pb=0 m1 k1
    local a1 secs t0 bad=0
    fifo=$WORK/pb.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    m0=$(cpu_secs "$MRD_PID")
    k0=$(cpu_secs "$KAFKA_PID")
    a0=$(cpu_all)
    t0=$(date +%s.%N)
    "$PUBLISH_BENCH" --url "$MRD_URL" --mode mailroom --samples 0 \
        --repeat 1 --topic "nngbench-$STAMP" --size 100 --count "$n" \
        --batch "$b" --inflight "$f" >"$WORK/pb.out" 2>"$fifo" &
    pid=$!
    printf '\n## nng batch %s inflight %s run %s\n' "$b" "$f" "$run" \
        >>"$RESULTS"
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$RESULTS"
        if [[ $line == *"run 1 mailroom batched: "* ]]; then
            pb=$(cpu_secs "$pid")
            m1=$(cpu_secs "$MRD_PID")
            k1=$(cpu_secs "$KAFKA_PID")
            a1=$(cpu_all)
            rate=${line##*batched: }
            rate=${rate%% *}
            kill -TERM "$pid" 2>/dev/null || true
            break
        fi
        if [[ $line == *failure* || $line == *drain* ||
              $line == *failed* ]]; then
            bad=1
        fi
    done <"$fifo"
    wait "$pid" 2>/dev/null || true
    secs=$(echo "$(date +%s.%N) - $t0" | bc)
    if [[ -z $rate || $bad == 1 || $rate == 0 ]]; then
        log "publish_bench failed at batch $b, $f in flight (see $RESULTS)"
        FAILED=1
        echo "nng $b $f $run FAILED" >>"$ROWS"
        return
    fi
    # One request in flight: the mean time per request is B / rate.
    echo "$b $f $run $rate $pb $m0 $m1 $k0 $k1 $a0 $a1 $n" | awk '{
        b = $1; f = $2; rate = $4; n = $12
        pb = $5 * 1e6 / n; mu = ($7 - $6) * 1e6 / n
        ku = ($9 - $8) * 1e6 / n; au = ($11 - $10) * 1e6 / n
        mean = f == 1 ? sprintf("%.3f", b * 1e3 / rate) : "-"
        printf "nng %s %s %s %.0f %.0f %s %s %.2f %.2f %.2f %.2f\n",
            b, f, $3, rate, rate / b, mean, "-", pb, mu, ku,
            au - pb - mu - ku }' >>"$ROWS"
    log "nng   B=$b F=$f run $run: $(tail -n 1 "$ROWS") (${secs%.*} s)"
}

nng_latency() {
    local run=$1 out
    out=$("$PUBLISH_BENCH" --url "$MRD_URL" --mode mailroom \
        --no-throughput --samples "$SAMPLES" --size 100 \
        --topic "nnglat-$STAMP" 2>&1) || FAILED=1
    printf '\n## nng latency run %s\n%s\n' "$run" "$out" >>"$RESULTS"
    printf '%s\n' "$out" | awk -v run="$run" '
        /^mailroom publish -> ack/ { printf "nnglat 1 1 %s %s %s %s\n",
            run, $5, $7, $8 }' >>"$ROWS"
    log "nng latency run $run: $(tail -n 1 "$ROWS")"
}

for b in $BATCHES; do
    n=$N
    [[ $b == 1 ]] && n=$N1
    for run in $(seq "$REPEAT"); do
        for c in $CONNS; do
            http_case "$b" "$c" "$run" "$n"
            nng_case "$b" "$c" "$run" "$n"
        done
    done
done
for run in $(seq "$REPEAT"); do
    nng_latency "$run"
done

printf '\n## mailroomd status after the runs\n' >>"$RESULTS"
"$CLI" --url "$MRD_URL" status --json >>"$RESULTS" 2>&1 || true
stop_mailroomd
check_logs

# The table: min–max over the runs of each case.
{
    printf '\n## summary: N %s (batch 1: %s), 100-byte values, %s runs\n' \
        "$N" "$N1" "$REPEAT"
    printf '%-5s %5s %5s %-19s %-17s %-15s %-15s %-13s %-13s %-13s %-13s\n' \
        path batch conns msgs/s req/s "p50 ms" "p99 ms" "client us/msg" \
        "mailroomd us" "kafka us" "other us"
    grep -v FAILED "$ROWS" | grep -v '^nnglat' | sort -k1,1 -k2,2n -k3,3n |
        awk '
        function r(lo, hi, f) {
            if (lo == "-") return "-"
            return sprintf(f "-" f, lo, hi) }
        { key = $1 " " $2 " " $3
          if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
          for (i = 5; i <= 12; i++) {
              if ($i == "-") { lo[key, i] = "-"; continue }
              if (!((key, i) in lo) || $i + 0 < lo[key, i]) lo[key, i] = $i
              if (!((key, i) in hi) || $i + 0 > hi[key, i]) hi[key, i] = $i } }
        END { for (k = 1; k <= nk; k++) { key = order[k]; split(key, p, " ")
            printf "%-5s %5s %5s %-19s %-17s %-15s %-15s %-13s %-13s %-13s %-13s\n",
                p[1], p[2], p[3], r(lo[key, 5], hi[key, 5], "%.0f"),
                r(lo[key, 6], hi[key, 6], "%.0f"),
                r(lo[key, 7], hi[key, 7], "%.3f"),
                r(lo[key, 8], hi[key, 8], "%.3f"),
                r(lo[key, 9], hi[key, 9], "%.2f"),
                r(lo[key, 10], hi[key, 10], "%.2f"),
                r(lo[key, 11], hi[key, 11], "%.2f"),
                r(lo[key, 12], hi[key, 12], "%.2f") } }'
    echo "(nng: publish_bench, conns = requests in flight on one connection;"
    echo " its p50 column at conns 1 is the mean per request, B / rate)"
    grep '^nnglat' "$ROWS" | awk '{ printf "nng one message at a time " \
        "(publish_bench latency, %s samples), run %s: p50 %s ms, p99 %s ms, " \
        "max %s ms\n", "'"$SAMPLES"'", $4, $5, $6, $7 }'
    grep FAILED "$ROWS" || true
    echo "rows: path batch conns run msgs/s req/s p50 p99 client mrd kafka other"
    cat "$ROWS"
} | tee -a "$RESULTS"
log "results saved to $RESULTS"
STATUS=$FAILED
exit "$FAILED"
