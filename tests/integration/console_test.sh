#!/usr/bin/env bash
# The web console in headless Chromium (issue #12): mailroomd with its HTTP
# API on a free loopback port and a token; topic T and its dead-letter
# topic T.dlq; then console_test.py (Playwright with Debian's chromium):
# the page loads with no console error, shows a lagging group's lag, lists
# a quarantined message, shows it and replays it, shows the restarts a
# process reported. Its screenshots are kept
# in $MR_BINARY_DIR/artifacts/ (console.png, console-replayed.png).
#
# Usage: console_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need python3
mrt_workdir console
unset MAILROOM_HTTP_LISTEN

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
U="http://127.0.0.1:$port"
mrt_start_daemon mailroomd --set "http.listen=$U" \
    --set "http.token_file=$work/token" --set lag.interval_ms=500
T="console-$mode-$$"
mr() { timeout 120 "$MR" --url "$url" "$@"; }
mr topics create "$T" --partitions 2 >/dev/null || mrt_fail "topics create $T"
mr topics create "$T.dlq" --partitions 2 >/dev/null ||
    mrt_fail "topics create $T.dlq"
mkdir -p "$MR_BINARY_DIR/artifacts"

MRT_URL=$U MRT_TOKEN=$(cat "$work/token") MRT_TOPIC=$T \
    ARTIFACTS="$MR_BINARY_DIR/artifacts" \
    mrt_run_driver 300 "$(dirname "${BASH_SOURCE[0]}")/console_test.py" \
    >"$work/driver.out" 2>&1
rc=$?
cat "$work/driver.out"
if [[ $rc -eq 77 ]]; then
    exit 77
elif [[ $rc -eq 0 ]]; then
    mrt_pass "the console in Chromium: lag, the dead-letter queue, replay"
else
    mrt_fail "console_test.py exited $rc"
fi
mrt_stop_daemon
mrt_finish 40 "$log"
