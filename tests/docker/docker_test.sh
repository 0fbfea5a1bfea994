#!/usr/bin/env bash
# docker/ without a Docker engine (CI has none): the image's build steps
# (docker/build.sh, which the Dockerfile runs) build and install mailroom
# into a fresh tree; the installed mailroomd starts with the image's
# environment (ENV of the Dockerfile's last stage, its URLs moved to free
# loopback ports) and the image's HEALTHCHECK command passes against it;
# the Dockerfile's last stage runs as a user that is not root; the compose
# file parses and holds together (services, health checks, the example
# service's files, volumes, loopback ports), and `docker compose config`
# accepts it where the client has compose.
#
# Environment: MR_SOURCE_DIR, MR_BINARY_DIR (for lib.sh).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
: "${MR_SOURCE_DIR:?MR_SOURCE_DIR must name the source directory}"
mrt_need cmake python3 curl
mrt_workdir docker
src=$MR_SOURCE_DIR
unset MAILROOM_HTTP_LISTEN

# The build steps, as the image runs them.
if BUILD_DIR="$work/build" JOBS=2 timeout 900 bash "$src/docker/build.sh" \
    "$work/out" >"$work/build.log" 2>&1; then
    mrt_pass "docker/build.sh built and installed mailroom"
else
    tail -20 "$work/build.log"
    mrt_fail "docker/build.sh failed"
    mrt_finish
fi
for f in usr/bin/mailroomd usr/bin/mailroom usr/include/mailroom/mailroom.h; do
    [[ -e $work/out/$f ]] || mrt_fail "the image would have no /$f"
done

# The image's environment and health check, from the Dockerfile.
python3 - "$src/docker/Dockerfile" >"$work/image.env" <<'PY' || mrt_fail "the Dockerfile: $(cat "$work/image.env")"
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stages = re.split(r"(?m)^FROM ", text)[1:]
last = stages[-1]
assert stages[0].startswith("debian:12") and last.startswith("debian:12"), "not Debian 12"
users = re.findall(r"(?m)^USER\s+(\S+)", last)
assert users and users[-1] not in ("root", "0"), ("runs as root", users)
env = {}
for line in re.findall(r"(?m)^ENV\s+(.*)$", last):
    for k, v in re.findall(r"(\w+)=(\S+)", line):
        env[k] = v
hc = re.search(r"(?m)^HEALTHCHECK .*CMD\s+(\[.*\])\s*$", last)
assert hc, "no HEALTHCHECK"
cmd = json.loads(hc.group(1))
assert any("/healthz" in a for a in cmd), cmd
assert re.search(r"(?m)^RUN bash docker/build\.sh /out$", stages[0]), "the build stage does not run docker/build.sh"
for k, v in env.items():
    print("%s=%s" % (k, v))
print("HEALTHCHECK=" + json.dumps(cmd))
PY
grep -q '^HEALTHCHECK=' "$work/image.env" &&
    mrt_pass "the Dockerfile: Debian 12, not root, a health check on /healthz"

# Start the installed mailroomd as the image would, on loopback ports.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
while IFS='=' read -r k v; do
    [[ $k == MAILROOM_* ]] || continue
    v=${v//0.0.0.0:7480/127.0.0.1:$port}
    v=${v//tcp:\/\/0.0.0.0:7450/ipc://$work/d.sock}
    v=${v//\/var\/lib\/mailroom/$work}
    export "$k=$v"
done <"$work/image.env"
"$work/out/usr/bin/mailroomd" >"$work/d.log" 2>&1 &
dpid=$!
mrt_track "$dpid"
mapfile -t hc < <(python3 -c 'import json,sys; [print(a.replace("127.0.0.1:7480", "127.0.0.1:'"$port"'")) for a in json.loads(sys.argv[1])]' \
    "$(sed -n 's/^HEALTHCHECK=//p' "$work/image.env")")
ok=""
for _ in $(seq 150); do
    if "${hc[@]}" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$dpid" 2>/dev/null || break
    sleep 0.2
done
if [[ -n $ok ]]; then
    mrt_pass "the image's health check passes: ${hc[*]}"
else
    mrt_fail "the image's health check fails: ${hc[*]}; the log: $(tail -5 "$work/d.log")"
fi
[[ -s $work/http.token ]] && mrt_pass "the image's mailroomd made its HTTP token" ||
    mrt_fail "no token file at the image's http.token_file"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' \
    "$work/d.log" && mrt_pass "the image's mailroomd logs JSON lines" ||
    mrt_fail "the image's log is not JSON lines"
kill -TERM "$dpid"
mrt_wait_exit "$dpid" 30 || mrt_fail "mailroomd did not stop on SIGTERM"

# The compose file.
if python3 - "$src/docker/compose.yaml" <<'PY'
import os, sys, yaml
path = sys.argv[1]
base = os.path.dirname(path)
c = yaml.safe_load(open(path))
s = c["services"]
assert {"kafka", "mailroomd", "orders-consumer"} <= s.keys(), s.keys()
assert "KRaft" in open(path).read() and "broker,controller" in s["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
b = s["mailroomd"]["build"]
assert os.path.isfile(os.path.join(base, b["context"], b["dockerfile"])), b
for name, svc in s.items():
    for dep, cond in (svc.get("depends_on") or {}).items():
        assert dep in s, (name, dep)
        if cond.get("condition") == "service_healthy":
            assert "healthcheck" in s[dep] or dep == "mailroomd", (name, dep)
    for p in svc.get("ports", []):
        assert p.startswith("127.0.0.1:"), ("a port beyond loopback", name, p)
    for v in svc.get("volumes", []):
        host = v.split(":")[0]
        if host.startswith("."):
            assert os.path.exists(os.path.join(base, host)), (name, host)
        else:
            assert host in (c.get("volumes") or {}), (name, host)
cmd = s["orders-consumer"]["command"]
assert os.path.basename(cmd[1]) == "consume.py" and \
    os.path.isfile(os.path.join(base, "../examples/python/consume.py")), cmd
PY
then
    mrt_pass "compose.yaml: Kafka (KRaft), mailroomd, the example service, health checks, volumes, loopback ports"
else
    mrt_fail "compose.yaml does not hold together"
fi
if docker compose version >/dev/null 2>&1; then
    docker compose -f "$src/docker/compose.yaml" config -q &&
        mrt_pass "docker compose config accepts it" ||
        mrt_fail "docker compose config refuses it"
else
    echo "note: no docker compose here: its own check is not run"
fi
mrt_finish 20 "$work/d.log"
