#!/usr/bin/env bash
# CTest fixture for the tests that need a real Kafka: one broker (Apache
# Kafka 4.1.1, through kafka.sh) shared by every test labelled `kafka`.
#
# Usage:
#   fixture.sh start DIR   empty DIR; if Kafka cannot run on this machine
#                          (kafka.sh check exits 77), write the reason to
#                          DIR/unavailable and succeed, so that dependent
#                          tests skip with it; else start a broker in
#                          DIR/broker and write its bootstrap to DIR/bootstrap
#   fixture.sh stop DIR    stop the broker of DIR/broker (no-op if none)
#
# A test reads DIR/bootstrap, or prints DIR/unavailable and exits 77.
# A start that fails after check passed is a real failure: exit 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_sh="$here/kafka.sh"
# A broker left behind by a crashed run stops on its own.
export MAILROOM_KAFKA_TTL="${MAILROOM_KAFKA_TTL:-3000}"

log() { printf 'fixture.sh: %s\n' "$*" >&2; }
usage() {
    echo "usage: fixture.sh start|stop DIR" >&2
    exit 2
}

do_start() {
    local dir=$1 reason rc bootstrap

    # A broker of an earlier run in DIR would hold its ports: stop it first.
    if [[ -d "$dir/broker" ]]; then
        bash "$kafka_sh" stop "$dir/broker" || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    rc=0
    reason=$(bash "$kafka_sh" check) || rc=$?
    if [[ $rc -eq 77 ]]; then
        reason=${reason:-kafka.sh check: cannot run Kafka here}
        log "real Kafka unavailable: $reason"
        printf 'real Kafka unavailable: %s\n' "$reason" >"$dir/unavailable"
        return 0
    fi
    if [[ $rc -ne 0 ]]; then
        log "kafka.sh check failed with status $rc: $reason"
        return 1
    fi
    mkdir -p "$dir/broker"
    if ! bootstrap=$(bash "$kafka_sh" start "$dir/broker"); then
        log "kafka.sh start failed although check passed (see $dir/broker/kafka.log)"
        return 1
    fi
    if [[ -z "$bootstrap" ]]; then
        log "kafka.sh start printed no bootstrap"
        bash "$kafka_sh" stop "$dir/broker" || true
        return 1
    fi
    printf '%s\n' "$bootstrap" >"$dir/bootstrap"
    log "Kafka ready at $bootstrap"
}

do_stop() {
    local dir=$1

    if [[ -d "$dir/broker" ]]; then
        bash "$kafka_sh" stop "$dir/broker"
    fi
    return 0
}

[[ $# -eq 2 ]] || usage
case "$1" in
    start) do_start "$2" ;;
    stop) do_stop "$2" ;;
    *) usage ;;
esac
