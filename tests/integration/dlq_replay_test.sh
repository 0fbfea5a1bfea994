#!/usr/bin/env bash
# The dead-letter queue's write side (issue #9): `mailroom dlq replay` and
# `dlq purge`.
#   1. key K's two messages are rejected (quarantined), K's next two flow;
#      a dry run moves nothing; the replay sends them back to K, after what
#      K had then, in order, with mr_dlq_replays=1 and new ids <id>~r1,
#      consumed by the same group (not dropped as duplicates);
#   2. a second replay moves nothing (the state topic);
#   3. the rate holds: N records at R/s take at least (N-1)/R s (a lower
#      bound only); Ctrl-C stops after the chunk, exit 0, and a second run
#      resumes: each record once; the loop guard and --force;
#   4. purge hides a record from list (--all shows it);
#   5. bad input: exit codes, a clear sentence, nothing moved;
#   6. kill -9 of mailroomd during a replay, restarted, the replay run
#      again: every record replayed exactly once (counted by its derived id
#      in the target). On the embedded variant the cluster is
#      mailroom_mockd (a process of its own, so the data survives).
#
# Usage: dlq_replay_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom, mailroom_mockd),
#   MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
mrt_need kcat python3
mrt_workdir dlqreplay

mrt_start_with_topics dlqrp --dlq
G="g-$$"
# Records of a topic: "partition offset key ce_id mr_dlq_replays payload".
records() {
    timeout 60 kcat -b "$bootstrap" -C -t "$1" -e -q -f '%p %o %k %h\t%s\n' |
        python3 -c '
import sys
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        continue
    meta, _, payload = line.partition("\t")
    p, o, k, h = (meta.split(" ", 3) + [""])[:4]
    hs = dict(x.split("=", 1) for x in h.split(",") if "=" in x)
    print(p, o, k, hs.get("ce_id", "-"), hs.get("mr_dlq_replays", "-"), payload)
'
}
count() { records "$1" | wc -l; }

# 1. K's two are quarantined, K's next two flow.
mr publish --id "p1-$$" "$T/K" 'poison-1' >/dev/null || mrt_fail "publish"
mr publish --id "p2-$$" "$T/K" 'poison-2' >/dev/null || mrt_fail "publish"
mr consume -g "$G" --reject --nack-reason 'bad schema 42' -n 2 \
    --idle 30000 "$T" >/dev/null || mrt_fail "consume --reject exits $?"
for _ in $(seq 100); do
    n=$(mr dlq list --json "$D" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])')
    [[ ${n:-0} -ge 2 ]] && break
    sleep 0.2
done
[[ ${n:-0} -eq 2 ]] && mrt_pass "two quarantined" || mrt_fail "the dead-letter topic has ${n:-no} records, want 2"
mr publish "$T/K" 'next-1' >/dev/null && mr publish "$T/K" 'next-2' >/dev/null ||
    mrt_fail "publish next"
mr consume -g "$G" --json -n 2 --idle 30000 "$T" >"$work/next.json" ||
    mrt_fail "consume next exits $?"
python3 - "$work/next.json" <<'PY' && mrt_pass "K's next messages flow" || mrt_fail "K's next: $(cat "$work/next.json")"
import json, sys
ds = [json.loads(l) for l in open(sys.argv[1])]
assert [d["payload"] for d in ds] == ["next-1", "next-2"], ds
PY
before=$(count "$T")

mr dlq replay --dry-run "$D" >"$work/dry.txt" || mrt_fail "dry run exits $?"
grep -q '^dry run: 2 records would be replayed' "$work/dry.txt" &&
    [[ $(count "$T") -eq $before ]] && [[ $(mr dlq list --json "$D" | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])') -eq 2 ]] &&
    mrt_pass "a dry run moves nothing" || mrt_fail "dry run: $(cat "$work/dry.txt"), $(count "$T") records (had $before)"

mr dlq replay "$D" >"$work/r1.txt" 2>&1 || mrt_fail "replay exits $?: $(cat "$work/r1.txt")"
grep -q '^replayed 2 records' "$work/r1.txt" && mrt_pass "replay: 2 records" ||
    mrt_fail "replay said: $(cat "$work/r1.txt")"
mr consume -g "$G" --json -n 2 --idle 30000 "$T" >"$work/back.json" ||
    mrt_fail "consume the replayed exits $?"
python3 - "$work/back.json" "$work/next.json" "$$" <<'PY' && mrt_pass "back to K, after K's next, in order, mr_dlq_replays=1, ids <id>~r1" || mrt_fail "replayed: $(cat "$work/back.json")"
import json, sys
ds = [json.loads(l) for l in open(sys.argv[1])]
nx = [json.loads(l) for l in open(sys.argv[2])]
pid = sys.argv[3]
assert [d["payload"] for d in ds] == ["poison-1", "poison-2"], ds
assert [d["id"] for d in ds] == ["p1-%s~r1" % pid, "p2-%s~r1" % pid], ds
for d in ds:
    assert d["key"] == "K" and d["partition"] == nx[0]["partition"], d
    assert d["offset"] > nx[-1]["offset"], (d, nx)
    hs = dict((h[0], h[1]) for h in d["headers"])
    assert hs["mr_dlq_replays"] == "1", hs
    assert not any(n.startswith("mr_dlq_") and n != "mr_dlq_replays" for n in hs), hs
assert ds[0]["offset"] < ds[1]["offset"], ds
PY

# 2. Again: nothing moves.
before=$(count "$T")
mr dlq replay "$D" >"$work/r2.txt" 2>&1 || mrt_fail "second replay exits $?"
grep -q '^replayed 0 records' "$work/r2.txt" && [[ $(count "$T") -eq $before ]] &&
    mrt_pass "a second replay moves nothing" || mrt_fail "second replay: $(cat "$work/r2.txt")"
mr dlq list --json --all "$D" | python3 -c '
import json, sys
l = json.load(sys.stdin)
assert l["matched"] == 2 and l["states"]["replayed"] == 2, l' &&
    mrt_pass "list: replayed records left out, --all shows them" || mrt_fail "list --all"

# 3. The rate: N records written straight into the dead-letter topic, each
# its own original position, replayed to another topic (--to).
N=12 R=5
RT="$T.rate"
mr topics create "$RT" --partitions 2 >/dev/null || mrt_fail "topics create $RT"

python3 - "$D" "$T" "$N" "$bootstrap" <<'PY' || mrt_fail "kcat: the rate's records"
import subprocess, sys
D, T, N, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for i in range(N):
    subprocess.run(["kcat", "-P", "-b", b, "-t", D, "-p", "1", "-k", "R",
                    "-H", "mr_dlq_topic=" + T, "-H", "mr_dlq_partition=1",
                    "-H", "mr_dlq_offset=%d" % (100000 + i),
                    "-H", "ce_id=rate-%d" % i], input=b"rate-%d" % i,
                   check=True, timeout=60)
PY
t0=$(date +%s%N)
mr dlq replay --rate "$R/s" --to "$RT" --key R "$D" >"$work/rate.out" 2>&1 || mrt_fail "replay --rate exits $?"
t1=$(date +%s%N)
moved=$(count "$RT")
ms=$(((t1 - t0) / 1000000))
[[ $moved -eq $N ]] && [[ $((ms * R)) -ge $(((N - 1) * 1000)) ]] &&
    mrt_pass "the rate holds: $N records at $R/s to --to $RT took $ms ms (at least $(((N - 1) * 1000 / R)))" ||
    mrt_fail "rate: $moved records (want $N) in $ms ms (want >= $(((N - 1) * 1000 / R))): $(cat "$work/rate.out")"

# 3b. Ctrl-C stops after the chunk (exit 0); run again, it resumes: each
# record once.
CT="$T.cancel"
mr topics create "$CT" --partitions 2 >/dev/null || mrt_fail "topics create $CT"
python3 - "$D" "$T" "$N" "$bootstrap" <<'PY' || mrt_fail "kcat: the cancel's records"
import subprocess, sys
D, T, N, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for i in range(N):
    subprocess.run(["kcat", "-P", "-b", b, "-t", D, "-p", "1", "-k", "C",
                    "-H", "mr_dlq_topic=" + T, "-H", "mr_dlq_partition=1",
                    "-H", "mr_dlq_offset=%d" % (200000 + i),
                    "-H", "ce_id=cancel-%d" % i], input=b"cancel-%d" % i,
                   check=True, timeout=60)
PY
timeout 120 "$MR" --url "$url" dlq replay --rate 4 --to "$CT" --key C "$D" >"$work/c1.out" 2>&1 &
cli=$!
sleep 1.5
kill -INT "$cli"
rc=0
wait "$cli" || rc=$?
first=$(count "$CT")
mr dlq replay --to "$CT" --key C "$D" >"$work/c2.out" 2>&1 || mrt_fail "the resumed replay exits $?"
records "$CT" | cut -d' ' -f4 | sort | uniq -c | awk '$1 != 1' >"$work/c.dups"
[[ $rc -eq 0 ]] && grep -q '^stopped after' "$work/c1.out" && [[ $first -gt 0 && $first -lt $N ]] &&
    [[ $(count "$CT") -eq $N ]] && [[ ! -s "$work/c.dups" ]] &&
    mrt_pass "Ctrl-C stopped after $first of $N (exit 0); run again, the rest, each once" ||
    mrt_fail "cancel: exit $rc, $first then $(count "$CT") of $N: $(cat "$work/c1.out" "$work/c2.out" "$work/c.dups")"

# 3c. The loop guard: a record replayed 3 times before is skipped, said,
# unless --force; --force replays it as the 4th.
LT="$T.loop"
mr topics create "$LT" --partitions 2 >/dev/null || mrt_fail "topics create $LT"
printf 'looping' | timeout 60 kcat -P -b "$bootstrap" -t "$D" -p 0 -k L \
    -H "mr_dlq_topic=$T" -H mr_dlq_partition=0 -H mr_dlq_offset=300000 \
    -H mr_dlq_replays=3 -H "ce_id=loop-1~r3" || mrt_fail "kcat: the loop's record"
mr dlq replay --to "$LT" --key L "$D" >"$work/l1.out" 2>"$work/l1.err" ||
    mrt_fail "replay of a looping record exits $?"
[[ $(count "$LT") -eq 0 ]] && grep -q 'loop guard' "$work/l1.err" &&
    mrt_pass "the loop guard skips a record replayed 3 times, and says so" ||
    mrt_fail "loop guard: $(count "$LT") moved: $(cat "$work/l1.out" "$work/l1.err")"
mr dlq replay --force --to "$LT" --key L "$D" >/dev/null 2>&1 || mrt_fail "replay --force exits $?"
[[ $(records "$LT" | cut -d' ' -f4,5) == "loop-1~r4 4" ]] &&
    mrt_pass "--force replays it: id loop-1~r4, mr_dlq_replays=4" ||
    mrt_fail "--force: $(records "$LT")"

# 4. Purge hides it.
mr publish "$T/P" 'purge-me' >/dev/null || mrt_fail "publish P"
mr consume -g "$G" --reject -n 1 --idle 30000 "$T" >/dev/null || mrt_fail "reject P"
for _ in $(seq 100); do
    n=$(mr dlq list --json --key P "$D" | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])')
    [[ ${n:-0} -ge 1 ]] && break
    sleep 0.2
done
mr dlq purge --dry-run --key P "$D" >"$work/pd.txt" &&
    grep -q 'would resolve 1 records' "$work/pd.txt" &&
    [[ $(mr dlq list --json --key P "$D" | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])') -eq 1 ]] &&
    mrt_pass "purge --dry-run resolves nothing" || mrt_fail "purge --dry-run: $(cat "$work/pd.txt")"
mr dlq purge --json --key P "$D" >"$work/p.json" &&
    [[ $(mr dlq list --json --key P "$D" | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])') -eq 0 ]] &&
    mrt_pass "purge hides it from list" || mrt_fail "purge: $(cat "$work/p.json")"
# Every record of the dead-letter topic is now replayed or resolved: on
# real Kafka, DeleteRecords frees them all; the embedded cluster has none.
all=$(mr dlq list --json --all --key P "$D" | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])')
python3 - "$work/p.json" "$mode" "$all" <<'PY' && mrt_pass "purge: resolved 1, DeleteRecords as the cluster allows, list --all after it" || mrt_fail "purge: $(cat "$work/p.json"), list --all matched $all"
import json, sys
r = json.loads(open(sys.argv[1]).readline())
mode, allm = sys.argv[2], int(sys.argv[3])
assert r["resolved"] == 1 and r["done"], r
if mode == "embedded":
    assert r["delete_records"].startswith("skipped"), r
    assert allm == 1, allm
else:
    assert r["delete_records"] == "done", r
    assert sorted(d["partition"] for d in r["deleted"]) == [0, 1], r
    assert allm == 0, allm
PY
before=$(count "$T")
mr dlq replay --key P "$D" >/dev/null 2>&1
[[ $(count "$T") -eq $before ]] && mrt_pass "a resolved record is not replayed" ||
    mrt_fail "a resolved record was replayed"

# 5. Bad input.
mr publish "$T/B" 'bad-input' >/dev/null && mr consume -g "$G" --reject -n 1 --idle 30000 "$T" >/dev/null ||
    mrt_fail "reject B"
sleep 1
before=$(count "$T")
expect() { # CODE PATTERN CMD...
    local want=$1 pat=$2 rc=0
    shift 2
    mr "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ $rc -eq $want ]] && grep -q -- "$pat" "$work/err"; then
        mrt_pass "$* exits $want: $(head -1 "$work/err")"
    else
        mrt_fail "$* exits $rc (want $want): $(cat "$work/err")"
    fi
}
expect 1 "MR_ENOENT: no record of $D has fingerprint 0123456789abcdef" dlq replay --fingerprint 0123456789abcdef "$D"
expect 1 "MR_ENOENT: no record of $D has fingerprint" dlq purge --fingerprint 0123456789abcdef "$D"
expect 1 "MR_EINVAL: $D has no record at 0@99999" dlq replay --offset 0@99999 "$D"
expect 1 "MR_EINVAL: $D has no record at 7@0" dlq purge --offset 7@0 "$D"
expect 1 "MR_ENOENT: no topic nope-$$.dlq" dlq replay "nope-$$.dlq"
expect 1 "MR_ENOENT: the replay target nope-$$ does not exist" dlq replay --to "nope-$$" "$D"
expect 2 "offset and filters conflict" dlq replay --offset 0@0 --key B "$D"
expect 2 "rate is 1..10000" dlq replay --rate 10001 "$D"
expect 2 "rate is 1..10000" dlq replay --rate 0 "$D"
expect 2 "P@O" dlq replay --offset 12 "$D"
[[ $(count "$T") -eq $before ]] && mrt_pass "bad input moved nothing" ||
    mrt_fail "bad input moved $(($(count "$T") - before)) records"
mr topics list | grep -q "nope-$$" && mrt_fail "asking created nope-$$" ||
    mrt_pass "a missing topic or target is not created"
mrt_stop_daemon

# 6. kill -9 during a replay.
KT="dlqrk-$mode-$$"
KD="$KT.dlq"
M=40
if [[ $mode == embedded ]]; then
    cluster_start embedded "$work" "$KT:2" "$KD:2" "$KD.state:1" || exit 1
    [[ -n $cluster__mockd_pid ]] && mrt_track "$cluster__mockd_pid"
    brokers=$BROKERS
fi
bootstrap=$brokers
mrt_start_daemon killed
if [[ $mode == kafka ]]; then
    mr topics create "$KT" --partitions 2 >/dev/null || mrt_fail "topics create $KT"
    mr topics create "$KD" --partitions 2 >/dev/null || mrt_fail "topics create $KD"
fi
python3 - "$KD" "$KT" "$M" "$bootstrap" <<'PY' || mrt_fail "kcat: the kill test's records"
import subprocess, sys
D, T, M, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# One kcat per record: each its own ce_id and original offset.
for i in range(M):
    subprocess.run(["kcat", "-P", "-b", b, "-t", D, "-k", "k%d" % (i % 4),
                    "-H", "mr_dlq_topic=" + T, "-H", "mr_dlq_partition=0",
                    "-H", "mr_dlq_offset=%d" % i, "-H", "ce_id=kill-%d" % i],
                   input=b"kill-%d" % i, check=True, timeout=60)
PY
kills=0
for attempt in 1 2 3 4 5 6; do
    timeout 300 "$MR" --url "$url" --timeout 10000 dlq replay --rate 10 --json "$KD" >>"$work/kill.json" 2>>"$work/kill.err" &
    cli=$!
    if [[ $kills -lt 2 ]]; then
        sleep "1.$((RANDOM % 9))"
        kill -9 "$dpid"
        kills=$((kills + 1))
        wait "$cli"
        mrt_start_daemon killed
        continue
    fi
    wait "$cli" && break
done
[[ $kills -eq 2 ]] && mrt_pass "mailroomd killed -9 twice during the replay" || mrt_fail "kills: $kills"
records "$KT" >"$work/kt.txt"
python3 - "$work/kt.txt" "$M" <<'PY' && mrt_pass "every record replayed exactly once across the kills" || mrt_fail "after the kills: $(cut -d' ' -f4 "$work/kt.txt" | sort | uniq -c | sort -rn | head -5 | tr '\n' ' ')"
import collections, sys
M = int(sys.argv[2])
ids = collections.Counter(l.split(" ")[3] for l in open(sys.argv[1]) if l.strip())
want = {"kill-%d~r1" % i for i in range(M)}
assert set(ids) == want, (sorted(set(ids) ^ want))[:10]
assert all(ids[i] == 1 for i in want), [i for i in want if ids[i] != 1]
PY
mrt_stop_daemon

mrt_finish 30 "$log"
