#!/usr/bin/env bash
# Error paths of mailroomd that the `mailroom` command line can reach: bad
# admin requests (not JSON, not an object, duplicate keys, unknown or
# malformed operations, fault.* without fault_injection), messages
# mailroomd or the producer refuses (too big a frame, too big a record,
# reserved headers, bad ids), and arguments the client refuses. Each must
# give a clear error and the exit code of cli/cli.h, and leave mailroomd
# serving everyone else.
#
# The raw-frame cases (truncated, bad magic, versions, lengths, counts,
# oversized frames) need a client that can send broken frames: they are the
# "protocol" TCase of publish_frames_test.c.
#
# Environment: MR_BINARY_DIR (mailroomd, mailroom).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_binaries
mrt_workdir proto

mr() { timeout 60 "$MR" --url "$url" --timeout 10000 "$@"; }

# expect CODE PATTERN DESCRIPTION CMD...: exit CODE, and PATTERN (an
# extended regular expression, or "" for none) in stdout+stderr.
expect() {
    local want=$1 pattern=$2 what=$3 rc
    shift 3
    "$@" >"$work/out" 2>&1
    rc=$?
    if [[ $rc -ne $want ]]; then
        mrt_fail "$what: exit $rc, expected $want: $(head -c 400 "$work/out")"
        return 1
    fi
    if [[ -n $pattern ]] && ! grep -qE "$pattern" "$work/out"; then
        mrt_fail "$what: the output does not match /$pattern/: $(head -c 400 "$work/out")"
        return 1
    fi
    mrt_pass "$what"
}

# After each error, mailroomd still serves another client.
still_serves() {
    if ! mr publish "$T/ok" "after: $1" >/dev/null 2>"$work/still.err"; then
        mrt_fail "after '$1', a good publish fails: $(cat "$work/still.err")"
    fi
}

# max_frame_bytes=65536: frames above it are refused; records above 1000
# bytes are refused by the producer (message.max.bytes).
mrt_start_daemon mailroomd --set max_frame_bytes=65536 \
    --set producer.message_max_bytes=1000
T="proto-$$"
mr topics create "$T" --partitions 2 >/dev/null || mrt_fail "topics create $T"

# --- admin ----------------------------------------------------------------
expect 1 'MR_EPROTO.*JSON' "admin with a body that is not JSON" mr admin 'not json'
still_serves "admin not json"
expect 1 'MR_EPROTO.*object' "admin with a JSON array" mr admin '[1,2]'
still_serves "admin array"
expect 1 'MR_EPROTO' "admin with duplicate keys" mr admin '{"op":"topics.list","op":"topics.list"}'
still_serves "admin duplicate keys"
expect 1 '"ok":false.*MR_EINVAL.*op' "admin without op" mr admin '{}'
expect 1 '"ok":false.*MR_EUNKNOWNOP' "admin with an unknown op" mr admin '{"op":"no.such.op"}'
expect 1 '"ok":false.*MR_ENOTSUP.*fault_injection' "fault.* without fault_injection" \
    mr admin '{"op":"fault.broker_down","broker":1}'
expect 1 '"ok":false.*MR_ENOTSUP' "fault.producer_fatal without fault_injection" \
    mr admin '{"op":"fault.producer_fatal"}'
expect 1 '"ok":false.*MR_EINVAL' "topics.create of an invalid name" \
    mr admin '{"op":"topics.create","topic":"bad topic","partitions":1}'
expect 1 '"ok":false.*MR_EINVAL' "topics.create with 0 partitions" \
    mr admin '{"op":"topics.create","topic":"zero","partitions":0}'
expect 1 '"ok":false.*MR_EINVAL' "topics.create with partitions as a string" \
    mr admin '{"op":"topics.create","topic":"strp","partitions":"3"}'
expect 1 '"ok":false.*MR_EINVAL' "topics.describe without a topic" mr admin '{"op":"topics.describe"}'
expect 1 'MR_ENOTSUP.*configuration' "topic configuration on the embedded cluster" \
    mr topics create "$T-cfg" --config retention.ms=1000
expect 1 'MR_EINVAL' "topics create of an invalid name" mr topics create 'bad topic'
still_serves "bad admin requests"

# --- messages mailroomd refuses -------------------------------------------------
head -c 100000 /dev/urandom >"$work/100k.bin"
expect 1 'MR_ETOOBIG.*max_frame_bytes' "a 100 KB frame over max_frame_bytes" mr publish "$T" -f "$work/100k.bin"
still_serves "a frame over max_frame_bytes"
head -c 2000 /dev/urandom >"$work/2k.bin"
expect 1 'MR_ETOOBIG.*producer.message_max_bytes' "a record over the producer's message.max.bytes" \
    mr publish "$T" -f "$work/2k.bin"
still_serves "a record over message.max.bytes"
expect 1 'MR_EINVAL.*ce_specversion' "a message that sets ce_specversion" \
    mr publish "$T" x -H ce_specversion=2.0
expect 1 'MR_EINVAL.*control' "an id with a control byte" mr publish "$T" x --id "$(printf 'a\tb')"
still_serves "refused messages"
# A frame beyond twice max_frame_bytes is not read: the connection drops.
# The publisher must end (refused or unanswered), not hang; others go on.
head -c 300000 /dev/urandom >"$work/300k.bin"
timeout 60 "$MR" --url "$url" --timeout 3000 publish "$T" -f "$work/300k.bin" >"$work/out" 2>&1
rc=$?
case $rc in
    1 | 3) mrt_pass "a 300 KB frame ends the publisher with $rc: $(head -c 200 "$work/out")" ;;
    *) mrt_fail "a 300 KB frame: exit $rc: $(head -c 300 "$work/out")" ;;
esac
still_serves "a 300 KB frame"

# --- arguments the client refuses ---------------------------------------------
# Invalid arguments are usage errors (2), and say what is wrong.
long_id=$(printf 'i%.0s' $(seq 256))
expect 2 'id' "an id of 256 bytes" mr publish "$T" x --id "$long_id"
expect 2 'topic' "an empty topic" mr publish "" x
expect 2 'topic' "an address with an empty topic" mr publish "/key" x
long_name=$(printf 'h%.0s' $(seq 256))
expect 2 'header' "a header name of 256 bytes" mr publish "$T" x -H "$long_name=v"
expect 2 '' "an option without its value" mr publish "$T" --id
# A URL nng cannot use: named in the error.
expect 3 'nosuch://' "a URL of an unknown scheme" timeout 60 "$MR" --url 'nosuch://x' status
still_serves "bad arguments"

# --- still well ---------------------------------------------------------------------
expect 0 '' "status at the end" mr status
if grep -qiE 'segfault|assert|abort|panic' "$work/mailroomd.log"; then
    mrt_fail "mailroomd's log reports a crash: $(grep -iE 'segfault|assert|abort|panic' "$work/mailroomd.log" | head -3)"
fi
mrt_stop_daemon
mrt_finish 30 "$work/mailroomd.log"
