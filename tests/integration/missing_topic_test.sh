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

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mrt_binaries
mrt_kafka
mrt_workdir missing

mrt_start_daemon strict --set librdkafka.allow.auto.create.topics=false
topic="missing-$$-$RANDOM"
set +e
out=$(timeout 60 "$MR" --url "$url" publish --json "$topic/k" hello 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -eq 1 ] || { echo "FAIL: exit $rc, want 1"; exit 1; }
echo "$out" | grep -q '"status":"MR_ENOTOPIC"' ||
	{ echo "FAIL: no MR_ENOTOPIC"; exit 1; }
echo "$out" | grep -q 'mailroom topics create' ||
	{ echo "FAIL: the error does not say how to create the topic"; exit 1; }
if kcat -b "$brokers" -L -t "$topic" 2>/dev/null | grep -q "partition 0"; then
	echo "FAIL: the topic was created"
	exit 1
fi

mrt_start_daemon lenient
"$MR" --url "$url" publish "$topic/k" hello
echo "1 passed, 0 failed"
