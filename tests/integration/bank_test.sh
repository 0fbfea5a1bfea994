#!/usr/bin/env bash
# The bank example's demo (examples/bank/demo.sh) as a test: two processes
# host the mirrored accounts with durable state, one is killed -9
# mid-stream, a third joins (a rebalance hands accounts off to it), and
# every account's balance equals the sum of its acked deposits (no lost
# and no double-applied message). Embedded or real Kafka (the first
# argument).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "${1:-embedded}"
mrt_binaries
mrt_workdir bank
mrt_start_daemon mailroomd

rc=0
MAILROOM_URL=$url MR_BINARY_DIR=$MR_BINARY_DIR TMPDIR=$work \
    timeout -k 10 600 bash "$MR_SOURCE_DIR/examples/bank/demo.sh" || rc=$?
if [[ $rc -eq 0 ]]; then
    mrt_pass "the bank demo: balances intact after a kill -9 and a takeover"
else
    mrt_fail "the bank demo exited $rc"
fi
mrt_stop_daemon
mrt_finish 30 "$log"
