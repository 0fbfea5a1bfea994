#!/usr/bin/env bash
# Real-Kafka test harness for mailroom: a single-node KRaft broker+controller
# (Apache Kafka 4.1.1) on 127.0.0.1, run from jars fetched with Maven into a
# cache outside the repository.
#
# Usage:
#   kafka.sh fetch        fetch the Kafka 4.1.1 jars into the cache (idempotent)
#   kafka.sh check        exit 0 if a broker can be run here (fetches the jars if
#                         needed); else print a one-line reason, exit 77 (SKIP)
#   kafka.sh start DIR    start (format on first use) a broker in DIR, wait until
#                         it serves metadata, print "127.0.0.1:PORT" on stdout
#                         (also written to DIR/bootstrap); restarting a DIR that
#                         was already formatted reuses its ports and data
#   kafka.sh stop DIR     SIGTERM the broker, SIGKILL after 30 s; no-op if stopped
#   kafka.sh kill9 DIR    SIGKILL the broker at once (fault tests)
#
# Environment:
#   MAILROOM_KAFKA_CACHE  jar cache (default $HOME/.cache/mailroom/kafka-4.1.1)
#   MAILROOM_KAFKA_TTL    seconds a broker may live before a watchdog stops it
#                         (default 3600)
#   MAILROOM_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
#
# Exit codes: 0 ok; 1 failure (fetch/start failed, timeout, port taken);
#             2 usage error; 77 (check only) cannot run Kafka here.
# Progress and diagnostics go to stderr; only results go to stdout.
set -euo pipefail

KAFKA_VERSION=4.1.1
SLF4J_VERSION=1.7.36   # must match the slf4j-api that kafka-clients pulls in (1.7.36 for 4.1.1)
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
CACHE="${MAILROOM_KAFKA_CACHE:-${HOME:-/root}/.cache/mailroom/kafka-${KAFKA_VERSION}}"
LIBS="$CACHE/libs"
MARKER="$CACHE/.fetched-${KAFKA_VERSION}-slf4j-${SLF4J_VERSION}"
TTL="${MAILROOM_KAFKA_TTL:-3600}"
START_TIMEOUT="${MAILROOM_KAFKA_START_TIMEOUT:-90}"
JAVA_OPTS=(-Xms256m -Xmx512m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError
           -XX:-UsePerfData -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
           -Dorg.slf4j.simpleLogger.showDateTime=true
           "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss,SSS"
           -Dorg.slf4j.simpleLogger.defaultLogLevel=info)

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() {   # usage [STATUS]
    sed -n '/^# Usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p' >&2
    exit "${1:-2}"
}

write_pom() {
    local a deps=""
    for a in kafka_2.13 kafka-server kafka-storage kafka-tools kafka-clients; do
        deps+="    <dependency><groupId>org.apache.kafka</groupId><artifactId>$a</artifactId><version>$KAFKA_VERSION</version></dependency>"$'\n'
    done
    deps+="    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$SLF4J_VERSION</version></dependency>"$'\n'
    cat >"$CACHE/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Throwaway POM written by mailroom tests/kafka/kafka.sh to fetch Kafka jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>mailroom.test</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <properties><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <dependencies>
$deps  </dependencies>
</project>
EOF
}

do_fetch() {
    [[ -f "$MARKER" ]] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found"
    mkdir -p "$CACHE"
    # Serialise concurrent fetches (parallel test runs).
    exec 9>"$CACHE/.lock"
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    [[ -f "$MARKER" ]] && return 0
    log "fetching Apache Kafka $KAFKA_VERSION jars with Maven into $LIBS"
    write_pom
    rm -rf "$LIBS.tmp"
    if ! (cd "$CACHE" && mvn -q -B -ntp -Dstyle.color=never -f pom.xml \
            "$DEP_PLUGIN:copy-dependencies" \
            -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" 2>&1 \
            | sed 's/\x1b\[[0-9;]*m//g' | { grep -v '^[[:space:]]*$' || true; }) >&2; then
        rm -rf "$LIBS.tmp"
        die "maven could not fetch the Kafka jars"
    fi
    ls "$LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar" "$LIBS.tmp/kafka-clients-$KAFKA_VERSION.jar" \
        >/dev/null 2>&1 || die "fetched jars incomplete"
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    rm -f "$CACHE"/.fetched-*
    ls "$LIBS" >"$MARKER"
    log "fetched $(wc -l <"$MARKER") jars"
}

do_check() {
    local t
    for t in java kcat; do
        command -v "$t" >/dev/null 2>&1 || { echo "$t not found"; exit 77; }
    done
    if [[ ! -f "$MARKER" ]]; then
        command -v mvn >/dev/null 2>&1 || { echo "mvn not found and Kafka jars not cached in $CACHE"; exit 77; }
        if ! do_fetch_sub; then
            echo "could not fetch Kafka $KAFKA_VERSION jars with Maven (see stderr)"; exit 77
        fi
    fi
    exit 0
}
# fetch in a subshell so its `die` does not end check with status 1
do_fetch_sub() { ( do_fetch ); }

# --- helpers for start/stop -------------------------------------------------

pid_alive() {   # running and not a zombie awaiting reaping
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local st
    st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}
read_pid() { [[ -f "$1" ]] && tr -dc '0-9' <"$1" || true; }

# Is the broker pid in DIR still our java process?
broker_pid() {
    local dir=$1 pid
    pid=$(read_pid "$dir/kafka.pid")
    if pid_alive "$pid" && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$dir/server.properties"; then
        echo "$pid"
    fi
}

port_free() {   # port_free PORT -> 0 if nothing listens on 127.0.0.1:PORT
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

pick_ports() {  # prints two distinct free loopback ports
    python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
}

random_cluster_id() {   # Kafka Uuid: 16 random bytes, base64url, no padding
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ ${#id} -eq 22 && $id != -* && $id != AAAAAAAAAAAAAAAAAAAAA[AB] ]] && { echo "$id"; return; }
    done
}

prop() { sed -n "s/^$2=//p" "$1/server.properties" | tail -n 1; }

write_config() {
    local dir=$1 bport=$2 cport=$3
    cat >"$dir/server.properties" <<EOF
# Written by mailroom tests/kafka/kafka.sh: single-node KRaft, Kafka $KAFKA_VERSION.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted broker cannot register until the old
# registration's session expires (DUPLICATE_BROKER_REGISTRATION); default 9 s.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000
auto.create.topics.enable=true
delete.topic.enable=true
# Kafka's default message.max.bytes (about 1 MiB), as users' clusters have:
# the topics mailroom creates must make room for its records themselves.
replica.fetch.max.bytes=16777216
replica.fetch.response.max.bytes=16777216
socket.request.max.bytes=104857600
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.retention.check.interval.ms=300000
log.segment.bytes=67108864
EOF
}

start_watchdog() {
    local dir=$1 pid=$2
    # Own session/process group so stop can kill the watchdog and its sleep together.
    setsid bash -c '
        echo $$ >"$1/watchdog.pid"
        pid=$2; ttl=$3; end=$((SECONDS + ttl))
        while kill -0 "$pid" 2>/dev/null; do
            if (( SECONDS >= end )); then
                echo "kafka.sh watchdog: TTL ${ttl}s reached, stopping broker $pid" >>"$1/kafka.log"
                kill -TERM "$pid" 2>/dev/null
                for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
                kill -KILL "$pid" 2>/dev/null
                exit 0
            fi
            sleep 2
        done' _ "$dir" "$pid" "$TTL" </dev/null >/dev/null 2>&1 &
}

stop_watchdog() {
    local dir=$1 wpid
    wpid=$(read_pid "$dir/watchdog.pid")
    if pid_alive "$wpid"; then kill -TERM -- "-$wpid" 2>/dev/null || kill -TERM "$wpid" 2>/dev/null || true; fi
    rm -f "$dir/watchdog.pid"
}

ready() {   # ready DIR BOOTSTRAP -> 0 once the broker serves metadata listing itself
    local out
    out=$(kcat -L -b "$2" -m 3 -X reconnect.backoff.ms=50 -X reconnect.backoff.max.ms=250 2>/dev/null) || return 1
    grep -q "broker 1 at $2" <<<"$out"
}

do_start() {
    local dir=$1 bport cport pid bootstrap cid deadline t0
    [[ -d "$dir" ]] || die "start: $dir is not a directory"
    dir=$(cd "$dir" && pwd -P)
    command -v java >/dev/null 2>&1 || die "java not found"
    command -v kcat >/dev/null 2>&1 || die "kcat not found"
    do_fetch
    t0=$SECONDS

    if [[ -f "$dir/server.properties" && -f "$dir/data/meta.properties" ]]; then
        bport=$(prop "$dir" listeners | sed -n 's/.*PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p')
        cport=$(prop "$dir" controller.quorum.bootstrap.servers | sed 's/.*://')
        [[ -n "$bport" && -n "$cport" ]] || die "start: cannot read ports from $dir/server.properties"
        bootstrap="127.0.0.1:$bport"
        pid=$(broker_pid "$dir")
        if [[ -n "$pid" ]]; then
            log "broker already running (pid $pid)"
            ready "$dir" "$bootstrap" || die "broker pid $pid is running but not ready"
            echo "$bootstrap"; return 0
        fi
        stop_watchdog "$dir"
        local p
        for p in "$bport" "$cport"; do
            for _ in $(seq 20); do port_free "$p" && break; sleep 0.5; done
            port_free "$p" || die "start: port 127.0.0.1:$p of $dir is taken"
        done
        log "restarting broker in $dir on $bootstrap (controller $cport)"
    else
        rm -rf "$dir/data"
        read -r bport cport < <(pick_ports)
        [[ -n "$bport" && -n "$cport" ]] || die "start: could not pick free ports"
        bootstrap="127.0.0.1:$bport"
        write_config "$dir" "$bport" "$cport"
        cid=$(random_cluster_id)
        log "formatting KRaft storage in $dir/data (cluster id $cid)"
        java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
            -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$LIBS/*" \
            kafka.tools.StorageTool format --standalone --cluster-id="$cid" \
            -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
            || { cat "$dir/format.log" >&2; die "storage format failed"; }
        log "starting broker in $dir on $bootstrap (controller $cport)"
    fi

    rm -f "$dir/kafka.pid" "$dir/bootstrap"
    # Detach fully (own session, no inherited stdio) so `$(kafka.sh start DIR)`
    # returns and the broker outlives this script; the shell writes its own pid
    # then execs java, so kafka.pid is the JVM's pid.
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/kafka.pid" \
        java "${JAVA_OPTS[@]}" -Dkafka.logs.dir="$dir" -cp "$LIBS/*" \
        kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/kafka.log" 2>&1 &
    for _ in $(seq 50); do [[ -s "$dir/kafka.pid" ]] && break; sleep 0.1; done
    pid=$(read_pid "$dir/kafka.pid")
    [[ -n "$pid" ]] || die "broker did not start (see $dir/kafka.log)"
    start_watchdog "$dir" "$pid"

    deadline=$((SECONDS + START_TIMEOUT))
    until ready "$dir" "$bootstrap"; do
        if ! pid_alive "$pid"; then
            tail -n 30 "$dir/kafka.log" >&2
            stop_watchdog "$dir"
            die "broker exited during startup (see $dir/kafka.log)"
        fi
        if (( SECONDS >= deadline )); then
            tail -n 30 "$dir/kafka.log" >&2
            do_stop "$dir"
            die "broker not ready after ${START_TIMEOUT}s (see $dir/kafka.log)"
        fi
        sleep 0.5
    done
    echo "$bootstrap" >"$dir/bootstrap"
    log "broker ready on $bootstrap after $((SECONDS - t0))s (pid $pid)"
    echo "$bootstrap"
}

do_stop() {
    local dir=$1 sig=${2:-TERM} pid
    [[ -d "$dir" ]] || die "stop: $dir is not a directory"
    pid=$(broker_pid "$dir")
    if [[ -n "$pid" ]]; then
        if [[ $sig == KILL ]]; then
            log "SIGKILL broker $pid"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
        else
            log "stopping broker $pid"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 300); do pid_alive "$pid" || break; sleep 0.1; done
            if pid_alive "$pid"; then
                log "broker $pid did not stop in 30s, SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
            fi
        fi
    fi
    stop_watchdog "$dir"
    rm -f "$dir/kafka.pid"
}

cmd=${1:-}
case "$cmd" in
    fetch) [[ $# -eq 1 ]] || usage; do_fetch ;;
    check) [[ $# -eq 1 ]] || usage; do_check ;;
    start) [[ $# -eq 2 ]] || usage; do_start "$2" ;;
    stop)  [[ $# -eq 2 ]] || usage; do_stop "$2" TERM ;;
    kill9) [[ $# -eq 2 ]] || usage; do_stop "$2" KILL ;;
    -h|--help|help) usage 0 ;;
    *) usage ;;
esac
