#!/usr/bin/env bash
# Publishing to a topic that does not exist, on real Kafka, when topics are
# not created automatically: the publisher gets MR_ENOTOPIC and a sentence
# saying how to create it, within a bounded time, and the topic is not
# created. With auto-creation (the test broker's default) the same publish
# creates the topic and is acked.
#
# The test broker creates topics on demand; mailroomd's producer asks it not
# to (librdkafka's allow.auto.create.topics=false), which is what a cluster
# with auto.create.topics.enable=false looks like to mailroomd.
set -euo pipefail

: "${MR_BINARY_DIR:?}" "${MR_KAFKA_DIR:?}"
if [ -f "$MR_KAFKA_DIR/unavailable" ]; then
	echo "SKIP: $(cat "$MR_KAFKA_DIR/unavailable")"
	exit 77
fi
bootstrap=$(cat "$MR_KAFKA_DIR/bootstrap")
[ -n "$bootstrap" ] || { echo "FAIL: no bootstrap in $MR_KAFKA_DIR"; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

start_mailroomd() { # name, extra args...
	local name=$1
	shift
	"$MR_BINARY_DIR/mailroomd" --brokers "$bootstrap" \
		--listen "ipc://$dir/$name.sock" "$@" >"$dir/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		"$MR_BINARY_DIR/mailroom" --url "ipc://$dir/$name.sock" status \
			>/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "FAIL: mailroomd $name did not start"; cat "$dir/$name.log"
	exit 1
}

start_mailroomd strict --set librdkafka.allow.auto.create.topics=false
topic="missing-$$-$RANDOM"
set +e
out=$(timeout 60 "$MR_BINARY_DIR/mailroom" --url "ipc://$dir/strict.sock" \
	publish --json "$topic/k" hello 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -eq 1 ] || { echo "FAIL: exit $rc, want 1"; exit 1; }
echo "$out" | grep -q '"status":"MR_ENOTOPIC"' ||
	{ echo "FAIL: no MR_ENOTOPIC"; exit 1; }
echo "$out" | grep -q 'mailroom topics create' ||
	{ echo "FAIL: the error does not say how to create the topic"; exit 1; }
if kcat -b "$bootstrap" -L -t "$topic" 2>/dev/null | grep -q "partition 0"; then
	echo "FAIL: the topic was created"
	exit 1
fi

start_mailroomd lenient
"$MR_BINARY_DIR/mailroom" --url "ipc://$dir/lenient.sock" publish \
	"$topic/k" hello
echo "1 passed, 0 failed"
