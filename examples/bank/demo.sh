#!/usr/bin/env bash
# The bank example (README, "Examples"), against a running mailroomd
# ($MAILROOM_URL, else tcp://127.0.0.1:7450: `bash scripts/run.sh`):
#
#   1. two `bank serve` processes share the accounts of a new topic, as
#      members of one group (each holds some partitions, and so some
#      accounts; every account's balance is durable in <topic>.state);
#   2. deposits to 100 accounts are published with `mailroom publish`;
#   3. the first process is killed -9 mid-stream; the second takes its
#      partitions over, its accounts starting from their saved balances,
#      and goes on;
#   4. a third process joins the group: a rebalance hands some partitions
#      off from the second to it (the second's actors of those accounts
#      exit, the third's start from the saved balances);
#   5. every balance must equal the sum of that account's acked deposits:
#      nothing lost, nothing applied twice.
#
# Exit 0 when it holds, 1 when not (which accounts, and why), 3 when
# mailroomd cannot be reached. MR_BINARY_DIR: where mailroom and bank are
# (default build/); ACCOUNTS and DEPOSITS (per account) size the stream.
set -euo pipefail
cd "$(dirname "$0")/../.."

B=${MR_BINARY_DIR:-build}
MR="$B/mailroom"
BANK="$B/bank"
ACCOUNTS=${ACCOUNTS:-100}
DEPOSITS=${DEPOSITS:-80}
WAIT_S=${WAIT_S:-180}
work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bank-XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [[ -n ${KEEP:-} ]] && echo "demo: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s%N)
say() {
    local ms=$((($(date +%s%N) - t0) / 1000000))
    printf '[%3d.%ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}

# scripts/run.sh may still be building: wait for mailroomd (bounded).
for ((t = 0; ; t++)); do
    [[ -x $MR ]] && "$MR" --timeout 2000 status >/dev/null 2>&1 && break
    if ((t >= ${WAIT_MAILROOMD_S:-600})); then
        echo "demo: no mailroomd at ${MAILROOM_URL:-tcp://127.0.0.1:7450}; start it: bash scripts/run.sh &" >&2
        exit 3
    fi
    ((t % 15 == 0)) && echo "demo: waiting for mailroomd at ${MAILROOM_URL:-tcp://127.0.0.1:7450} (scripts/run.sh builds it first)" >&2
    sleep 1
done
[[ -x $BANK ]] || { echo "demo: $BANK is not built: bash scripts/run.sh" >&2; exit 1; }
topic=accounts-$$-$RANDOM
group=bank-$topic
"$MR" --timeout 30000 topics create "$topic" --partitions 4 >/dev/null
say "topic $topic (4 partitions); balances in $topic.state"

serve() { # name
    "$BANK" serve --topic "$topic" --group "$group" --threads 2 \
        --work-ms 5 >"$work/$1.log" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}
serve a
serve b
for _ in $(seq 300); do
    grep -q serving "$work/a.log" && grep -q serving "$work/b.log" && break
    sleep 0.1
done
say "bank a (pid $pid_a) and bank b (pid $pid_b) serving, group $group"

# The deposits: account i's deposit d is i + 10 d.
for ((d = 0; d < DEPOSITS; d++)); do
    for ((i = 0; i < ACCOUNTS; i++)); do
        printf 'acct-%d\t+%d\n' "$i" $((i + 10 * d))
    done
done >"$work/deposits.tsv"
"$MR" --timeout 30000 publish --lines -K $'\t' --json "$topic" \
    <"$work/deposits.tsv" >"$work/acks.jsonl"
acked=$(grep -c '"status":"ok"' "$work/acks.jsonl" || true)
say "$acked of $((ACCOUNTS * DEPOSITS)) deposits published and acked"

# Kill a once it has applied some deposits, and before the stream is done.
for _ in $(seq 600); do
    grep -q "deposits applied here" "$work/a.log" && break
    sleep 0.1
done
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null || true
saved=$("$BANK" balances --topic "$topic" | awk -F'\t' '{s += $2} END {print s + 0}')
total=$(paste "$work/deposits.tsv" "$work/acks.jsonl" |
    awk -F'\t' '/"status":"ok"/ {s += substr($2, 2)} END {print s + 0}')
say "bank a killed -9 after: $(grep "applied here" "$work/a.log" | tail -1 | sed 's/^bank: //'); $saved of $total saved by then"

# c joins once b has taken a's accounts over from their saved balances
# (a's session must expire first): joining earlier, c could be handed
# a's partitions before b is, and b would take nothing over.
for _ in $(seq 600); do
    grep "from their snapshot" "$work/b.log" | tail -1 |
        grep -qv '(0 from' && break
    kill -0 "$pid_b" 2>/dev/null || break # gone: the checks below say so
    sleep 0.1
done
serve c
say "bank c (pid $pid_c) joins the group"

# Wait for b and c to have it all.
for ((t = 0; t < WAIT_S * 2; t++)); do
    now=$("$BANK" balances --topic "$topic" | awk -F'\t' '{s += $2} END {print s + 0}')
    [[ $now -ge $total ]] && break
    sleep 0.5
done
kill -TERM "$pid_b" "$pid_c"
brc=0
crc=0
wait "$pid_b" 2>/dev/null || brc=$?
wait "$pid_c" 2>/dev/null || crc=$?
say "bank b: $(tail -2 "$work/b.log" | sed 's/^bank: //' | paste -sd ';')"
say "bank c: $(tail -2 "$work/c.log" | sed 's/^bank: //' | paste -sd ';')"

# Every account: its balance as saved against the sum of its acked
# deposits. An account with a deposit whose publish was not acked (in
# doubt: it may be in Kafka or not) has no sum to check; the demo says so.
"$BANK" balances --topic "$topic" | sort >"$work/balances.tsv"
paste "$work/deposits.tsv" "$work/acks.jsonl" |
    awk -F'\t' '/"status":"ok"/ {s[$1] += substr($2, 2); next}
        {doubt[$1] = 1}
        END {for (k in s) if (!(k in doubt)) print k "\t" s[k]}' |
    sort >"$work/expected.tsv"
unsure=$(paste "$work/deposits.tsv" "$work/acks.jsonl" | grep -vc '"status":"ok"' || true)
if [[ $unsure -ne 0 ]]; then
    say "$unsure deposits not acked: their accounts are left out of the check"
    awk -F'\t' 'NR == FNR {want[$1] = 1; next} ($1 in want)' \
        "$work/expected.tsv" "$work/balances.tsv" >"$work/checked.tsv"
    mv "$work/checked.tsv" "$work/balances.tsv"
fi
bad=$(join -t $'\t' -a 1 -a 2 -e missing -o 0,1.2,2.2 \
    "$work/expected.tsv" "$work/balances.tsv" | awk -F'\t' '$2 != $3')
status=0
if [[ -n $bad ]]; then
    echo "FAIL: accounts whose balance is not the sum of their acked deposits (account, expected, saved):"
    echo "$bad" | head -20
    status=1
else
    say "ok: all $(wc -l <"$work/expected.tsv") balances equal the sum of their acked deposits (total $total): nothing lost, nothing applied twice"
fi
for x in b c; do
    rc=$brc
    [[ $x == c ]] && rc=$crc
    if [[ $rc -ne 0 ]]; then
        echo "FAIL: bank $x exited $rc on SIGTERM; its log:"
        tail -20 "$work/$x.log"
        status=1
    fi
done
if [[ $saved -ge $total ]]; then
    echo "FAIL: bank a was killed after the stream was done, not mid-stream ($saved of $total saved)"
    status=1
fi
for x in b c; do
    if ! grep -q "from their snapshot" "$work/$x.log" ||
        grep "from their snapshot" "$work/$x.log" | tail -1 | grep -q '(0 from'; then
        echo "FAIL: bank $x took no account over from its saved balance"
        status=1
    fi
done
if grep -h " hand-offs" "$work/b.log" "$work/c.log" | grep -qv ' 0 hand-offs'; then
    :
else
    echo "FAIL: no actor was handed off in the rebalances"
    status=1
fi
exit $status
