#!/usr/bin/env bash
# A/B of the publish path between two builds (each its own mailroomd and
# mailroom CLI) on one real Kafka, interleaved so that both see the same
# machine: ROUNDS times, the same N lines (100-byte payloads, 1000 keys)
# through `mailroom publish --lines -b BATCH` into an 8-partition topic of
# their own. Prints msgs/s, and mailroomd's and the CLI's CPU µs per
# message, per round.
#
# With BOUND_NEW=1 the new side's topics each get a backpressure bound
# that is never reached (max_lag 10^12), counting a group (kcat -G) that
# consumed the topic's first record: what bounds cost when they do not
# throttle
# (the same build on both sides: bench/ab_publish.sh build-bench
# build-bench).
#
# BASE_SET and NEW_SET give each side's mailroomd settings (KEY=VALUE,
# space-separated): NEW_SET=producer.envelope=lean with the same build on
# both sides measures the lean envelope against the full one. With RAW=1
# each round also runs the new build's publish_bench raw producer (N
# messages, mailroomd's producer settings) without headers and with
# mailroomd's five, and prints its msgs/s and CPU µs per message: the
# references of issue #13's targets, on the same machine in the same
# minute.
#
# Usage: bench/ab_publish.sh BASE_BUILD_DIR NEW_BUILD_DIR
# Environment: N [300000], BATCH [1000], ROUNDS [4], BOUND_NEW [0],
#              BASE_SET [], NEW_SET [], RAW [0], BATCH_NEW [BATCH] (the
#              new side's -b).
# Build the base with e.g.
#   git worktree add --detach /tmp/base REV &&
#   cmake -S /tmp/base -B /tmp/base/b -DCMAKE_BUILD_TYPE=Release \
#     -DMR_TESTS=OFF && cmake --build /tmp/base/b --target mailroomd mailroom-cli
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -eq 2 ]] || { echo "usage: ab_publish.sh BASE_BUILD NEW_BUILD" >&2; exit 2; }
N=${N:-300000}
BATCH=${BATCH:-1000}
ROUNDS=${ROUNDS:-4}
BOUND_NEW=${BOUND_NEW:-0}
RAW=${RAW:-0}
declare -A SETS=([base]=${BASE_SET:-} [new]=${NEW_SET:-})
BATCH_NEW=${BATCH_NEW:-$BATCH}
KS=$ROOT/tests/kafka/kafka.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-ab.XXXXXX")
declare -A DIR=([base]=$1 [new]=$2) PID=()
cleanup() {
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash "$KS" stop "$W/kafka" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/kafka"
brokers=$(bash "$KS" start "$W/kafka")
python3 -c "
import sys
n = int(sys.argv[1])
sys.stdout.write(''.join('k%d\t%06d%s\n' % (i % 1000, i, 'x' * 94) for i in range(n)))
" "$N" >"$W/lines.txt"
for v in base new; do
    # No HTTP API: two mailroomds would both want its port.
    sets=(--set http.listen=)
    for kv in ${SETS[$v]}; do sets+=(--set "$kv"); done
    "${DIR[$v]}/mailroomd" --brokers "$brokers" --listen "ipc://$W/$v.sock" \
        "${sets[@]}" >"$W/$v.log" 2>&1 &
    PID[$v]=$!
done
sleep 3
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "$ROUNDS"); do
    for v in base new; do
        mr=("${DIR[$v]}/mailroom" -u "ipc://$W/$v.sock")
        t="ab-$v-$round"
        "${mr[@]}" topics create "$t" --partitions 8 >/dev/null
        if [[ $BOUND_NEW == 1 ]]; then
            # Both sides alike (a first record, a group that read it),
            # the bound on the new side only. An external group (kcat):
            # mailroomd serves none, so that the new side's extra CPU is
            # the gate's and the lag monitor's only.
            "${mr[@]}" publish "$t/k0" first >/dev/null
            kcat -b "$brokers" -G "g-$t" -X auto.offset.reset=earliest \
                -c 1 "$t" >/dev/null 2>&1
        fi
        if [[ $BOUND_NEW == 1 && $v == new ]]; then
            until "${mr[@]}" bounds set "$t" --max-lag 1000000000000 \
                --group "g-$t" >/dev/null 2>&1; do sleep 0.2; done
            # until the gate knows the topic's partitions
            until "${mr[@]}" bounds --json "$t" |
                grep -q '"partitions": *\[{'; do sleep 0.2; done
        fi
        b=$BATCH
        [[ $v == new ]] && b=$BATCH_NEW
        c0=$(cpu_ticks "${PID[$v]}")
        s0=$(date +%s.%N)
        /usr/bin/time -f '%U %S' -o "$W/cli.time" \
            "${mr[@]}" publish --lines -K $'\t' -b "$b" "$t" <"$W/lines.txt" >/dev/null
        s1=$(date +%s.%N)
        c1=$(cpu_ticks "${PID[$v]}")
        read -r cu cs <"$W/cli.time"
        python3 -c "
n, w, c = $N, $s1 - $s0, ($c1 - $c0) / $(getconf CLK_TCK)
cli = $cu + $cs
print('%-4s round %d: %8.0f msgs/s   mailroomd %5.2f us/msg   cli %5.2f us/msg (-b $b)' % ('$v', $round, n / w, c * 1e6 / n, cli * 1e6 / n))"
    done
    if [[ $RAW == 1 ]]; then
        for h in none headers; do
            args=(--brokers "$brokers" --mode raw --samples 0 --count "$N"
                --topic "ab-raw-$h-$round")
            [[ $h == headers ]] && args+=(--raw-headers)
            "${DIR[new]}/bench/publish_bench" "${args[@]}" 2>/dev/null |
                tail -n 1 | python3 -c "
import json, sys
r = json.load(sys.stdin)['raw']
print('raw %-7s round %d: %8.0f msgs/s   producer  %5.2f us/msg' % ('$h', $round, r['msgs_per_s'], r['cpu_s'] * 1e6 / max(r['msgs'], 1)))"
        done
    fi
done
