#!/usr/bin/env bash
# `mailroom consume`'s flags for the retry policy, the dead-letter topic and
# the breaker (--max-attempts, --backoff, --dlq-topic, --breaker) and
# --reject, without a mailroomd: a bad value is refused with a sentence
# naming the flag and exit 2 (usage) before anything is dialled; good values
# get as far as dialling, which nothing answers (exit 3).
#
# Environment: MR_BINARY_DIR (mailroom).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_binaries
mrt_need timeout
mrt_workdir consume-flags
nobody="ipc://$work/nobody-listens.sock"

# expect WANT_RC STDERR_PART ARGS...: mailroom consume -g g ARGS t.
expect() {
    local want=$1 says=$2 rc
    shift 2
    timeout 60 "$MR" --url "$nobody" --timeout 1000 consume -g g "$@" t \
        >"$work/out" 2>"$work/err"
    rc=$?
    if [[ $rc -ne $want ]]; then
        mrt_fail "consume $*: exit $rc, expected $want; stderr: $(head -c 300 "$work/err")"
    elif ! grep -qF -- "$says" "$work/err"; then
        mrt_fail "consume $*: stderr does not say '$says': $(head -c 300 "$work/err")"
    else
        mrt_pass "consume $* (exit $rc)"
    fi
}

# Refused: usage.
expect 2 "--max-attempts takes 0..1000 (0: unlimited)" --max-attempts 1001
expect 2 "--max-attempts takes 0..1000" --max-attempts -1
expect 2 "--max-attempts takes 0..1000" --max-attempts 3x
expect 2 "--backoff: INITIAL_MS is 0..3600000" --backoff 3600001
expect 2 "--backoff: INITIAL_MS is 0..3600000" --backoff x:5
expect 2 "--backoff: MAX_MS is 0..86400000" --backoff :86400001
expect 2 "--backoff: MAX_MS is below INITIAL_MS" --backoff 5000:4999
expect 2 "--backoff: MULTIPLIER is a number from 1 to 100" --backoff 1:2:0.9
expect 2 "--backoff: MULTIPLIER is a number from 1 to 100" --backoff ::100.5
expect 2 "--backoff: JITTER is a number from 0 to 1" --backoff :::1.01
expect 2 "--backoff: JITTER is a number from 0 to 1" --backoff :::nan
expect 2 "--backoff: JITTER is a number from 0 to 1" --backoff :::0,2
expect 2 "--backoff takes INITIAL_MS[:MAX_MS[:MULTIPLIER[:JITTER]]]" --backoff 1:2:3:0.1:5
expect 2 "--breaker: N is 0..1000000 (0: no breaker)" --breaker 1000001
expect 2 "--breaker: N is 0..1000000" --breaker 1:2
expect 2 "--breaker: PERIOD_MS is 1..86400000" --breaker 5/0
expect 2 "--breaker: PERIOD_MS is 1..86400000" --breaker 5/1/2
expect 2 "--breaker: COOLDOWN_MS is 1..86400000" --breaker 5/10:0
expect 2 "--breaker takes N[/PERIOD_MS[:COOLDOWN_MS]]" --breaker 5/10:20:30
expect 2 "--dlq-topic takes a topic" --dlq-topic "a b"
expect 2 "--dlq-topic takes a topic" --dlq-topic ..
expect 2 "--dlq-topic is one of the topics consumed" --dlq-topic t
expect 2 "--nack-reason goes with --nack or --reject" --nack-reason why

# Accepted: the command goes on to dial, and nothing answers.
expect 3 "mailroom" --max-attempts 0
expect 3 "mailroom" --max-attempts 1000 --backoff 0:0:1:0
expect 3 "mailroom" --backoff 100:60000:1.5:0.25
expect 3 "mailroom" --backoff :120000 --backoff ::2.5
expect 3 "mailroom" --backoff 3600000:86400000:100:1
expect 3 "mailroom" --breaker 0
expect 3 "mailroom" --breaker 10/1000:2000 --dlq-topic t.poison
expect 3 "mailroom" --breaker /5000 --breaker 1000000/86400000:86400000
expect 3 "mailroom" --reject
expect 3 "mailroom" --reject --nack-reason "bad schema"
expect 3 "mailroom" --nack --nack-reason later

mrt_finish
