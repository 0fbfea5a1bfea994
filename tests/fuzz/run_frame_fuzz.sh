#!/usr/bin/env bash
# Fuzz the frame decoders and SUBSCRIBE's JSON (proto/frame_fuzz.c) with
# libFuzzer for MR_FUZZ_SECONDS (default 60), from tests/fuzz/corpus/frame
# (run_fuzz.sh says the rest of the environment and the exit codes).
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_fuzz.sh" frame_fuzz \
    tests/fuzz/corpus/frame proto/frame_fuzz.c proto/frame.c \
    proto/consume.c proto/subscribe.c proto/assignment.c core/error.c
