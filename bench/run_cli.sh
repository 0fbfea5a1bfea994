#!/usr/bin/env bash
# The CLI benchmark (docs/benchmarks/cli.md): `mailroom publish
# --lines` and `mailroom consume` against kcat, the raw tool a new user
# would reach for, on one real single-node Kafka (tests/kafka/kafka.sh)
# and one mailroomd, in interleaved rounds. Everything listens on
# 127.0.0.1.
#
# Each round, on topics of its own (P partitions):
#   publish  `mailroom publish --lines -K TAB -b 1000 TOPIC` of N lines
#            (KEYS keys, SIZE-byte payloads) into mr-R, against `kcat -P
#            -K TAB` of the same lines into raw-R with mailroomd's producer
#            settings (acks=all, idempotence, linger.ms 2, murmur2) and the
#            same five CloudEvents headers (-H, values of the same length);
#   consume  `mailroom consume -g G --mode key --batch 1000 -n N mr-R`,
#            against `kcat -G G2 -e` of the same topic (the same records,
#            headers and all), printing the same fields (-f '%t/%p@%o
#            key=%k: %s\n').
# The order of the two sides alternates from round to round. stdout goes
# to a file on tmpfs (OUT_DIR), not /dev/null, so that the first line's
# time and the number of lines can be seen. Each command is timed from
# start to exit (what a user waits for: subscribing and joining the group
# included) and, for consume, from its first byte on stdout to its exit
# (the steady rate); its own CPU, mailroomd's and Kafka's are read from
# /proc (bench/cli_measure.py).
#
# Usage: bench/run_cli.sh [BUILD_DIR]   (default: build-bench at the root)
# Environment (defaults in brackets):
#   N [300000]  SIZE [100]  KEYS [1000]  PARTITIONS [4]  ROUNDS [5]
#   BATCH [1000]           the CLI's --batch, both commands
#   MAILROOMD [BUILD_DIR/mailroomd], CLI_BIN [BUILD_DIR/mailroom]: other
#                          binaries, for A/B runs
#   BASE_CLI [none]        another build's `mailroom`: its consume runs too,
#                          each round, on the same topic ("consume base")
#   OUT_DIR [/dev/shm if there, else the temporary directory]
#   WARMUP [1]             0: no uncounted round 0 (both sides publishing
#                          once, to warm Kafka up)
#   KEEP=1                 keep the temporary directory (logs, data)
# Results are also saved to BUILD_DIR/bench-results/cli-<time>.txt.
# Exit status: 0 when every command exited 0.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
N=${N:-300000}
SIZE=${SIZE:-100}
KEYS=${KEYS:-1000}
PARTITIONS=${PARTITIONS:-4}
ROUNDS=${ROUNDS:-5}
BATCH=${BATCH:-1000}
BENCH_NAME=cli
MEASURE=$ROOT/bench/cli_measure.py
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

command -v kcat >/dev/null || die "kcat is needed (the raw side)"
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    log "configuring $BUILD (Release)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DMR_TESTS=OFF -DMR_BENCH=ON >&2
fi
log "building mailroomd and mailroom in $BUILD"
cmake --build "$BUILD" -j"$(nproc)" --target mailroomd mailroom-cli >&2
BUILD=$(cd "$BUILD" && pwd)
MAILROOMD=${MAILROOMD:-$BUILD/mailroomd}
CLI=${CLI_BIN:-$BUILD/mailroom}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-cli-bench.XXXXXX")
if [[ -z ${OUT_DIR:-} && -d /dev/shm && -w /dev/shm ]]; then
    OUT_DIR=/dev/shm
fi
OUT=$(mktemp "${OUT_DIR:-$WORK}/mailroom-cli-bench-out.XXXXXX")
trap 'rm -f "$OUT"; bench_cleanup' EXIT # OUT_DIR may be outside WORK

start_kafka
start_mailroomd "$WORK/mailroomd.log"
results_begin cli
{
    echo "# N $N, $SIZE-byte payloads, $KEYS keys, $PARTITIONS partitions," \
        "--batch $BATCH, $ROUNDS rounds; kcat $(kcat -V 2>&1 |
            sed -n 's/^Version \([^ ]*\).*/\1/p' | head -n 1)"
    echo "# mailroom: $CLI"
} | tee -a "$RESULTS"

python3 -c '
import sys
n, size, keys = map(int, sys.argv[1:4])
out = sys.stdout
for i in range(n):
    head = "%06d" % (i % 1000000)
    out.write("key-%d\t%s%s\n" % (i % keys, head, "x" * (size - len(head))))
' "$N" "$SIZE" "$KEYS" >"$WORK/lines.txt"

MR=("$CLI" --url "$MRD_URL")
WATCH="mailroomd=$MRD_PID,kafka=$KAFKA_PID"
# What mailroomd writes (bridge/envelope.c), the id and time the same size.
HDRS=(-H ce_specversion=1.0 -H ce_id=01a2474b-6b25-70c6-903c-58e7e1bf612f
      -H ce_source=mailroomd -H ce_type=mailroom.message
      -H ce_time=2026-12-05T17:40:54.695Z)
RAWP=(kcat -b "$BROKERS" -P -K $'\t' -X enable.idempotence=true
      -X acks=all -X linger.ms=2 -X partitioner=murmur2_random "${HDRS[@]}")

measure() { # measure LABEL STDIN COMMAND...
    local label=$1 in=$2
    shift 2
    if ! python3 "$MEASURE" "$label" "$N" "$in" "$OUT" "$WATCH" -- "$@" |
        tee -a "$RESULTS"; then
        log "$label exited non-zero"
        FAILED=1
    fi
}

# Round 0, not counted: both sides publish once, so that Kafka's JIT has
# compiled the produce path before either side is measured (the first
# publish of a fresh Kafka paid it alone).
if (( ${WARMUP:-1} )); then
    for t in warm-mr warm-raw; do
        "${MR[@]}" topics create "$t" --partitions "$PARTITIONS" >/dev/null
    done
    "${MR[@]}" publish --lines -K $'\t' -b "$BATCH" warm-mr \
        <"$WORK/lines.txt" >/dev/null
    "${RAWP[@]}" -t warm-raw <"$WORK/lines.txt"
fi

for r in $(seq "$ROUNDS"); do
    printf '\n## round %d\n' "$r" | tee -a "$RESULTS"
    for t in "mr-$r" "raw-$r"; do
        "${MR[@]}" topics create "$t" --partitions "$PARTITIONS" >/dev/null
    done
    if (( r % 2 )); then sides=(mailroom raw); else sides=(raw mailroom); fi
    for side in "${sides[@]}"; do
        if [[ $side == mailroom ]]; then
            measure "publish mailroom" "$WORK/lines.txt" \
                "${MR[@]}" publish --lines -K $'\t' -b "$BATCH" "mr-$r"
        else
            measure "publish raw" "$WORK/lines.txt" "${RAWP[@]}" -t "raw-$r"
        fi
    done
    [[ -n ${BASE_CLI:-} ]] && sides+=(base)
    for side in "${sides[@]}"; do
        if [[ $side == base ]]; then
            measure "consume base" - "$BASE_CLI" --url "$MRD_URL" consume \
                -g "base-$r" --mode key --batch "$BATCH" -n "$N" "mr-$r"
        elif [[ $side == mailroom ]]; then
            measure "consume mailroom" - "${MR[@]}" consume -g "cli-$r" \
                --mode key --batch "$BATCH" -n "$N" "mr-$r"
        else
            measure "consume raw" - kcat -b "$BROKERS" -G "raw-$r" \
                -X auto.offset.reset=earliest -e -q \
                -f '%t/%p@%o key=%k: %s\n' "mr-$r"
        fi
    done
done

printf '\n## summary\n' | tee -a "$RESULTS"
python3 - "$RESULTS" <<'EOF' | tee -a "$RESULTS"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def rng(xs):
    return "%s (%s - %s)" % (fmt(statistics.median(xs)), fmt(min(xs)),
                             fmt(max(xs)))
def fmt(x):
    return "%.0f" % x if x >= 100 else "%.2f" % x
by = {}
for r in runs:
    by.setdefault(r["label"], []).append(r)
for op in ("publish", "consume"):
    mr, raw = by.get(op + " mailroom", []), by.get(op + " raw", [])
    base = by.get(op + " base", [])
    if not mr or not raw:
        continue
    for name, rs in (("mailroom", mr), ("base", base), ("raw", raw)):
        if not rs:
            continue
        n = rs[0]["n"]
        line = "%s %-8s msgs/s %s" % (op, name,
                                     rng([n / r["wall_s"] for r in rs]))
        if op == "consume":
            line += "; from first write %s" % rng(
                [n / (r["wall_s"] - r["first_write_s"]) for r in rs
                 if r["first_write_s"]] or [0])
        for who in ("cmd", "mailroomd", "kafka"):
            line += "; %s cpu us/msg %s" % (who, rng(
                [r["cpu_s"][who] * 1e6 / n for r in rs]))
        print(line)
    pairs = list(zip(mr, raw))
    print("%s ratio mailroom/raw (per round, whole command) %s" % (op, rng(
        [m["n"] / m["wall_s"] / (w["n"] / w["wall_s"]) for m, w in pairs])))
    if op == "consume":
        xs = [(w["wall_s"] - w["first_write_s"]) /
              (m["wall_s"] - m["first_write_s"]) for m, w in pairs
              if m["first_write_s"] and w["first_write_s"]]
        if xs:
            print("consume ratio mailroom/raw (per round, from first "
                  "write) %s" % rng(xs))
        if base:
            print("consume ratio base/raw (per round, whole command) %s" %
                  rng([m["n"] / m["wall_s"] / (w["n"] / w["wall_s"])
                       for m, w in zip(base, raw)]))
EOF
rm -f "$OUT"
stop_mailroomd
check_logs
log "results saved to $RESULTS"
STATUS=$FAILED
exit "$FAILED"
