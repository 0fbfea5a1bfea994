#!/usr/bin/env bash
# Fuzz the dead-letter headers' reader and builder and the reason's
# fingerprint (dlq/record_fuzz.c) with libFuzzer for MR_DLQ_FUZZ_SECONDS
# (default 20: a small decoder, kept short in CI), from
# tests/fuzz/corpus/dlq (run_fuzz.sh says the rest of the environment and
# the exit codes). The fingerprint's hash is the journal's
# (consumers/journal_mem.c, which brings its memory along); the envelope
# brings librdkafka.
MR_FUZZ_SECONDS=${MR_DLQ_FUZZ_SECONDS:-20} \
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_fuzz.sh" dlq_record_fuzz \
    tests/fuzz/corpus/dlq dlq/record_fuzz.c dlq/record.c dlq/fingerprint.c \
    bridge/envelope.c consumers/journal_mem.c consumers/idmap.c \
    consumers/runs.c core/clock.c core/log.c core/error.c -- -lrdkafka
