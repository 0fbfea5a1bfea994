#!/usr/bin/env bash
# mailroomd's memory with a backlog consumed slowly (issue #13, target 7),
# as a new user would try it: N records of S bytes on P partitions of a
# real Kafka, then one `mailroom consume` whose output is read slowly (a
# reader that sleeps between lines, so the CLI blocks on its stdout and
# fetches no faster). mailroomd's RSS is sampled every second from
# /proc/PID/status: before subscribing, then for DURATION seconds.
#
#   bench/run_memory.sh                  # build dir: build-bench
#   N=1000000 DURATION=30 bench/run_memory.sh build-rel
#
# Knobs: N (10 000 000), SIZE (100), PARTITIONS (4), DURATION (120),
# MODE (key), BATCH (100, the CLI's --batch), READ_US (per line the reader
# sleeps, 200), SETS (more mailroomd --set KEY=VALUE, space-separated),
# KEEP=1 to keep the logs. Prints one line per sample and a summary: RSS
# before, after 5 s, the peak, at the end, and the growth over the second
# half (MB/min). Exits non-zero if mailroomd died or needed SIGKILL.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
BENCH_NAME=publish_bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

N=${N:-10000000}
SIZE=${SIZE:-100}
PARTITIONS=${PARTITIONS:-4}
DURATION=${DURATION:-120}
MODE=${MODE:-key}
BATCH=${BATCH:-100}
READ_US=${READ_US:-200}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

bench_build
command -v kcat >/dev/null || die "kcat is needed to preload (apt-get install kcat)"
start_kafka
# shellcheck disable=SC2086
start_mailroomd "$WORK/mailroomd.log" ${SETS:-}
topic=memory-$$
"$CLI" --url "$MRD_URL" --timeout 30000 topics create "$topic" \
    --partitions "$PARTITIONS" >/dev/null
log "preloading $N records of $SIZE bytes (1 000 keys) with kcat"
t0=$SECONDS
awk -v n="$N" -v s="$SIZE" 'BEGIN {
    pad = sprintf("%*s", s, ""); gsub(/ /, "x", pad)
    for (i = 0; i < n; i++) printf "key-%d\t%s\n", i % 1000, pad }' |
    kcat -P -b "$BROKERS" -t "$topic" -K $'\t' -z none \
        -X queue.buffering.max.messages=1000000 \
        -X partitioner=murmur2_random -X linger.ms=20
log "preloaded in $((SECONDS - t0)) s"

before=$(rss_kb "$MRD_PID")
log "mailroomd RSS before subscribing: $((before / 1024)) MB"
"$CLI" --url "$MRD_URL" consume -g "memory-$$" --mode "$MODE" \
    --batch "$BATCH" "$topic" 2>"$WORK/consume.err" |
    python3 -c "import sys, time
for _ in sys.stdin: time.sleep($READ_US / 1e6)" &
reader=$!
samples=()
for ((t = 1; t <= DURATION; t++)); do
    sleep 1
    kill -0 "$MRD_PID" 2>/dev/null || { log "mailroomd died"; FAILED=1; break; }
    samples+=("$(rss_kb "$MRD_PID")")
    printf 't=%3ds rss=%6.1f MB\n' "$t" "$(echo "${samples[-1]} / 1024" | bc -l)"
done
lag=$("$CLI" --url "$MRD_URL" lag --json --group "memory-$$" "$topic" \
    2>/dev/null | python3 -c 'import json, sys
def lags(o):
    if isinstance(o, dict):
        if isinstance(o.get("lag"), int): yield o["lag"]
        else:
            for v in o.values(): yield from lags(v)
    elif isinstance(o, list):
        for v in o: yield from lags(v)
try: print(sum(lags(json.load(sys.stdin))))
except Exception: print("?")' || true)
pkill -f "consume -g memory-$$ " 2>/dev/null || true
wait "$reader" 2>/dev/null || true
stop_mailroomd
printf '%s\n' "${samples[@]}" | awk -v before="$before" -v n="$N" \
    -v p="$PARTITIONS" -v lag="$lag" -v sets="${SETS:-}" '
    { v[NR] = $1; if ($1 > peak) peak = $1 }
    END {
        half = int(NR / 2); if (half < 1) half = 1
        grow = (v[NR] - v[half]) / 1024 / ((NR - half) / 60)
        printf "summary: %d records, %d partitions%s; RSS MB: before %.1f, " \
            "at 5 s %.1f, peak %.1f, at %d s %.1f; second half %+.2f MB/min; " \
            "lag at the end %s\n", n, p, sets == "" ? "" : " (" sets ")",
            before / 1024, v[5] / 1024, peak / 1024, NR, v[NR] / 1024,
            grow, lag }'
STATUS=$FAILED
exit "$FAILED"
