#!/usr/bin/env bash
# Fuzz the HTTP API's own parsing (broker/http_fuzz.c: request targets,
# publish bodies made into frames, settle handles) with libFuzzer for
# MR_HTTP_FUZZ_SECONDS (default 20), from tests/fuzz/corpus/http
# (run_fuzz.sh says the rest of the environment and the exit codes).
MR_FUZZ_SECONDS=${MR_HTTP_FUZZ_SECONDS:-20} \
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_fuzz.sh" http_fuzz \
    tests/fuzz/corpus/http broker/http_fuzz.c broker/http_parse.c \
    proto/frame.c core/base64.c core/error.c -- -ljansson
