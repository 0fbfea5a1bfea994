#!/usr/bin/env bash
# Every test, as CI runs it: install what is missing, fetch the test Kafka's
# jars with Maven, build with warnings as errors and run the whole suite
# (unit, embedded, real Kafka, fault, bounded fuzzing); then build again with
# AddressSanitizer and UndefinedBehaviorSanitizer and run the suite again
# (but the fuzzers and the label twin),
# and once more with ThreadSanitizer for the unit tests and the C API suites.
# Tests that need real Kafka report skipped, with the reason, when it cannot
# start here.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh test
# The jars go to a cache outside the repository; a failure here is not
# fatal: the real-Kafka tests then report skipped with the reason.
bash tests/kafka/kafka.sh fetch || echo "test: cannot fetch Kafka's jars;" \
	"the real-Kafka tests will be skipped" >&2

jobs=$(nproc)
# Bounded fuzzing: the frame decoder, the dead-letter headers and the
# journal's records (a small reader, fuzzed for minutes when it came), from
# their corpora, 10 s each; the HTTP API's parsing, newer, 20 s.
export MR_FUZZ_SECONDS=${MR_FUZZ_SECONDS:-10}
export MR_DLQ_FUZZ_SECONDS=${MR_DLQ_FUZZ_SECONDS:-10}
export MR_JOURNAL_FUZZ_SECONDS=${MR_JOURNAL_FUZZ_SECONDS:-10}
export MR_HTTP_FUZZ_SECONDS=${MR_HTTP_FUZZ_SECONDS:-20}

# Run the tests of build directory $1 but those with a label matching $2
# (a regex; empty: none left out) and but those ctest's further arguments
# leave out: the ones labelled unit (each in process, with no timing to
# keep) $jobs at a time, then the others $jobs at a time too: they start
# mailroomd and Kafka, kill processes and wait on them, mostly waiting
# (every wait is bounded, no check is on a duration), and those that must
# run alone say so (RUN_SERIAL, tests/CMakeLists.txt: the three that stop
# the shared Kafka, and the heaviest).
run_tests() {
	local dir=$1 out=$2
	shift 2
	(cd "$dir" && ctest --output-on-failure --no-tests=error -j"$jobs" \
		-L '^unit$' ${out:+-LE "$out"} "$@")
	(cd "$dir" && ctest --output-on-failure --no-tests=error -j"$jobs" \
		-LE "^unit\$${out:+|$out}" "$@")
}

echo "== build (warnings are errors) ==" >&2
cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMR_WERROR=ON \
	>/dev/null
cmake --build build-ci -j"$jobs" >/dev/null
run_tests build-ci ""

echo "== build with address and undefined sanitizers ==" >&2
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DMR_WERROR=ON \
	-DMR_SANITIZER=address,undefined -DMR_BENCH=OFF >/dev/null
cmake --build build-san -j"$jobs" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The fuzzer already ran under both sanitizers in the first pass, and
# docker/'s build steps (label docker) need running once; the
# real-Kafka twins of embedded suites (label twin: the same code paths,
# against another broker: crash, consume restart, publish and consume API,
# settle, consume-run restart, shutdown, dead letters, replay, lag,
# backpressure) ran in the first pass and are left out here to keep CI
# within its budget.
# The kill -9 test streams half as many messages here (the three kills
# land at the same fractions of the stream). The CLI consumer's restart
# test is left out too: crash_embedded restarts mailroomd under that
# consumer three times here; and so is the console's browser test: the C
# it drives is the HTTP API's, which http_embedded and http_limits_embedded
# drive here.
export MR_CRASH_MESSAGES=${MR_CRASH_MESSAGES:-50000}
run_tests build-san '^(fuzz|twin|docker)$' \
	-E '^(consume_restart_embedded|console_embedded)$'

# ThreadSanitizer, within CI's budget: the unit label (which holds the
# concurrent parts' own tests: the group, the journal, the subscription
# registry, the front door, the publisher, admin, the actor runtime and
# its test kit) but its two single-threaded simulations (the delivery
# engine's, the order's), the four C API suites (coalesce_api: the
# client's coalescing from four threads), mirrored actors
# (durable, and reached by address) end to end, and the HTTP API with its
# metrics (its threads: nng's callbacks, the session reaper, the front
# door's). core/tsan_thrd.c and
# tests/tsan.supp say why librdkafka needs a shim and what is quieted.
echo "== build with the thread sanitizer ==" >&2
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMR_WERROR=ON \
	-DMR_SANITIZER=thread -DMR_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$jobs" >/dev/null
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
(cd build-tsan && ctest --output-on-failure --no-tests=error -j"$jobs" \
	-L '^unit$' -LE '^fuzz$' -E '^(engine_sim_test|order_sim_test)$')
(cd build-tsan && ctest --output-on-failure --no-tests=error \
	-R '^(publish_api|consume_api|order_api|coalesce_api|mirror|mirror_durable|router|http|http_metrics)_embedded$')
echo "== passed; artifacts: $PWD/build-ci/artifacts (the console's screenshots) ==" >&2
