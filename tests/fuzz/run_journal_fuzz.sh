#!/usr/bin/env bash
# Fuzz the journal's records: their reader and writer and what they do to
# the memory of attempts and acks (consumers/journal_fuzz.c) with libFuzzer
# for MR_JOURNAL_FUZZ_SECONDS (default 20: a small decoder, kept short in
# CI), from tests/fuzz/corpus/journal (run_fuzz.sh says the rest of the
# environment and the exit codes). No Kafka: consumers/journal_mem.c is
# the journal less its topic.
MR_FUZZ_SECONDS=${MR_JOURNAL_FUZZ_SECONDS:-20} \
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_fuzz.sh" journal_fuzz \
    tests/fuzz/corpus/journal consumers/journal_fuzz.c \
    consumers/journal_mem.c consumers/idmap.c consumers/runs.c \
    core/log.c core/error.c core/clock.c
