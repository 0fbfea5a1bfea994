#!/usr/bin/env bash
# The `mailroom` command line against a mailroomd of its own: publish (from
# an argument, a binary file, stdin, --lines with --key-delim, headers, ids,
# --json), its exit codes (cli/cli.h), status, topics. Records are read back
# with kcat, an independent Kafka client, and compared byte for byte.
#
# Usage: publish_cli_test.sh embedded|kafka
#   embedded: mailroomd runs its in-memory cluster
#   kafka:    the real broker of the CTest fixture ($MR_KAFKA_DIR/bootstrap;
#             exit 77 with the reason when $MR_KAFKA_DIR/unavailable exists)
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat python3 timeout cmp
mrt_workdir cli

# mr ARGS...: the CLI against our mailroomd, bounded.
mr() { timeout 60 "$MR" --url "$url" "$@"; }

# expect_rc WANT DESCRIPTION CMD...: run CMD (stdout in $work/out, stderr in
# $work/err) and check its exit code.
expect_rc() {
    local want=$1 what=$2 rc
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [[ $rc -eq $want ]]; then
        mrt_pass "$what (exit $rc)"
        return 0
    fi
    mrt_fail "$what: exit $rc, expected $want; stdout: $(head -c 500 "$work/out"); stderr: $(head -c 500 "$work/err")"
    return 1
}

# json_field FILE EXPR: a python expression over the JSON object j of FILE.
json_field() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# partition_of KEY N: Kafka's Java default partitioner, computed here
# independently of mailroom (murmur2, then toPositive, then modulo).
partition_of() {
    python3 - "$1" "$2" <<'EOF'
import sys
def murmur2(data):
    m = 0x5bd1e995
    h = (0x9747b28c ^ len(data)) & 0xffffffff
    for i in range(len(data) // 4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
    t, rem = len(data) & ~3, len(data) % 4
    if rem == 3:
        h ^= data[t + 2] << 16
    if rem >= 2:
        h ^= data[t + 1] << 8
    if rem >= 1:
        h ^= data[t]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h
print((murmur2(sys.argv[1].encode()) & 0x7fffffff) % int(sys.argv[2]))
EOF
}

# kcat_at TOPIC PARTITION OFFSET FORMAT: one record, formatted, raw bytes.
kcat_at() {
    timeout 60 kcat -b "$bootstrap" -C -t "$1" -p "$2" -o "$3" -c 1 -e -q -D '' -f "$4" 2>/dev/null
}

# --- mailroomd ----------------------------------------------------------
mrt_start_daemon mailroomd

# --- status ---------------------------------------------------------------
expect_rc 0 "status --json" mr status --json
cp "$work/out" "$work/status.json"
bootstrap=$(json_field "$work/status.json" 'j["kafka"]["bootstrap"]')
[[ -n $bootstrap ]] || mrt_fail "status --json has no kafka.bootstrap"
want_embedded=$([[ $mode == embedded ]] && echo True || echo False)
got=$(json_field "$work/status.json" 'j["kafka"]["embedded"] is True')
[[ $got == "$want_embedded" ]] || mrt_fail "status .kafka.embedded: $got, expected $want_embedded"
if [[ $mode == kafka && $bootstrap != "$brokers" ]]; then
    mrt_fail "status .kafka.bootstrap is $bootstrap, expected the fixture's $brokers"
fi
got=$(json_field "$work/status.json" 'j["listeners"]')
[[ $got == "['$url']" ]] || mrt_fail "status .listeners: $got, expected ['$url']"
got=$(json_field "$work/status.json" 'j["version"]')
want=$("$MRD" --version | awk '{print $2}')
[[ $got == "$want" && -n $got ]] || mrt_fail "status .version: '$got', mailroomd --version says '$want'"
got=$(json_field "$work/status.json" 'j["protocol"]')
[[ $got == 1 ]] || mrt_fail "status .protocol: $got"
expect_rc 0 "status" mr status
grep -qF "listening: $url" "$work/out" || mrt_fail "status does not list $url"
if [[ $mode == embedded ]]; then
    grep -q "embedded, in memory" "$work/out" || mrt_fail "status does not say the cluster is embedded"
    grep -q "^WARNING:" "$work/out" || mrt_fail "status does not warn about the embedded cluster"
else
    grep -q "(external)" "$work/out" || mrt_fail "status does not say Kafka is external"
fi

# --- topics -----------------------------------------------------------------
T="cli-$mode-$$-$RANDOM"
# A line by default, as the other commands; JSON with --json.
if expect_rc 0 "topics create $T --partitions 3" mr topics create "$T" --partitions 3; then
    grep -q "^created topic $T: 3 partitions" "$work/out" || mrt_fail "topics create prints '$(cat "$work/out")', not 'created topic $T: 3 partitions...'"
    [[ $(wc -l <"$work/out") -eq 1 ]] || mrt_fail "topics create prints more than a line: $(cat "$work/out")"
fi
expect_rc 1 "topics create $T again" mr topics create "$T" --partitions 3
grep -q "already exists" "$work/err" || mrt_fail "creating $T again does not say 'already exists': $(cat "$work/err")"
[[ -s $work/out ]] && mrt_fail "a refused topics create prints on stdout: $(cat "$work/out")"
if expect_rc 0 "topics create $T-json --json" mr topics create "$T-json" --partitions 2 --json; then
    [[ $(json_field "$work/out" 'j["ok"] is True and j["topic"]') == "$T-json" ]] || mrt_fail "topics create --json: $(cat "$work/out")"
    [[ $(json_field "$work/out" 'j["partitions"]') == 2 ]] || mrt_fail "topics create --json has no partitions 2: $(cat "$work/out")"
fi
expect_rc 1 "topics create $T-json again --json" mr topics create "$T-json" --json
[[ $(json_field "$work/out" 'j["error"]') == MR_EEXIST ]] || mrt_fail "a refused topics create --json: $(cat "$work/out")"
# On real Kafka, `topics create` answers once every partition is made
# (Kafka makes them one by one after it says the topic exists): a
# ListOffsets of all 16 right after must find every one. Without the wait
# kcat failed this 5 times in 5 ("Unknown partition").
if [[ $mode == kafka ]] && expect_rc 0 "topics create $T-ready --partitions 16" mr topics create "$T-ready" --partitions 16; then
    q=()
    for p in $(seq 0 15); do q+=(-t "$T-ready:$p:-1"); done
    timeout 60 kcat -b "$bootstrap" -Q "${q[@]}" >"$work/ready.out" 2>&1
    [[ $(grep -c "offset" "$work/ready.out") -eq 16 ]] && ! grep -qi "error" "$work/ready.out" ||
        mrt_fail "right after topics create, not every partition answers: $(head -c 500 "$work/ready.out")"
fi
expect_rc 0 "topics list" mr topics list
grep -qP "^\Q$T\E\t3 partitions$" "$work/out" || mrt_fail "topics list does not show '$T<TAB>3 partitions': $(cat "$work/out")"
expect_rc 0 "topics describe $T" mr topics describe "$T"
grep -q "^topic $T: 3 partitions" "$work/out" || mrt_fail "topics describe: $(head -1 "$work/out")"
[[ $(grep -c "^  partition [0-2] leader" "$work/out") -eq 3 ]] || mrt_fail "topics describe does not list 3 partitions: $(cat "$work/out")"
expect_rc 0 "topics describe $T --json" mr topics describe "$T" --json
[[ $(json_field "$work/out" 'j["partition_count"]') == 3 ]] || mrt_fail "topics describe --json: $(cat "$work/out")"
expect_rc 1 "topics describe of a missing topic" mr topics describe "$T-missing"
grep -q "does not exist" "$work/err" || mrt_fail "describe of a missing topic does not say so: $(cat "$work/err")"

# --- publish ------------------------------------------------------------------
# check_ack FILE TOPIC KEY: one --json ack line with every field; prints
# "PARTITION OFFSET ID".
check_ack() {
    python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 1, "expected one ack line, got %d" % len(lines)
a = json.loads(lines[0])
for f, t in (("status", str), ("topic", str), ("partition", int),
             ("offset", int), ("id", str), ("duplicate", bool)):
    assert isinstance(a.get(f), t), "field %s missing or not %s: %r" % (f, t.__name__, a)
assert a["status"] == "ok", a
assert a["topic"] == sys.argv[2], a
assert a["offset"] >= 0 and a["partition"] >= 0, a
print(a["partition"], a["offset"], a["id"], a["duplicate"])
EOF
}

# From an argument.
if expect_rc 0 "publish from an argument" mr publish "$T/key-1" "hello, mailroom" --json; then
    if read -r p o id dup < <(check_ack "$work/out" "$T" key-1); then
        [[ $p == "$(partition_of key-1 3)" ]] || mrt_fail "key-1 went to partition $p, Kafka's partitioner says $(partition_of key-1 3)"
        [[ ${#id} -eq 36 ]] || mrt_fail "assigned id '$id' is not a UUID"
        [[ $dup == False ]] || mrt_fail "a first publish is a duplicate"
        got=$(kcat_at "$T" "$p" "$o" '%k|%s')
        [[ $got == "key-1|hello, mailroom" ]] || mrt_fail "kcat reads '$got'"
    else
        mrt_fail "publish --json output: $(cat "$work/out")"
    fi
fi

# From a binary file with zero bytes, compared byte for byte.
{
    printf 'head\0\0\0middle\0'
    head -c 70000 /dev/urandom
    printf '\0tail\0'
} >"$work/payload.bin"
if expect_rc 0 "publish a binary file" mr publish "$T/bin" -f "$work/payload.bin" --json; then
    if read -r p o id dup < <(check_ack "$work/out" "$T" bin); then
        kcat_at "$T" "$p" "$o" '%s' >"$work/payload.back"
        cmp -s "$work/payload.bin" "$work/payload.back" || mrt_fail "the binary file read back differs ($(stat -c %s "$work/payload.back") bytes, sent $(stat -c %s "$work/payload.bin"))"
        [[ $(kcat_at "$T" "$p" "$o" '%K') == 3 ]] || mrt_fail "the binary file's key is not 'bin'"
    else
        mrt_fail "publish -f --json output: $(cat "$work/out")"
    fi
fi

# From stdin.
printf 'from\0stdin\n' >"$work/stdin.bin"
if expect_rc 0 "publish from stdin" sh -c '"$1" --url "$2" publish "$3/in" --json <"$4"' _ "$MR" "$url" "$T" "$work/stdin.bin"; then
    if read -r p o id dup < <(check_ack "$work/out" "$T" in); then
        kcat_at "$T" "$p" "$o" '%s' >"$work/stdin.back"
        cmp -s "$work/stdin.bin" "$work/stdin.back" || mrt_fail "stdin read back differs"
    else
        mrt_fail "publish from stdin output: $(cat "$work/out")"
    fi
fi

# --lines with --key-delim, in batches of 2 (several requests in flight):
# every line is one record, and the acks come one per line, in the order of
# the lines (the CLI numbers refused messages by that order).
printf 'alpha:one\nbeta:two\ngamma:three\ndelta:\n:empty-key\nno-delimiter\n' >"$work/lines.txt"
if expect_rc 0 "publish --lines --key-delim : --batch 2" mr publish "$T" --lines --key-delim : --batch 2 -f "$work/lines.txt" --json; then
    python3 - "$work/out" "$T" >"$work/lines.acks" <<'EOF' || mrt_fail "--lines acks: $(cat "$work/out")"
import json, sys
acks = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(acks) == 6, "6 lines, %d acks" % len(acks)
for a in acks:
    assert a["status"] == "ok" and a["topic"] == sys.argv[2], a
    print(a["partition"], a["offset"])
EOF
    : >"$work/lines.want"
    while IFS= read -r line; do
        case "$line" in
            *:*)
                key=${line%%:*}
                echo "$(partition_of "$key" 3)|${#key}|$key|${line#*:}" >>"$work/lines.want"
                ;;
            *) echo "?|-1||$line" >>"$work/lines.want" ;; # keyless
        esac
    done <"$work/lines.txt"
    : >"$work/lines.got"
    while read -r p o; do
        echo "$p|$(kcat_at "$T" "$p" "$o" '%K|%k|%s')" >>"$work/lines.got"
    done <"$work/lines.acks"
    # The keyless line may go to any partition.
    sed -i 's/^[0-9]*|-1|/?|-1|/' "$work/lines.got"
    if ! diff <(sort "$work/lines.want") <(sort "$work/lines.got") >"$work/diff"; then
        mrt_fail "--lines records (partition|keylen|key|payload) differ from the lines: $(cat "$work/diff")"
    elif ! cmp -s "$work/lines.want" "$work/lines.got"; then
        mrt_fail "--lines --json: the acks are not in the order of the lines: lines $(tr '\n' ' ' <"$work/lines.want"), acks $(tr '\n' ' ' <"$work/lines.got")"
    fi
fi

# Many requests in flight answer out of turn (mailroomd acks a request when
# all its partitions have): their lines are printed when their turn comes.
# Line i's ack names its key's partition, ids (UUIDv7, made in line order)
# rise, and each partition's offsets rise.
python3 -c '
for i in range(3000):
    print("k%d:line-%d" % (i % 10, i))' >"$work/many.txt"
if expect_rc 0 "publish --lines --batch 20 of 3000 lines" mr publish "$T" --lines --key-delim : --batch 20 -f "$work/many.txt"; then
    for k in 0 1 2 3 4 5 6 7 8 9; do
        echo "k$k $(partition_of "k$k" 3)"
    done >"$work/many.parts"
    python3 - "$work/out" "$T" "$work/many.parts" <<'EOF' || mrt_fail "--lines --batch 20: the acks are not the lines' in their order"
import re, sys
part = dict(l.split() for l in open(sys.argv[3]))
acks = [l.rstrip("\n") for l in open(sys.argv[1])]
assert len(acks) == 3000, "3000 lines, %d ack lines" % len(acks)
last_id, last_off = "", {}
for i, a in enumerate(acks):
    m = re.fullmatch(re.escape(sys.argv[2]) + r"/(\d+)@(\d+) id=(\S+)", a)
    assert m, "ack line %d: %r" % (i, a)
    p, o, id = m.group(1), int(m.group(2)), m.group(3)
    assert p == part["k%d" % (i % 10)], "ack line %d: partition %s: %r" % (i, p, a)
    assert id > last_id, "ack line %d: id %s after %s" % (i, id, last_id)
    assert o > last_off.get(p, -1), "ack line %d: offset %d after %d" % (i, o, last_off[p])
    last_id, last_off[p] = id, o
EOF
fi

# Headers, envelope options and --id; the same id again is a duplicate.
if expect_rc 0 "publish with -H, --id and the envelope options" \
    mr publish "$T/h" "with headers" -H x-a=1 -H 'x-b=two=2' --id "cli-id-$$" \
    --type t.cli --source src-cli --content-type text/plain \
    --reply-to "$T/replies" --correlation-id corr-cli --json; then
    if read -r p o id dup < <(check_ack "$work/out" "$T" h); then
        [[ $id == "cli-id-$$" ]] || mrt_fail "--id: the ack's id is '$id'"
        got=$(kcat_at "$T" "$p" "$o" '%h')
        for h in "ce_specversion=1.0" "ce_id=cli-id-$$" "ce_source=src-cli" \
            "ce_type=t.cli" "content-type=text/plain" "mr_reply_to=$T/replies" \
            "mr_correlation_id=corr-cli" "x-a=1" "x-b=two=2"; do
            [[ ",$got," == *",$h,"* ]] || mrt_fail "header $h missing from '$got'"
        done
        if expect_rc 0 "publish the same --id again" mr publish "$T/h" "again" --id "cli-id-$$" --json; then
            read -r p2 o2 id2 dup2 < <(check_ack "$work/out" "$T" h)
            [[ $dup2 == True && $p2 == "$p" && $o2 == "$o" ]] || mrt_fail "a republished id: '$p2 $o2 $dup2', expected '$p $o True'"
        fi
    else
        mrt_fail "publish with headers output: $(cat "$work/out")"
    fi
fi

# --- record size: the topic's max.message.bytes --------------------------------
# On real Kafka, `topics create` gives a topic room for any record mailroomd's
# producer sends (producer.message_max_bytes, 16 MiB, plus the record batch's
# 61-byte header) unless told otherwise; Kafka's own default is about 1 MiB,
# which a 1 MiB file in its envelope exceeds. The embedded cluster takes no
# topic configuration and has no such limit.
if [[ $mode == kafka ]]; then
    B="$T-invoices"
    expect_rc 0 "topics create $B" mr topics create "$B"
    grep -q "max.message.bytes=16777277" "$work/out" || mrt_fail "topics create $B does not say max.message.bytes=16777277: $(cat "$work/out")"
    expect_rc 0 "topics describe $B --json" mr topics describe "$B" --json
    got=$(json_field "$work/out" 'j["config"].get("max.message.bytes")')
    [[ $got == 16777277 ]] || mrt_fail "$B's max.message.bytes is $got, expected 16777277"
    head -c 1048576 /dev/urandom >"$work/invoice.pdf"
    # As README.md: publish -f invoice.pdf --content-type application/pdf invoices/7
    if expect_rc 0 "publish -f of a 1 MiB file (README)" mr publish -f "$work/invoice.pdf" --content-type application/pdf "$B/7" --json; then
        if read -r p o id dup < <(check_ack "$work/out" "$B" 7); then
            kcat_at "$B" "$p" "$o" '%s' >"$work/invoice.back"
            cmp -s "$work/invoice.pdf" "$work/invoice.back" || mrt_fail "the 1 MiB file read back differs ($(stat -c %s "$work/invoice.back") bytes)"
        else
            mrt_fail "publish -f of 1 MiB: $(cat "$work/out")"
        fi
    fi
    S="$T-small"
    expect_rc 0 "topics create $S --config max.message.bytes=2000" mr topics create "$S" --partitions 1 --config max.message.bytes=2000
    expect_rc 0 "topics describe $S --json" mr topics describe "$S" --json
    got=$(json_field "$work/out" 'j["config"].get("max.message.bytes")')
    [[ $got == 2000 ]] || mrt_fail "$S's max.message.bytes is $got: the user's --config was not kept"
    head -c 5000 /dev/urandom >"$work/5k.bin"
    expect_rc 1 "publish 5000 bytes to a topic of max.message.bytes=2000" mr publish -f "$work/5k.bin" "$S/k"
    grep -q "MR_ETOOBIG" "$work/err" || mrt_fail "a record over the topic's limit is not MR_ETOOBIG: $(cat "$work/err")"
    grep -q "topic's max.message.bytes" "$work/err" || mrt_fail "a record over the topic's limit does not name the topic's max.message.bytes: $(cat "$work/err")"
fi

# --- exit codes (cli/cli.h: 0 ok, 1 refused, 2 usage, 3 unreachable,
# 4 input unreadable) -------------------------------------------------------
expect_rc 2 "publish without an address" mr publish
expect_rc 2 "publish with an unknown option" mr publish --no-such-option "$T" x
expect_rc 2 "an unknown global option" "$MR" --no-such-option status
expect_rc 2 "an unknown command" mr frobnicate
expect_rc 2 "no command" "$MR" --url "$url"
expect_rc 2 "--timeout 0" "$MR" --url "$url" --timeout 0 status
expect_rc 2 "a payload argument and -f" mr publish "$T" x -f "$work/payload.bin"
expect_rc 2 "--lines with --id" mr publish "$T" --lines --id x -f "$work/lines.txt"
expect_rc 2 "--key-delim of two characters" mr publish "$T" --lines --key-delim ab -f "$work/lines.txt"
expect_rc 2 "a header without =" mr publish "$T" x -H novalue
expect_rc 2 "topics without a subcommand" mr topics
expect_rc 4 "publish -f of a missing file" mr publish "$T" -f "$work/no-such-file"

nobody="ipc://$work/nobody-listens.sock"
expect_rc 3 "publish with nothing listening" timeout 60 "$MR" --url "$nobody" publish "$T" x
grep -q "$nobody" "$work/err" || mrt_fail "the unreachable error does not name the URL: $(cat "$work/err")"
expect_rc 3 "status with nothing listening" timeout 60 "$MR" --url "$nobody" status
expect_rc 3 "topics list with nothing listening" timeout 60 "$MR" --url "$nobody" topics list
expect_rc 3 "admin with nothing listening" timeout 60 "$MR" --url "$nobody" admin '{"op":"topics.list"}'
expect_rc 3 "publish --lines with nothing listening" timeout 60 "$MR" --url "$nobody" publish "$T" --lines -f "$work/lines.txt"

# A message mailroomd refuses: exit 1, and the reason on stderr.
expect_rc 1 "a message that sets ce_id as a header" mr publish "$T" x -H ce_id=mine
grep -q "ce_id" "$work/err" || mrt_fail "the refusal does not say why: $(cat "$work/err")"

# An address whose topic is not a valid Kafka topic name is a bad argument:
# usage (2), whatever the input mode, and stderr says what is wrong.
expect_rc 2 "publish to 'bad topic'" mr publish "bad topic" x
grep -qi "topic" "$work/err" || mrt_fail "publish to 'bad topic' does not say the topic is invalid: $(cat "$work/err")"
expect_rc 2 "publish --lines to 'bad topic'" mr publish "bad topic" --lines -f "$work/lines.txt"
grep -qi "topic" "$work/err" || mrt_fail "publish --lines to 'bad topic' does not say the topic is invalid: $(cat "$work/err")"

# --- mailroomd is still well -----------------------------------------------
expect_rc 0 "status at the end" mr status
mrt_stop_daemon
mrt_finish 50 "$work/mailroomd.log"
