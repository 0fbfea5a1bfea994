#!/usr/bin/env bash
# The HTTP server's limits (issue #12: slow clients, too many connections,
# malformed heads), with raw sockets: mailroomd with http.read_timeout_ms
# 1000, http.idle_timeout_ms 5000, http.max_connections 4 and
# http.max_sessions 2. Then:
#   - a head that stops halfway, and a body that stops halfway, are each
#     answered 408 (JSON) and closed;
#   - a connection idle between requests is closed, unanswered;
#   - with 4 connections open, a fifth is answered 429 (JSON, MR_EBUSY)
#     and closed, and the 4 still serve; once they close, new ones are
#     served;
#   - with 2 consumer sessions open, a third subscribe is 429 (MR_EBUSY);
#     once one is deleted, a new one opens;
#   - a head over 16 KiB is 431; a malformed request line is 400;
#     HTTP/2.0 is 505; two requests in one write get two answers, in order;
#   - meanwhile mailroomd's nng front door serves (`mailroom status`), and
#     afterwards an HTTP publish is acked.
# Nothing here is timed but by generous bounds: each wait is for something
# to happen at all (30 s), never for it to happen fast.
#
# Usage: http_limits_test.sh
# Environment: MR_BINARY_DIR (mailroomd, mailroom).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_mode embedded
mrt_binaries
mrt_need python3
mrt_workdir http-limits
unset MAILROOM_HTTP_LISTEN

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mrt_start_daemon mailroomd --set "http.listen=http://127.0.0.1:$port" \
    --set "http.token_file=$work/token" --set http.read_timeout_ms=1000 \
    --set http.idle_timeout_ms=5000 --set http.max_connections=4 \
    --set http.max_sessions=2

MRT_PORT=$port MRT_TOKEN=$(cat "$work/token") MR="$MR" MRT_URL="$url" \
    timeout 300 python3 - >"$work/driver.out" 2>&1 <<'PY'
import json, os, socket, subprocess, time

PORT, TOKEN = int(os.environ["MRT_PORT"]), os.environ["MRT_TOKEN"]
passed = []

def ok(what):
    print("ok: " + what, flush=True)

def conn():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    return s

def answer(s):
    """One HTTP answer (status, headers, body) from s, or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(hdrs["content-length"])
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk, "EOF in a body"
        rest += chunk
    return status, hdrs, rest[:n], rest[n:]

def closed(s):
    """True once the server closed s (EOF)."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True

def json_error(body, code):
    j = json.loads(body)
    assert j["ok"] is False and j["error"] == code and j["message"], j

# A head that stops halfway: 408, closed.
s = conn()
s.sendall(b"POST /v1/topics/t/messages HTTP/1.1\r\nHost: x\r\n")
st, h, body, _ = answer(s)
assert st == 408 and h.get("connection") == "close", (st, h)
json_error(body, "MR_ETIMEDOUT")
assert closed(s)
ok("a head that stops halfway: 408, closed")

# A body that stops halfway: 408, closed.
s = conn()
s.sendall(b"POST /v1/topics/t/messages HTTP/1.1\r\nHost: x\r\n"
          b"Authorization: Bearer " + TOKEN.encode() +
          b"\r\nContent-Length: 100\r\n\r\n{\"key\": ")
st, h, body, _ = answer(s)
assert st == 408, st
json_error(body, "MR_ETIMEDOUT")
assert closed(s)
ok("a body that stops halfway: 408, closed")

# Idle between requests: closed, unanswered.
s = conn()
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
st, _, _, _ = answer(s)
assert st == 200, st
assert closed(s)
ok("a connection idle after its request: closed")

# Four connections held open (each sends a request well within the idle
# limit): the fifth is refused, the four serve.
held = [conn() for _ in range(4)]
for c in held:
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer(c)[0] == 200
fifth = conn()
st, h, body, _ = answer(fifth)
assert st == 429 and h.get("connection") == "close", (st, h)
json_error(body, "MR_EBUSY")
assert closed(fifth)
for c in held:
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer(c)[0] == 200
out = subprocess.run([os.environ["MR"], "--url", os.environ["MRT_URL"],
                      "--timeout", "5000", "status"], capture_output=True)
assert out.returncode == 0, out
ok("4 connections open: a fifth gets 429 and is closed, the four serve, "
   "and the nng front door too")
for c in held:
    c.close()
deadline = time.time() + 30
while True:
    s = conn()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    a = answer(s)
    s.close()
    if a is not None and a[0] == 200:
        break
    assert time.time() < deadline, "no connection served after the four closed"
    time.sleep(0.2)
ok("once they close, a new connection is served")

# Sessions beyond http.max_sessions (2): the third subscribe is 429.
def call(method, path, doc=None):
    s = conn()
    body = json.dumps(doc).encode() if doc is not None else b""
    s.sendall(method.encode() + b" " + path.encode() + b" HTTP/1.1\r\n"
              b"Host: x\r\nAuthorization: Bearer " + TOKEN.encode() +
              b"\r\nContent-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    st, _, b, _ = answer(s)
    s.close()
    return st, b

sub = {"group": "limits-g", "topics": ["limits-s"]}
st, b = call("POST", "/v1/topics", {"topic": "limits-s", "partitions": 1})
assert st == 200, (st, b)
sids = []
for _ in range(2):
    st, b = call("POST", "/v1/sessions", sub)
    assert st == 200, (st, b)
    sids.append(json.loads(b)["session"])
st, b = call("POST", "/v1/sessions", sub)
assert st == 429, (st, b)
json_error(b, "MR_EBUSY")
assert "http.max_sessions" in json.loads(b)["message"], b
st, b = call("DELETE", "/v1/sessions/" + sids.pop())
assert st == 200, (st, b)
st, b = call("POST", "/v1/sessions", sub)
assert st == 200, (st, b)
sids.append(json.loads(b)["session"])
for sid in sids:
    assert call("DELETE", "/v1/sessions/" + sid)[0] == 200
ok("2 sessions open: a third subscribe gets 429 naming http.max_sessions; "
   "once one is deleted, a new one opens")

# Malformed heads.
for raw, want, code in ((b"GET / HTTP/1.1\r\nX: " + b"a" * 17000 + b"\r\n\r\n", 431, "MR_ETOOBIG"),
                        (b"GARBAGE\r\n\r\n", 400, "MR_EINVAL"),
                        (b"GET / HTTP/2.0\r\n\r\n", 505, "MR_EVERSION"),
                        (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "MR_EINVAL")):
    s = conn()
    s.sendall(raw)
    st, h, body, _ = answer(s)
    assert st == want, (raw[:30], st)
    json_error(body, code)
    s.close()
ok("a head over 16 KiB: 431; a bad request line or header: 400; HTTP/2.0: 505")

# Two requests in one write: two answers, in order.
s = conn()
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
st1, _, _, rest = answer(s)
assert st1 == 200, st1
if rest:
    # The second answer may have come in the same read.
    class Pre:
        def __init__(self, data, s): self.data, self.s = data, s
        def recv(self, n):
            if self.data:
                d, self.data = self.data, b""
                return d
            return self.s.recv(n)
    st2 = answer(Pre(rest, s))[0]
else:
    st2 = answer(s)[0]
assert st2 == 404, st2
s.close()
ok("two requests in one write: 200 then 404")

# An HTTP publish is acked afterwards.
s = conn()
body = json.dumps({"key": "k", "value": "after"}).encode()
s.sendall(b"POST /v1/topics/limits/messages HTTP/1.1\r\nHost: x\r\n"
          b"Authorization: Bearer " + TOKEN.encode() +
          b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
st, _, b, _ = answer(s)
assert st == 200 and json.loads(b)["published"] == 1, (st, b)
ok("a publish afterwards is acked")
PY
rc=$?
while read -r line; do
    case $line in
        ok:*) mrt_pass "${line#ok: }" ;;
        *) echo "$line" ;;
    esac
done <"$work/driver.out"
[[ $rc -eq 0 ]] || mrt_fail "the driver exited $rc"
mrt_stop_daemon
mrt_finish 30 "$log"
