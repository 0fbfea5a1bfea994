#!/usr/bin/env bash
# Consumer lag (issue #10, step 1): `mailroom lag` over a topic of 2
# partitions holding N records published by `mailroom publish`, with an
# external group (kcat -G, K records consumed and committed as it exits)
# and a group mailroomd serves (`mailroom consume -n M`): end, committed
# and lag per partition, exactly; time lag at least the time waited where
# the group is behind, 0 where it is not; every topic of a group; the
# table and --watch's plain lines; then the bad inputs: a topic that does
# not exist (not created by asking), bad flags.
#
# Usage: lag_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need kcat python3
mrt_workdir lag

mrt_start_with_topics lag
N=20 K=7 M=5
KG="kc-$$" SG="sg-$$"

seq "$N" | mr publish --lines "$T" >/dev/null || mrt_fail "publish $N lines"

# An external group: kcat reads K records and commits them as it exits.
timeout 60 kcat -b "$bootstrap" -G "$KG" -X auto.offset.reset=earliest \
    -c "$K" "$T" >"$work/kcat.out" 2>"$work/kcat.err" ||
    mrt_fail "kcat -G exits $?: $(tail -3 "$work/kcat.err")"
[[ $(wc -l <"$work/kcat.out") -eq $K ]] || mrt_fail "kcat read $(wc -l <"$work/kcat.out") records, want $K"

# check FILE GROUP TOPIC SUM_COMMITTED: every row of GROUP on TOPIC has
# lag = end - committed (or - start with no commit); the ends add up to N,
# the commits to SUM_COMMITTED.
check() {
    python3 - "$@" "$N" <<'PY'
import json, sys
f, g, t, want, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(f))
assert r["ok"], r
rows = [p for p in r["partitions"] if p["group"] == g and p["topic"] == t]
assert sorted(p["partition"] for p in rows) == [0, 1], rows
for p in rows:
    c = p["committed"]
    assert p["lag"] == p["end"] - (c if c is not None else p["start"]), p
    assert p["state"] == ("ok" if c is not None else "no_commit"), p
assert sum(p["end"] for p in rows) == n, rows
assert sum(p["committed"] or 0 for p in rows) == want, rows
assert sum(p["lag"] for p in rows) == n - want, rows
PY
}

# wait_for FILE GROUP SUM ARGS...: `mr lag --json ARGS` into FILE until
# GROUP's commits on T add up to SUM (30 s).
wait_for() {
    local f=$1 g=$2 sum=$3
    shift 3
    for _ in $(seq 150); do
        mr lag --json "$@" >"$f" 2>"$work/err" &&
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(sum(p["committed"] or 0 for p in r["partitions"] if p["group"]==sys.argv[2] and p["topic"]==sys.argv[3]) != int(sys.argv[4]))' \
                "$f" "$g" "$T" "$sum" && return 0
        sleep 0.2
    done
    return 1
}

wait_for "$work/k1.json" "$KG" "$K" --group "$KG" "$T" ||
    mrt_fail "kcat's group never showed $K committed: $(cat "$work/k1.json" "$work/err")"
t0=$(date +%s%3N)
check "$work/k1.json" "$KG" "$T" "$K" &&
    mrt_pass "an external group (kcat -G): end, committed and lag per partition" ||
    mrt_fail "kcat's group: $(cat "$work/k1.json")"
python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["groups"]; assert [(x["group"], x["served"], x["state"]) for x in g] == [(sys.argv[2], False, "ok")], g' \
    "$work/k1.json" "$KG" && mrt_pass "its group: not served, ok" ||
    mrt_fail "groups: $(cat "$work/k1.json")"

# Time lag: where it is behind, at least the time waited since it was
# first answered; 0 where it is not.
sleep 2
waited=$(($(date +%s%3N) - t0))
mr lag --json --group "$KG" "$T" >"$work/k2.json" || mrt_fail "lag exits $?"
python3 - "$work/k2.json" "$waited" <<'PY' && mrt_pass "time lag: >= ${waited} ms where behind, 0 where caught up" || mrt_fail "time lag: $(cat "$work/k2.json")"
import json, sys
r = json.load(open(sys.argv[1])); waited = int(sys.argv[2])
behind = [p for p in r["partitions"] if p["lag"] > 0]
assert behind, r
for p in r["partitions"]:
    if p["lag"] > 0:
        assert p["time_lag_ms"] >= waited, (p, waited)
    else:
        assert p["time_lag_ms"] == 0, p
    assert 0 <= p["age_ms"] < 60000, p
PY

# Every topic of the group: the one it committed on.
mr lag --json --group "$KG" >"$work/k3.json" || mrt_fail "lag --group exits $?"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert {p["topic"] for p in r["partitions"]} == {sys.argv[2]}, r' \
    "$work/k3.json" "$T" && mrt_pass "--group without a topic: the topics it committed on" ||
    mrt_fail "--group alone: $(cat "$work/k3.json")"

# A group mailroomd serves: listed without being asked about.
mr consume -g "$SG" -n "$M" --idle 30000 "$T" >"$work/consume.out" 2>&1 ||
    mrt_fail "consume -n $M exits $?: $(tail -3 "$work/consume.out")"
wait_for "$work/s1.json" "$SG" "$M" ||
    mrt_fail "the served group never showed $M committed: $(cat "$work/s1.json" "$work/err")"
check "$work/s1.json" "$SG" "$T" "$M" &&
    python3 -c 'import json,sys; g=[x for x in json.load(open(sys.argv[1]))["groups"] if x["group"]==sys.argv[2]]; assert g and g[0]["served"] and g[0]["state"]=="ok", g' \
        "$work/s1.json" "$SG" &&
    mrt_pass "a group mailroomd serves: listed, served, end, committed and lag" ||
    mrt_fail "served group: $(cat "$work/s1.json")"

mr status >"$work/status.txt" &&
    grep -q '^lag: *2 groups on 4 partitions, at most [0-9]* records behind' "$work/status.txt" &&
    mrt_pass "status: the lag monitor's line" ||
    mrt_fail "status: $(cat "$work/status.txt")"

# A group with no offsets: said so.
mr lag --json --group "none-$$" "$T" >"$work/n.json" || mrt_fail "lag exits $?"
python3 - "$work/n.json" "$N" <<'PY' && mrt_pass "a group with no offsets: no_offsets, each partition no_commit" || mrt_fail "no offsets: $(cat "$work/n.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert [g["state"] for g in r["groups"]] == ["no_offsets"], r
assert all(p["state"] == "no_commit" and p["committed"] is None for p in r["partitions"]), r
assert sum(p["lag"] for p in r["partitions"]) == int(sys.argv[2]), r
PY

# The table, and --watch's plain lines (not a terminal) until SIGINT.
mr lag --group "$KG" "$T" >"$work/table.txt" &&
    grep -q '^GROUP  *TOPIC  *PARTITION  *END  *COMMITTED  *LAG  *TIME LAG$' "$work/table.txt" &&
    [[ $(grep -c "^$KG  *$T " "$work/table.txt") -eq 2 ]] &&
    mrt_pass "the table" || mrt_fail "the table: $(cat "$work/table.txt")"
rc=0
timeout --preserve-status -s INT 2.5 "$MR" --url "$url" lag --watch \
    --group "$KG" "$T" >"$work/watch.txt" 2>&1 || rc=$?
[[ $rc -eq 0 && $(grep -c '^-- .*, every 1.0 s$' "$work/watch.txt") -ge 2 ]] &&
    ! grep -q $'\033' "$work/watch.txt" &&
    mrt_pass "--watch: a block of plain lines per refresh, Ctrl-C exits 0" ||
    mrt_fail "--watch exits $rc: $(cat "$work/watch.txt")"

# Bad input: a clear sentence and the exit code.
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
expect 1 "MR_ENOENT: topic 'nope-$$' does not exist" lag --group "$KG" "nope-$$"
expect 1 "MR_ENOENT: topic 'nope2-$$' does not exist" lag "nope2-$$"
expect 2 "unrecognized option" lag --bogus
expect 2 "one TOPIC at most" lag "$T" "$T"
expect 2 "invalid topic 'a/b'" lag a/b
expect 2 "group takes" lag --group '' "$T"
mr topics list | grep -q "nope-$$" && mrt_fail "asking created nope-$$" ||
    mrt_pass "a missing topic is not created by asking"

# SIGTERM: the monitor stops with the rest, exit 0.
mrt_stop_daemon

mrt_finish 30 "$log"
