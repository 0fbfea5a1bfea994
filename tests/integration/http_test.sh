#!/usr/bin/env bash
# The HTTP API (docs/HTTP.md), with curl and examples/python: mailroomd
# with an HTTP listener on a free loopback port and a token file. 50
# messages published as two JSON batches (10 keys; an object, a number and
# bytes as values; headers; an id) and three in raw mode (CloudEvents'
# binary mode: ce-* and mr-* headers, Content-Type, a percent-encoded
# key): every ack has a position, ids are distinct, a key keeps its
# partition and its order. examples/python/consume.py consumes and acks
# them all, each key in publish order; a new session of its group gets
# nothing more; another group reads them back with their headers; a nack
# comes back as attempt 2; settle's answers; keys and values that are not
# text; a batch with one message too big (its status, every ack); lag 0
# and the records read back. Every mutation route is 401 without the token
# or with a wrong one, and so is a read (/metrics too); /healthz and
# /readyz are open, and /readyz is 503 naming a group just subscribed
# until it has joined (its assignment), then 200. Bad input is a 4xx with a JSON error naming the
# problem, writes nothing, and mailroomd serves on.
# Then: mailroomd with no token (mutations 403, reads open), one that
# makes its token file (mode 0600) and ends an idle session, and one that
# refuses to listen beyond loopback without a token.
#
# Usage: http_test.sh embedded|kafka
# Environment: MR_BINARY_DIR (mailroomd, mailroom), MR_SOURCE_DIR,
# MR_KAFKA_DIR.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode "$@"
mrt_binaries
mrt_need curl python3
mrt_workdir http
src=${MR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PYDIR="$src/examples/python"
[[ -f $PYDIR/consume.py ]] || {
    echo "FAIL: no $PYDIR/consume.py"
    exit 1
}
# mailroomd runs here: anything it writes by a relative path lands in $work.
cd "$work" || exit 1
# mailroomd reads MAILROOM_* variables as settings: none from the caller's.
unset MAILROOM_HTTP_LISTEN MAILROOM_HTTP_TOKEN MAILROOM_HTTP_TOKEN_FILE

# free_port: a loopback TCP port nothing listens on (now).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_healthz BASE: GET BASE/healthz answers 200 within 30 s.
wait_healthz() {
    for _ in $(seq 150); do
        [[ $(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$1/healthz") == 200 ]] &&
            return 0
        sleep 0.2
    done
    return 1
}

# req METHOD PATH [CURL_ARGS...]: the request to $H; the answer's body in
# $work/body, its headers in $work/hdr; prints the status (000: none).
req() {
    local m=$1 p=$2
    shift 2
    : >"$work/body"
    : >"$work/hdr"
    curl -s --max-time 30 -o "$work/body" -D "$work/hdr" \
        -w '%{http_code}' -X "$m" "$@" "$H$p"
}

# err_body [PATTERN]: $work/body is {"ok": false, "error": "MR_...",
# "message": "..."} with PATTERN (a case-insensitive regex) in the message,
# and $work/hdr says Content-Type: application/json.
err_body() {
    python3 - "$work/body" "$work/hdr" "${1:-}" <<'PY'
import json, re, sys
body, hdr, pat = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(body))
assert r.get("ok") is False, r
assert isinstance(r.get("error"), str) and re.fullmatch(r"MR_[A-Z]+", r["error"]), r
assert isinstance(r.get("message"), str) and r["message"], r
if pat:
    assert re.search(pat, r["message"], re.I), ("message does not name", pat, r)
h = open(hdr, encoding="latin-1").read()
assert re.search(r"^content-type:\s*application/json", h, re.I | re.M), h
PY
}

# expect_err STATUS PATTERN WHAT METHOD PATH [CURL_ARGS...]: the request
# is answered STATUS with an error body naming PATTERN (see err_body).
expect_err() {
    local want=$1 pat=$2 what=$3 s
    shift 3
    s=$(req "$@")
    if [[ $s == "$want" ]] && err_body "$pat" 2>"$work/why"; then
        mrt_pass "$what: $want $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["error"], "\"" + r["message"][:120] + "\"")' "$work/body" 2>/dev/null)"
    else
        mrt_fail "$what ($1 $2): got $s, want $want: $(head -c 400 "$work/body") $(tail -1 "$work/why" 2>/dev/null)"
    fi
}

# py_checks WHAT SECONDS ARGS...: python3 - ARGS with the script on stdin,
# bounded; each line "ok TEXT" or "fail TEXT" it prints is a check, and an
# exit other than 0 a failed check WHAT with its stderr. Mailroom() finds
# the token in $MAILROOM_HTTP_TOKEN_FILE: set for python alone, since
# mailroomd reads MAILROOM_* variables as settings (http.token_file).
py_checks() {
    local what=$1 secs=$2 rc=0 line
    shift 2
    MAILROOM_HTTP_TOKEN_FILE="$work/token" timeout -k 5 "$secs" \
        python3 - "$@" >"$work/py.out" 2>"$work/py.err" || rc=$?
    while IFS= read -r line; do
        case $line in
            "ok "*) mrt_pass "${line#ok }" ;;
            "fail "*) mrt_fail "${line#fail }" ;;
        esac
    done <"$work/py.out"
    [[ $rc -eq 0 ]] || mrt_fail "$what: python exits $rc: $(tail -5 "$work/py.err")"
}

# The token, in a file of mode 0600 as mailroomd makes one.
TOKEN="tok-$$-$RANDOM$RANDOM"
(umask 077 && printf '%s\n' "$TOKEN" >"$work/token")
A=(-H "Authorization: Bearer $TOKEN")
J=(-H 'Content-Type: application/json')

PORT=$(free_port)
H="http://127.0.0.1:$PORT"
# A record over 10000 bytes fails alone (MR_ETOOBIG): a batch's partial
# failure.
mrt_start_daemon mailroomd --set "http.listen=$H" \
    --set "http.token_file=$work/token" --set http.max_body_bytes=65536 \
    --set producer.message_max_bytes=10000
mr() { timeout 120 "$MR" --url "$url" "$@"; }
if wait_healthz "$H"; then
    mrt_pass "GET /healthz answers 200"
else
    mrt_fail "GET /healthz never answered 200 on $H"
    mrt_finish 40 "$log"
fi

T="http-$mode-$$"   # the main topic, 2 partitions
NT="$T-nack"        # the nack's, 1 partition
Z="$T-tok"          # the token checks' scratch topic, and its DLQ
BT="$T-bad"         # bad input goes here: nothing may be written to it
YT="$T-bytes"       # keys and values that are not text; a partial failure
G="http-g-$$" G2="http-g2-$$" GN="http-gn-$$" GZ="http-gz-$$" GY="http-gy-$$"
GR="http-gr-$$"     # /readyz's: a group that has not joined yet
mr topics create "$T" --partitions 2 >/dev/null || mrt_fail "topics create $T"
for t in "$NT" "$Z" "$Z.dlq" "$BT" "$YT"; do
    mr topics create "$t" --partitions 1 >/dev/null || mrt_fail "topics create $t"
done

# --- publishing --------------------------------------------------------------
# published.json: the 53 messages in publish order, with what a fetch
# gives back (text, or "base64:..." as consume.py prints it).
python3 - "$work" <<'PY'
import base64, json, sys
w = sys.argv[1]
msgs, want = [], []
for i in range(50):
    m = {"key": "k%d" % (i % 10), "value": "v%d" % i}
    shown = "v%d" % i
    if i == 0:
        m["headers"] = {"ce_type": "test.json", "x-trace": "t0"}
    if i == 1:
        m["id"] = "http-id-1"
    if i == 10:
        m["value"] = {"n": 10, "s": "x"}
        shown = '{"n":10,"s":"x"}'
    if i == 20:
        del m["value"]
        m["value_base64"] = base64.b64encode(b"\xff\x00v20").decode()
        shown = "base64:" + m["value_base64"]
    if i == 30:
        m["value"] = 30
        shown = "30"
    msgs.append(m)
    want.append({"key": m["key"], "shown": shown})
json.dump({"messages": msgs[:25]}, open(w + "/pub1.json", "w"))
json.dump({"messages": msgs[25:]}, open(w + "/pub2.json", "w"))
want += [{"key": "raw-1", "shown": '{"order": 1}'},
         {"key": "raw/2", "shown": "plain two"},
         {"key": "raw 3", "shown": "three"}]
json.dump(want, open(w + "/want.json", "w"))
PY

P="/v1/topics/$T/messages"
for n in 1 2; do
    s=$(req POST "$P" "${A[@]}" "${J[@]}" --data-binary @"$work/pub$n.json")
    cp "$work/body" "$work/ack$n.json"
    [[ $s == 200 ]] && mrt_pass "POST $P (batch $n of 25): 200" ||
        mrt_fail "POST $P (batch $n): $s $(head -c 300 "$work/body")"
done
s=$(req POST "$P/raw-1" "${A[@]}" -H 'Content-Type: application/json' \
    -H 'ce-type: order.created' -H 'ce-source: /tests/http' \
    --data-binary '{"order": 1}')
cp "$work/body" "$work/raw1.json"
[[ $s == 200 ]] || mrt_fail "POST $P/raw-1: $s $(head -c 300 "$work/body")"
s=$(req POST "$P/raw%2F2" "${A[@]}" -H 'Content-Type: text/plain' \
    -H 'mr-correlation-id: c-2' --data-binary 'plain two')
cp "$work/body" "$work/raw2.json"
[[ $s == 200 ]] || mrt_fail "POST $P/raw%2F2: $s $(head -c 300 "$work/body")"
s=$(req POST "$P/raw%203" "${A[@]}" -H 'Content-Type: application/octet-stream' \
    -H 'ce-id: raw-id-3' --data-binary 'three')
cp "$work/body" "$work/raw3.json"
[[ $s == 200 ]] || mrt_fail "POST $P/raw%203: $s $(head -c 300 "$work/body")"

py_checks "the acks" 30 "$work" "$T" <<'PY'
import json, sys
w, T = sys.argv[1], sys.argv[2]
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
want = json.load(open(w + "/want.json"))
answers = [json.load(open("%s/%s.json" % (w, f)))
           for f in ("ack1", "ack2", "raw1", "raw2", "raw3")]
for a, n in zip(answers, (25, 25, 1, 1, 1)):
    check(a.get("ok") is True and a.get("published") == n and a.get("failed") == 0
          and len(a.get("acks", [])) == n,
          "publish answer: ok, published %d, failed 0, %d acks" % (n, n), a)
acks = [k for a in answers for k in a.get("acks", [])]
if len(acks) != len(want):
    check(False, "53 acks", len(acks))
    sys.exit(0)
bad = [k for k in acks if not (k.get("topic") == T
       and isinstance(k.get("partition"), int) and k["partition"] in (0, 1)
       and isinstance(k.get("offset"), int) and k["offset"] >= 0
       and isinstance(k.get("id"), str) and k["id"]
       and k.get("duplicate") is False)]
check(not bad, "every ack has topic, partition, offset, id, duplicate false", bad)
ids = [k["id"] for k in acks]
check(len(set(ids)) == len(ids), "the 53 ids are distinct", ids)
check(acks[1]["id"] == "http-id-1", "the id given is the ack's id", acks[1])
check(acks[52]["id"] == "raw-id-3", "ce-id in raw mode is the ack's id", acks[52])
byk = {}
for m, k in zip(want, acks):
    byk.setdefault(m["key"], []).append(k)
parts = {key: {k["partition"] for k in ks} for key, ks in byk.items()}
check(all(len(p) == 1 for p in parts.values()), "a key's messages share a partition", parts)
order = {key: [k["offset"] for k in ks] for key, ks in byk.items()}
check(all(o == sorted(o) and len(set(o)) == len(o) for o in order.values()),
      "a key's offsets increase in publish order (across requests too)", order)
pos = {(k["partition"], k["offset"]) for k in acks}
check(len(pos) == 53, "53 distinct positions", len(pos))
for m, k in zip(want, acks):
    m.update(id=k["id"], partition=k["partition"], offset=k["offset"])
json.dump(want, open(w + "/published.json", "w"))
PY

# --- consuming ---------------------------------------------------------------
rc=0
timeout -k 5 120 python3 "$PYDIR/consume.py" --url "$H" --group "$G" \
    --topic "$T" --count 53 --wait-ms 2000 --token-file "$work/token" \
    >"$work/consume.out" 2>"$work/consume.err" || rc=$?
[[ $rc -eq 0 ]] && mrt_pass "consume.py --count 53 exits 0" ||
    mrt_fail "consume.py exits $rc: $(tail -5 "$work/consume.err")"
py_checks "consume.py's lines" 30 "$work" <<'PY'
import json, sys, urllib.parse
w = sys.argv[1]
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
pub = json.load(open(w + "/published.json"))
at = {(m["partition"], m["offset"]): m for m in pub}
lines = open(w + "/consume.out").read().splitlines()
check(len(lines) == 53, "consume.py printed 53 lines", len(lines))
got, wrong = [], []
for line in lines:
    f = line.split(" ")
    if len(f) != 4:
        wrong.append(line)
        continue
    p, o = int(f[0]), int(f[1])
    key = None if f[2] == "-" else urllib.parse.unquote(f[2])
    value = urllib.parse.unquote(f[3])
    m = at.get((p, o))
    if m is None or m["key"] != key or m["shown"] != value:
        wrong.append((line, m))
    got.append((p, o))
check(not wrong, "each line is 'partition offset key value' of the message published there", wrong)
missing = [m for m in pub if (m["partition"], m["offset"]) not in got]
check(not missing, "every published message was consumed (53 of 53)", missing)
first = []
for po in got:
    if po not in first:
        first.append(po)
ok = True
for key in {m["key"] for m in pub}:
    want = [(m["partition"], m["offset"]) for m in pub if m["key"] == key]
    if [po for po in first if at[po]["key"] == key] != want:
        ok = False
        check(False, "key %s consumed in publish order" % key,
              [po for po in first if at[po]["key"] == key])
if ok:
    check(True, "each key's messages were consumed in publish order")
PY

py_checks "a new session of the group" 60 "$PYDIR" "$H" "$G" "$T" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from mailroom_http import Mailroom
mr = Mailroom(sys.argv[2])
with mr.subscribe(sys.argv[3], sys.argv[4]) as s:
    got = s.fetch(max_messages=100, wait_ms=1500)
    got += s.fetch(max_messages=100, wait_ms=1500)
print(("ok " if not got else "fail ") +
      "a new session of the group after consume.py acked all gets nothing" +
      ("" if not got else ": %s" % [(m["partition"], m["offset"]) for m in got]))
PY

# Another group reads every message back: positions, ids, headers.
py_checks "group $G2" 90 "$PYDIR" "$H" "$G2" "$T" "$work" <<'PY'
import base64, json, sys, time
sys.path.insert(0, sys.argv[1])
from mailroom_http import Mailroom
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
mr = Mailroom(sys.argv[2])
T, w = sys.argv[4], sys.argv[5]
pub = json.load(open(w + "/published.json"))
byid = {m["id"]: m for m in pub}
got = {}
with mr.subscribe(sys.argv[3], T) as s:
    end = time.time() + 60
    while len(got) < len(pub) and time.time() < end:
        batch = s.fetch(max_messages=20, wait_ms=2000)
        for m in batch:
            got.setdefault(m["id"], m)
        if batch:
            r = s.ack(batch)
            if r.get("settled") != len(batch) or r.get("failed"):
                check(False, "ack of a batch settles all", r)
check(len(got) == len(pub), "group 2 fetched all 53 by id", len(got))
bad = []
for i, m in got.items():
    p = byid.get(i)
    if (p is None or (m["partition"], m["offset"]) != (p["partition"], p["offset"])
            or m["topic"] != T or m["key"] != p["key"]
            or m.get("key_encoding") != "text"
            or not (isinstance(m["handle"], str) and m["handle"].isdigit())
            or m["attempt"] != 1 or m["redelivery"] is not False
            or not isinstance(m.get("timestamp_ms"), int)):
        bad.append(m)
check(not bad, "each fetched message: its ack's position and id, key text, "
      "handle a decimal string, attempt 1, not a redelivery", bad)
shown = lambda m: (m["value"] if m["value_encoding"] == "text"
                   else "base64:" + m["value"])
check(all(shown(m) == byid[i]["shown"] for i, m in got.items() if i in byid),
      "each value as published (text, compact JSON, base64 for bytes)",
      [(shown(m), byid[i]["shown"]) for i, m in got.items()
       if i in byid and shown(m) != byid[i]["shown"]])
def by(pred):
    return next((m for m in got.values() if pred(m)), None)
m = by(lambda m: m["key"] == "raw-1")
check(m is not None and m.header("ce_type") == b"order.created"
      and m.header("content-type") == b"application/json"
      and m.header("ce_source") == b"/tests/http"
      and m.value_bytes == b'{"order": 1}',
      "raw mode: ce-type, ce-source and Content-Type became ce_type, "
      "ce_source and content-type; the body is the value",
      m and m.get("headers"))
m = by(lambda m: m["key"] == "raw/2")
check(m is not None and m.header("mr_correlation_id") == b"c-2"
      and m.header("content-type") == b"text/plain"
      and m.header("ce_type") == b"mailroom.message",
      "raw mode: the key percent-decoded (raw%2F2), mr-correlation-id "
      "became mr_correlation_id, ce_type the default", m)
m = by(lambda m: m["key"] == "raw 3")
check(m is not None and m["id"] == "raw-id-3" and m.header("ce_id") == b"raw-id-3",
      "raw mode: ce-id is the message id and its ce_id", m)
m = got.get(pub[0]["id"])
names = [h["name"] for h in (m or {}).get("headers", [])]
check(m is not None and m.header("ce_type") == b"test.json"
      and m.header("x-trace") == b"t0" and m.header("ce_specversion") == b"1.0"
      and "ce_type" in names and "x-trace" in names
      and names.index("x-trace") > names.index("ce_type"),
      "JSON headers: ce_type given, x-trace kept after the envelope", m)
m = got.get(pub[20]["id"])
check(m is not None and m["value_encoding"] == "base64"
      and m.value_bytes == b"\xff\x00v20",
      "value_base64: bytes that are not text come back as base64", m)
PY

# A nack: the message comes back at once (back-off 0) as attempt 2;
# extend, ack, and settle's failed list.
py_checks "nack" 90 "$PYDIR" "$H" "$GN" "$NT" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from mailroom_http import Mailroom, MailroomError
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
mr = Mailroom(sys.argv[2])
NT = sys.argv[4]
ack = mr.publish(NT, key="n", value="nack me")[0]
def fetch_one(s, secs=30):
    end = time.time() + secs
    while time.time() < end:
        b = s.fetch(max_messages=10, wait_ms=2000)
        if b:
            return b
    return []
with mr.subscribe(sys.argv[3], NT, retry={"backoff_initial_ms": 0}) as s:
    check(len(s.id) == 32 and all(c in "0123456789abcdef" for c in s.id.lower())
          and s.info.get("retry", {}).get("backoff_initial_ms") == 0
          and "idle_ms" in s.info,
          "POST /v1/sessions: a 32-hex-digit session id, idle_ms, the retry in force",
          s.info)
    b = fetch_one(s)
    check(len(b) == 1 and b[0]["offset"] == ack["offset"] and b[0]["attempt"] == 1,
          "the message, attempt 1", b)
    if b:
        r = s.nack(b, "try again")
        check(r.get("ok") and r.get("settled") == 1 and r.get("failed") == [],
              "nack: settled 1, failed []", r)
        b2 = fetch_one(s)
        check(len(b2) == 1 and b2[0]["id"] == b[0]["id"]
              and b2[0]["offset"] == b[0]["offset"] and b2[0]["attempt"] == 2
              and b2[0]["redelivery"] is True and b2[0]["handle"] != b[0]["handle"],
              "after the nack it comes back: attempt 2, a redelivery, a new handle", b2)
        if b2:
            r = s.extend([int(b2[0]["handle"])], 10000)
            check(r.get("settled") == 1, "extend (a handle as an integer): settled 1", r)
            parts = s.assignment()
            check({"topic": NT, "partition": 0} in parts,
                  "GET .../assignment lists the partition", parts)
            r = s.ack(b2)
            check(r.get("settled") == 1 and r.get("failed") == [], "ack: settled 1", r)
            r = s.ack(b2)
            check(r.get("settled") == 0 and r.get("failed") ==
                  [{"handle": b2[0]["handle"], "error": "MR_ENOENT"}],
                  "a second ack: settled 0, failed [{handle, MR_ENOENT}]", r)
    sid = s.id
try:
    mr.request("POST", "/v1/sessions/%s/fetch" % sid, {"wait_ms": 0})
    check(False, "a deleted session's fetch is 404", "it answered")
except MailroomError as e:
    check(e.status == 404 and e.error == "MR_ENOENT",
          "DELETE /v1/sessions/{id} ended it: a fetch is 404 MR_ENOENT", e)
PY

# Keys and values that are not text, a null key, an empty one, JSON values;
# a batch with one message too big: its status, and every ack.
py_checks "bytes" 90 "$PYDIR" "$H" "$GY" "$YT" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from mailroom_http import Mailroom, MailroomError, message
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
mr = Mailroom(sys.argv[2])
YT = sys.argv[4]
acks = mr.publish(YT, [message(key=b"\x00k\xff", value=b"\x01\x02"),
                       message(value="null key"),
                       message(key="", value=None),
                       message(key="t", value=True, headers={"h-tab": "a\tb"})])
ids = [a["id"] for a in acks]
got = {}
with mr.subscribe(sys.argv[3], YT) as s:
    end = time.time() + 30
    while len(got) < 4 and time.time() < end:
        b = s.fetch(max_messages=10, wait_ms=2000)
        got.update((m["id"], m) for m in b)
        if b:
            s.ack(b)
m = [got.get(i) for i in ids]
check(None not in m, "the 4 messages fetched", list(got))
if None not in m:
    check(m[0]["key_encoding"] == "base64" and m[0].key_bytes == b"\x00k\xff"
          and m[0]["value_encoding"] == "base64" and m[0].value_bytes == b"\x01\x02",
          "key_base64 and value_base64: bytes that are not text come back as base64", m[0])
    check(m[1]["key"] is None and m[1].key_bytes is None,
          'no key: "key": null', m[1])
    check(m[2]["key"] == "" and m[2]["key_encoding"] == "text"
          and m[2].value_bytes == b"null",
          'an empty key is "" (not null); a JSON null value is the text null', m[2])
    check(m[3].value_bytes == b"true" and m[3].header("h-tab") == b"a\tb",
          "true is the text true; a header value with a tab is text", m[3])
try:
    mr.publish(YT, [message(value="x"), message(key="big", value="y" * 20000),
                    message(value="z")])
    check(False, "a batch with a message over producer.message_max_bytes fails", "200")
except MailroomError as e:
    a = e.acks
    check(e.status == 413 and e.error == "MR_ETOOBIG"
          and e.body.get("published") == 2 and e.body.get("failed") == 1
          and len(a) == 3 and "offset" in a[0] and "offset" in a[2]
          and a[1].get("error") == "MR_ETOOBIG" and a[1].get("message")
          and "offset" not in a[1] and "partition" not in a[1] and a[1].get("id"),
          "one message of 3 over producer.message_max_bytes: 413 (its status), "
          "published 2, failed 1, its ack with error and message, the others "
          "with their positions", (e.status, e.body))
PY

# --- lag and records ---------------------------------------------------------
lag_ok=""
for _ in $(seq 60); do
    s=$(req GET "/v1/lag?group=$G&topic=$T&refresh=true" "${A[@]}")
    if [[ $s == 200 ]] && python3 - "$work/body" "$G" "$T" 2>/dev/null <<'PY'; then
import json, sys
r = json.load(open(sys.argv[1]))
rows = [p for p in r["partitions"] if p["group"] == sys.argv[2] and p["topic"] == sys.argv[3]]
assert r["ok"] and sorted(p["partition"] for p in rows) == [0, 1], rows
assert all(p["lag"] == 0 for p in rows), rows
PY
        lag_ok=1
        break
    fi
    sleep 0.5
done
[[ -n $lag_ok ]] && mrt_pass "GET /v1/lag?group=G: lag 0 on both partitions of T" ||
    mrt_fail "GET /v1/lag?group=$G: $s $(head -c 600 "$work/body")"

s=$(req GET /v1/topics "${A[@]}")
[[ $s == 200 ]] && python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] and [t["partitions"] for t in r["topics"] if t["name"] == sys.argv[2]] == [2], r' \
    "$work/body" "$T" 2>/dev/null &&
    mrt_pass "GET /v1/topics lists T with 2 partitions" ||
    mrt_fail "GET /v1/topics: $s $(head -c 400 "$work/body")"
s=$(req GET "/v1/topics/$T" "${A[@]}")
[[ $s == 200 ]] && python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] and r["partition_count"] == 2, r' \
    "$work/body" 2>/dev/null &&
    mrt_pass "GET /v1/topics/T: partition_count 2" ||
    mrt_fail "GET /v1/topics/$T: $s $(head -c 400 "$work/body")"
for p in 0 1; do
    s=$(req GET "/v1/topics/$T/partitions/$p/records?max_records=1000" "${A[@]}")
    cp "$work/body" "$work/records$p.json"
    [[ $s == 200 ]] || mrt_fail "GET /v1/topics/$T/partitions/$p/records: $s $(head -c 400 "$work/body")"
done
s=$(req GET "/v1/topics/$T/partitions/0/records?offset=1&max_records=2" "${A[@]}")
cp "$work/body" "$work/records_cut.json"
py_checks "records" 30 "$work" <<'PY'
import base64, json, sys
w = sys.argv[1]
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
pub = json.load(open(w + "/published.json"))
for p in (0, 1):
    r = json.load(open("%s/records%d.json" % (w, p)))
    want = {m["offset"]: m for m in pub if m["partition"] == p}
    recs = r.get("records", [])
    shown = lambda x: (x["payload"] if x["payload_encoding"] == "text"
                       else "base64:" + x["payload"])
    check(r.get("ok") and r.get("partition") == p
          and sorted(x["offset"] for x in recs) == sorted(want)
          and all(shown(x) == want[x["offset"]]["shown"]
                  and x["key"] == want[x["offset"]]["key"] for x in recs),
          "GET /v1/topics/T/partitions/%d/records: the %d records published there"
          % (p, len(want)), r)
r = json.load(open(w + "/records_cut.json"))
offs = [x["offset"] for x in r.get("records", [])]
n0 = len([m for m in pub if m["partition"] == 0])
check(r.get("ok") and offs == list(range(1, 1 + min(2, max(0, n0 - 1)))),
      "records?offset=1&max_records=2: offsets from 1, at most 2", r)
PY

# --- the token ---------------------------------------------------------------
s=$(req POST /v1/sessions "${A[@]}" "${J[@]}" -d "{\"group\": \"$GZ\", \"topics\": [\"$Z\"]}")
SID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$work/body" 2>/dev/null)
[[ $s == 200 && -n $SID ]] || {
    mrt_fail "POST /v1/sessions ($GZ): $s $(head -c 300 "$work/body")"
    SID=0123456789abcdef0123456789abcdef
}
# METHOD|PATH|BODY|STATUS with the token (a|b: either)
routes=(
    "POST|/v1/topics/$Z/messages|{\"key\": \"a\", \"value\": \"b\"}|200"
    "POST|/v1/topics/$Z/messages/a|raw|200"
    "POST|/v1/sessions|{\"group\": \"$GZ\", \"topics\": [\"$Z\"]}|200"
    "POST|/v1/sessions/$SID/fetch|{\"max_messages\": 1, \"wait_ms\": 0}|200"
    "POST|/v1/sessions/$SID/ack|{\"handles\": [\"1\"]}|200"
    "POST|/v1/sessions/$SID/nack|{\"handles\": [\"1\"], \"reason\": \"x\"}|200"
    "POST|/v1/sessions/$SID/reject|{\"handles\": [\"1\"], \"reason\": \"x\"}|200"
    "POST|/v1/sessions/$SID/extend|{\"handles\": [\"1\"], \"extend_ms\": 1000}|200"
    "DELETE|/v1/sessions/$SID||200"
    "POST|/v1/topics|{\"topic\": \"$Z-new\", \"partitions\": 1}|200"
    "POST|/v1/groups/$GZ/resume||200|404"
    "PUT|/v1/bounds/$Z|{\"max_lag\": 1000000}|200"
    "DELETE|/v1/bounds/$Z||200"
    "POST|/v1/dlq/$Z.dlq/replay|{\"dry_run\": true}|200"
    "POST|/v1/dlq/$Z.dlq/purge|{\"dry_run\": true}|200"
    "POST|/v1/admin|{\"op\": \"topics.list\"}|200"
    "POST|/v1/actors|{\"process\": \"http-test\", \"instance\": \"1\", \"supervisors\": [{\"name\": \"root\", \"restarts\": 0}]}|200"
)
# send METHOD PATH BODY [CURL_ARGS...]: the request with BODY as its body
# (none for an empty DELETE; JSON, or text/plain for a raw-mode post).
send() {
    local m=$1 p=$2 b=$3
    shift 3
    local ct='application/json'
    [[ $p == */messages/* ]] && ct='text/plain'
    if [[ $m == DELETE && -z $b ]]; then
        req "$m" "$p" "$@"
    else
        req "$m" "$p" -H "Content-Type: $ct" --data-binary "$b" "$@"
    fi
}
for r in "${routes[@]}"; do
    IFS='|' read -r m p b _ <<<"$r"
    s1=$(send "$m" "$p" "$b")
    e1=$(err_body 'token' 2>&1 | tail -1)
    s2=$(send "$m" "$p" "$b" -H "Authorization: Bearer not-$TOKEN")
    e2=$(err_body 'token' 2>&1 | tail -1)
    if [[ $s1 == 401 && -z $e1 && $s2 == 401 && -z $e2 ]]; then
        mrt_pass "$m ${p//$SID/{id\}}: 401 without a token and with a wrong one"
    else
        mrt_fail "$m $p: without a token $s1 $e1; with a wrong one $s2 $e2 $(head -c 200 "$work/body")"
    fi
done
s=$(req GET "/v1/sessions/$SID/assignment" "${A[@]}")
[[ $s == 200 ]] && mrt_pass "the session lived through the refused requests (DELETE among them)" ||
    mrt_fail "GET /v1/sessions/$SID/assignment after the refused DELETE: $s $(head -c 200 "$work/body")"
for r in "${routes[@]}"; do
    IFS='|' read -r m p b w1 w2 <<<"$r"
    s=$(send "$m" "$p" "$b" "${A[@]}")
    if [[ $s == "$w1" || $s == "${w2:-$w1}" ]]; then
        mrt_pass "$m ${p//$SID/{id\}} with the token: $s"
        # The session the route made: closed.
        [[ $p == /v1/sessions ]] && sid2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$work/body") &&
            req DELETE "/v1/sessions/$sid2" "${A[@]}" >/dev/null
    else
        mrt_fail "$m $p with the token: $s (want $w1${w2:+ or $w2}) $(head -c 300 "$work/body")"
    fi
done
for p in /v1/status /v1/topics "/v1/lag?group=$G" /v1/bounds "/v1/topics/$T" \
    "/v1/topics/$T/partitions/0/records" "/v1/dlq/$Z.dlq" /metrics; do
    s=$(req GET "$p")
    e=$(err_body token 2>&1 | tail -1)
    [[ $s == 401 && -z $e ]] && mrt_pass "GET $p without the token: 401" ||
        mrt_fail "GET $p without the token: $s $e $(head -c 200 "$work/body")"
done
s=$(req GET /healthz)
[[ $s == 200 ]] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["ok"] is True' "$work/body" 2>/dev/null &&
    mrt_pass "GET /healthz without the token: 200 {\"ok\": true}" ||
    mrt_fail "GET /healthz without the token: $s $(head -c 200 "$work/body")"
# wait_ready [GROUP]: GET /readyz (without the token) until it answers
# 200, 30 s at most. Each 503 must say that a group has not joined (GROUP,
# when given) with the API's error shape; the 200, that Kafka is reachable
# and every group joined. n503 counts the 503s. Returns 1 at the first
# wrong answer or after 30 s, with why in $work/why.
wait_ready() {
    local s
    n503=0
    for _ in $(seq 150); do
        s=$(req GET /readyz)
        python3 - "$work/body" "$s" "${1:-}" 2>"$work/why" <<'PY' || return 1
import json, re, sys
body, status, group = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(body))
g = r.get("groups")
assert isinstance(g, dict) and isinstance(g.get("joined"), int) and \
    isinstance(g.get("total"), int), r
if status == "200":
    assert r.get("ok") is True and r.get("ready") is True and \
        r.get("kafka") is True, r
    assert g["joined"] == g["total"] >= (1 if group else 0), r
elif status == "503":
    assert r.get("ok") is False and r.get("ready") is False and \
        r.get("kafka") is True and r.get("error") == "MR_EUNAVAIL", r
    assert g["joined"] < g["total"], r
    name = re.escape(group) if group else r"\S+"
    assert re.search(r"\bgroup %s has not joined" % name,
                     r.get("message", "")), ("not named", group, r)
else:
    raise AssertionError("status %s: %s" % (status, r))
PY
        [[ $s == 200 ]] && return 0
        n503=$((n503 + 1))
        sleep 0.2
    done
    echo "still 503 after 30 s: $(head -c 300 "$work/body")" >"$work/why"
    return 1
}
# /readyz waits for the groups: $GZ was subscribed moments ago (the
# embedded cluster delays a group's first join by about 3 s).
if wait_ready; then
    mrt_pass "GET /readyz without the token: 200 {\"ok\": true, \"ready\": true, \"kafka\": true, \"groups\": {joined = total}} (after $n503 503s naming a group)"
else
    mrt_fail "GET /readyz without the token: $(tail -3 "$work/why")"
fi
# A group of its own: right after its SUBSCRIBE each 503 names it, until
# it joins. Once /readyz says 200, STATUS (read after) shows it joined: a
# /readyz that did not wait for it would have answered before it joined.
s=$(req POST /v1/sessions "${A[@]}" "${J[@]}" -d "{\"group\": \"$GR\", \"topics\": [\"$Z\"]}")
SR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$work/body" 2>/dev/null) ||
    mrt_fail "POST /v1/sessions ($GR): $s $(head -c 300 "$work/body")"
if wait_ready "$GR"; then
    s=$(req GET /v1/status "${A[@]}")
    if [[ $s == 200 ]] && python3 - "$work/body" "$GR" 2>"$work/why" <<'PY'
import json, sys
r, gr = json.load(open(sys.argv[1])), sys.argv[2]
c = r["consume"]
mine = [x for x in c["groups"] if x["group"] == gr]
assert mine and all(x["joined"] is True for x in mine), c
PY
    then
        mrt_pass "GET /readyz after subscribing $GR: 503 naming it ($n503 times), then 200 once it joined (STATUS then shows it joined)"
    else
        mrt_fail "GET /readyz answered 200 but STATUS does not show $GR joined: $s $(tail -3 "$work/why")"
    fi
else
    mrt_fail "GET /readyz after subscribing $GR: $(tail -3 "$work/why")"
fi
[[ -n ${SR:-} ]] && req DELETE "/v1/sessions/$SR" "${A[@]}" >/dev/null
s=$(req GET /metrics "${A[@]}")
[[ $s == 200 ]] && grep -q '^mailroom_uptime_seconds ' "$work/body" &&
    mrt_pass "GET /metrics with the token: 200, Prometheus' text" ||
    mrt_fail "GET /metrics with the token: $s $(head -c 200 "$work/body")"
s=$(req GET /v1/status "${A[@]}")
[[ $s == 200 ]] && python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["protocol"] == 1 and "kafka" in r, r' "$work/body" 2>/dev/null &&
    grep -qi '^content-type: *application/json' "$work/hdr" &&
    mrt_pass "GET /v1/status with the token: STATUS's JSON, Content-Type: application/json" ||
    mrt_fail "GET /v1/status: $s $(head -c 300 "$work/body")"

# --- bad input: a 4xx naming the problem; nothing written --------------------
s=$(req POST /v1/sessions "${A[@]}" "${J[@]}" -d "{\"group\": \"$GZ-b\", \"topics\": [\"$Z\"]}")
SB=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$work/body" 2>/dev/null) ||
    mrt_fail "POST /v1/sessions ($GZ-b): $s $(head -c 300 "$work/body")"
B="/v1/topics/$BT/messages"
big="$work/big.json"
python3 -c 'import json,sys; json.dump({"key": "big", "value": "x" * 100000}, open(sys.argv[1], "w"))' "$big"
expect_err 400 'json' "malformed JSON" POST "$B" "${A[@]}" "${J[@]}" --data-binary '{"key": "a", "value": '
expect_err 400 'value_base64' "value_base64 a number" POST "$B" "${A[@]}" "${J[@]}" -d '{"key": "a", "value_base64": 5}'
expect_err 400 'base64' "value_base64 not base64" POST "$B" "${A[@]}" "${J[@]}" -d '{"key": "a", "value_base64": "!!!"}'
expect_err 400 'key' "key an object" POST "$B" "${A[@]}" "${J[@]}" -d '{"key": {"a": 1}, "value": "x"}'
expect_err 400 'bogus_field' "an unknown field" POST "$B" "${A[@]}" "${J[@]}" -d '{"key": "a", "value": "x", "bogus_field": 1}'
expect_err 400 'value' "value and value_base64 both" POST "$B" "${A[@]}" "${J[@]}" -d '{"value": "x", "value_base64": "eA=="}'
expect_err 400 'ce_id' "a ce_id header" POST "$B" "${A[@]}" "${J[@]}" -d '{"value": "x", "headers": {"ce_id": "1"}}'
expect_err 400 '\bid\b' "an id of 256 bytes" POST "$B" "${A[@]}" "${J[@]}" -d "{\"value\": \"x\", \"id\": \"$(printf 'i%.0s' $(seq 256))\"}"
expect_err 400 'messages' "no messages" POST "$B" "${A[@]}" "${J[@]}" -d '{"messages": []}'
expect_err 400 'value_base64' "one bad message of two: the request refused whole" POST "$B" "${A[@]}" "${J[@]}" \
    -d '{"messages": [{"key": "w", "value": "must not be written"}, {"key": "w", "value_base64": 7}]}'
expect_err 400 'topic' "an invalid topic name" POST "/v1/topics/bad!topic/messages" "${A[@]}" "${J[@]}" -d '{"value": "x"}'
expect_err 400 'topic' "a topic name of 250 characters" POST "/v1/topics/$(printf 't%.0s' $(seq 250))/messages" "${A[@]}" "${J[@]}" -d '{"value": "x"}'
expect_err 413 '' "a body over http.max_body_bytes (100 KB > 65536)" POST "$B" "${A[@]}" "${J[@]}" --data-binary @"$big"
expect_err 411 '' "a body without Content-Length (chunked)" POST "$B" "${A[@]}" "${J[@]}" -H 'Transfer-Encoding: chunked' -d '{"value": "x"}'
expect_err 404 '' "an unknown route" GET /v1/nope "${A[@]}"
expect_err 404 '' "an unknown route (POST)" POST /v1/nope "${A[@]}" "${J[@]}" -d '{}'
expect_err 405 '' "DELETE /v1/topics" DELETE /v1/topics "${A[@]}"
expect_err 405 '' "PUT /v1/topics/T/messages" PUT "/v1/topics/$BT/messages" "${A[@]}" "${J[@]}" -d '{"value": "x"}'
expect_err 405 '' "GET /v1/sessions/{id}/fetch" GET "/v1/sessions/${SB:-0}/fetch" "${A[@]}"
expect_err 404 '' "an unknown session's fetch" POST /v1/sessions/0123456789abcdef0123456789abcdef/fetch "${A[@]}" "${J[@]}" -d '{"wait_ms": 0}'
expect_err 404 '' "an unknown session's ack" POST /v1/sessions/0123456789abcdef0123456789abcdef/ack "${A[@]}" "${J[@]}" -d '{"handles": ["1"]}'
expect_err 400 'max_messages' "fetch with max_messages 0" POST "/v1/sessions/${SB:-0}/fetch" "${A[@]}" "${J[@]}" -d '{"max_messages": 0}'
expect_err 400 'wait_ms' "fetch with wait_ms 300001" POST "/v1/sessions/${SB:-0}/fetch" "${A[@]}" "${J[@]}" -d '{"wait_ms": 300001}'
expect_err 400 'handles' "ack with no handles" POST "/v1/sessions/${SB:-0}/ack" "${A[@]}" "${J[@]}" -d '{"handles": []}'
expect_err 400 'bogus' "an unknown retry member" POST /v1/sessions "${A[@]}" "${J[@]}" -d "{\"group\": \"$GZ\", \"topics\": [\"$Z\"], \"retry\": {\"bogus\": 1}}"
expect_err 400 'bogus' "an unknown query parameter" GET "/v1/lag?bogus=1" "${A[@]}"
expect_err 400 'reason' "nack with a reason over 1024 bytes" POST "/v1/sessions/${SB:-0}/nack" "${A[@]}" "${J[@]}" \
    -d "{\"handles\": [\"1\"], \"reason\": \"$(printf 'r%.0s' $(seq 1025))\"}"
expect_err 400 '' "a key with a bad percent-encoding (a%zz)" POST "/v1/topics/$BT/messages/a%zz" "${A[@]}" \
    -H 'Content-Type: text/plain' --data-binary 'x'
[[ -n ${SB:-} ]] && req DELETE "/v1/sessions/$SB" "${A[@]}" >/dev/null

s=$(req GET /healthz)
[[ $s == 200 ]] && mrt_pass "after the bad input: /healthz 200" ||
    mrt_fail "after the bad input: /healthz $s"
s=$(req GET "/v1/topics/$BT/partitions/0/records" "${A[@]}")
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] and r["records"] == [] and r["high_watermark"] == 0, r' "$work/body" 2>/dev/null &&
    mrt_pass "nothing of the refused requests was written" ||
    mrt_fail "records of $BT after the refused requests: $s $(head -c 400 "$work/body")"
s=$(req POST "$B" "${A[@]}" "${J[@]}" -d '{"key": "after", "value": "fine"}')
[[ $s == 200 ]] && python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["acks"][0]["offset"] == 0, r' "$work/body" 2>/dev/null &&
    mrt_pass "after the bad input: a publish works (offset 0 of the topic)" ||
    mrt_fail "publish after the bad input: $s $(head -c 300 "$work/body")"

mrt_stop_daemon
log1=$log

# --- mailroomd with no token: mutations 403, reads open ----------------------
PORT=$(free_port)
H="http://127.0.0.1:$PORT"
mrt_start_daemon notoken --set "http.listen=$H"
log2=$log
if wait_healthz "$H"; then
    s=$(req POST "/v1/topics/$T/messages" "${J[@]}" -d '{"value": "x"}')
    e=$(err_body 2>&1 | tail -1)
    [[ $s == 403 && -z $e ]] && mrt_pass "no token configured: POST .../messages is 403" ||
        mrt_fail "no token configured: POST .../messages $s $e $(head -c 300 "$work/body")"
    s=$(req POST /v1/admin "${A[@]}" "${J[@]}" -d '{"op": "topics.list"}')
    e=$(err_body 2>&1 | tail -1)
    [[ $s == 403 && -z $e ]] && mrt_pass "no token configured: POST /v1/admin with a bearer token is 403 too" ||
        mrt_fail "no token configured: POST /v1/admin $s $e $(head -c 300 "$work/body")"
    for p in /v1/status /v1/topics; do
        s=$(req GET "$p")
        [[ $s == 200 ]] && mrt_pass "no token configured: GET $p is 200" ||
            mrt_fail "no token configured: GET $p $s $(head -c 300 "$work/body")"
    done
    # DNS rebinding: a page on a name that points here sends that name.
    for host in 127.0.0.1.rebind.example 127.0.0.1.rebind.example:$PORT \
        localhost.rebind.example "127.0.0.1:$PORT@rebind.example"; do
        s=$(req GET /v1/status -H "Host: $host")
        e=$(err_body 'loopback Host' 2>&1 | tail -1)
        [[ $s == 403 && -z $e ]] && mrt_pass "no token configured: GET /v1/status with Host $host is 403" ||
            mrt_fail "no token configured: GET /v1/status with Host $host: $s $e $(head -c 300 "$work/body")"
    done
    for host in "localhost:$PORT" "[::1]:$PORT" 127.0.0.2; do
        s=$(req GET /v1/status -H "Host: $host")
        [[ $s == 200 ]] && mrt_pass "no token configured: GET /v1/status with Host $host is 200" ||
            mrt_fail "no token configured: GET /v1/status with Host $host: $s $(head -c 300 "$work/body")"
    done
else
    mrt_fail "mailroomd with no token: /healthz never answered on $H"
fi
mrt_stop_daemon

# --- a token file mailroomd makes; an idle session ends ----------------------
PORT=$(free_port)
H="http://127.0.0.1:$PORT"
mkdir -p "$work/made"
mrt_start_daemon made --set "http.listen=$H" \
    --set "http.token_file=$work/made/token" --set http.session_idle_ms=1000
log3=$log
if wait_healthz "$H"; then
    tok=$(head -1 "$work/made/token" 2>/dev/null)
    mode_bits=$(stat -c %a "$work/made/token" 2>/dev/null)
    s=$(req POST /v1/admin -H "Authorization: Bearer $tok" "${J[@]}" -d '{"op": "topics.list"}')
    [[ ${#tok} -ge 16 && $mode_bits == 600 && $s == 200 ]] &&
        mrt_pass "http.token_file made: mode 0600, a token of ${#tok} characters that is accepted" ||
        mrt_fail "http.token_file made: mode '$mode_bits', token '${tok:0:8}...' (${#tok}), POST /v1/admin $s"
    "$MR" --url "$url" topics create "$T-idle" --partitions 1 >/dev/null ||
        mrt_fail "topics create $T-idle (third mailroomd)"
    py_checks "idle session" 90 "$PYDIR" "$H" "$work/made/token" "$T-idle" "idle-$$" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from mailroom_http import Mailroom, MailroomError, read_token_file
def check(cond, text, detail=""):
    print(("ok " if cond else "fail ") + text +
          ("" if cond else ": " + str(detail)[:600]), flush=True)
mr = Mailroom(sys.argv[2], token=read_token_file(sys.argv[3]))
T, g = sys.argv[4], sys.argv[5]
mr.publish(T, key="idle", value="held")
s = mr.subscribe(g, T, retry={"backoff_initial_ms": 0})
b = []
end = time.time() + 30
while not b and time.time() < end:
    b = s.fetch(max_messages=1, wait_ms=2000)
check(len(b) == 1, "a message fetched and held", b)
end, gone = time.time() + 20, None
while time.time() < end:
    time.sleep(3)  # a fetch is a request: each waits well past the idle time
    try:
        s.fetch(max_messages=1, wait_ms=0)
    except MailroomError as e:
        gone = e
        break
check(gone is not None and gone.status == 404,
      "http.session_idle_ms 1000: a session idle past it is ended (404)", gone)
s2 = mr.subscribe(g, T, retry={"backoff_initial_ms": 0})
b2 = []
end = time.time() + 30
while not b2 and time.time() < end:
    b2 = s2.fetch(max_messages=1, wait_ms=2000)
check(len(b2) == 1 and b and b2[0]["id"] == b[0]["id"] and b2[0]["attempt"] == 2,
      "what the ended session held is handed out again, attempt 2", b2)
s2.ack(b2)
s2.close()
PY
else
    mrt_fail "mailroomd with a token file to make: /healthz never answered on $H"
fi
mrt_stop_daemon

# --- beyond loopback without a token: refused --------------------------------
# 0.0.0.0, and a name that only starts like a loopback address.
for lhost in 0.0.0.0 127.0.0.1.rebind.example; do
    PORT=$(free_port)
    : >"$work/open.log"
    "$MRD" --listen "ipc://$work/open.sock" ${brokers:+--brokers "$brokers"} \
        --set "http.listen=http://$lhost:$PORT" >"$work/open.log" 2>&1 &
    opid=$!
    mrt_track "$opid"
    rc=0
    mrt_wait_exit "$opid" 30 || rc=$?
    if [[ $rc -ne 0 && $rc -ne 255 ]] && grep -q 'http\.token' "$work/open.log"; then
        mrt_pass "http.listen on $lhost without a token: exits $rc, naming http.token: $(grep -m1 'http\.token' "$work/open.log")"
    else
        mrt_fail "http.listen on $lhost without a token: exit $rc (255: still running), log: $(tail -5 "$work/open.log")"
    fi
done

mrt_finish 30 "$log1" "$log2" "$log3"
