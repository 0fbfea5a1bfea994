#!/usr/bin/env bash
# Fuzz one libFuzzer target for a bounded time: builds it with clang from
# its sources into a temporary directory, fuzzes a temporary copy of its
# seed corpus, and leaves the repository untouched. Each target has a
# wrapper that names its sources (run_frame_fuzz.sh, run_dlq_fuzz.sh).
#
# Usage: run_fuzz.sh NAME CORPUS SOURCE... [-- LINK_ARG...]
#   NAME      the target's name
#   CORPUS    its seed inputs' folder, from the source tree
#   SOURCE    its sources, from the source tree
#   LINK_ARG  what else it links (e.g. -lrdkafka)
#
# Environment:
#   MR_FUZZ_SECONDS  how long to fuzz (default 60)
#   MR_SOURCE_DIR    the source tree (default: two levels above this script)
#   MR_BINARY_DIR    a build tree; its generated/ holds mailroom/version.h
#                    (generated from core/version.h.in when absent), and a
#                    crashing input is kept in its fuzz-artifacts/
#   MR_FUZZ_CC       the compiler (default clang)
#
# Exit: 0 no crash found; 1 a crash, a leak or a build failure; 77 (skip)
# when clang or its libFuzzer/sanitizer runtimes are missing.
set -euo pipefail

src=${MR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
seconds=${MR_FUZZ_SECONDS:-60}
cc=${MR_FUZZ_CC:-clang}
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -fno-omit-frame-pointer -std=gnu11)

(($# >= 3)) || { echo "usage: $0 NAME CORPUS SOURCE... [-- LINK_ARG...]" >&2; exit 1; }
name=$1
corpus=$2
shift 2
sources=()
while (($# > 0)) && [[ $1 != -- ]]; do
    sources+=("$src/$1")
    shift
done
(($# > 0)) && shift
link=("$@")

log() { printf 'run_fuzz %s: %s\n' "$name" "$*" >&2; }
skip() { echo "SKIP: $*"; exit 77; }

[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] \
    || { log "MR_FUZZ_SECONDS must be a positive integer"; exit 1; }
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-$name.XXXXXX")
keep_tmp=0
cleanup() { if [[ $keep_tmp -eq 0 ]]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT

# Can this clang link a fuzzer with both sanitizers?
cat >"$tmp/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
if ! "$cc" "${flags[@]}" "$tmp/probe.c" -o "$tmp/probe" 2>"$tmp/probe.log"; then
    skip "$cc cannot build a libFuzzer target with ASan+UBSan ($(head -n 1 "$tmp/probe.log"))"
fi

# mailroom/version.h: the build tree's, or one made from the template.
gen=""
if [[ -n ${MR_BINARY_DIR:-} && -f $MR_BINARY_DIR/generated/mailroom/version.h ]]; then
    gen=$MR_BINARY_DIR/generated
else
    gen=$tmp/generated
    mkdir -p "$gen/mailroom"
    sed -e 's/@PROJECT_VERSION_MAJOR@/0/' -e 's/@PROJECT_VERSION_MINOR@/0/' \
        -e 's/@PROJECT_VERSION_PATCH@/0/' -e 's/@PROJECT_VERSION@/0.0.0/' \
        "$src/core/version.h.in" >"$gen/mailroom/version.h"
fi

log "building with $cc"
"$cc" "${flags[@]}" -I"$src" -I"$src/include" -I"$gen" \
    "${sources[@]}" ${link[@]+"${link[@]}"} -o "$tmp/$name"

mkdir -p "$tmp/corpus" "$tmp/artifacts"
cp "$src/$corpus/"* "$tmp/corpus/"

log "fuzzing for ${seconds}s from $(ls "$tmp/corpus" | wc -l) seed inputs"
# libFuzzer exits 77 on a crash by default, which CTest would take for a
# skip: make every failure exit 1.
set +e
(cd "$tmp" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "./$name" -max_total_time="$seconds" -max_len=65536 -timeout=30 \
        -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 \
        -print_final_stats=1 -artifact_prefix="$tmp/artifacts/" \
        "$tmp/corpus")
rc=$?
set -e

if [[ $rc -ne 0 ]] || compgen -G "$tmp/artifacts/*" >/dev/null; then
    keep=$tmp/artifacts
    if [[ -n ${MR_BINARY_DIR:-} && -d $MR_BINARY_DIR ]]; then
        keep=$MR_BINARY_DIR/fuzz-artifacts
        mkdir -p "$keep"
        cp "$tmp/artifacts/"* "$keep/" 2>/dev/null || true
    else
        keep_tmp=1
    fi
    for f in "$tmp/artifacts/"*; do
        [[ -f $f ]] || continue
        log "failing input $(basename "$f") (kept in $keep):"
        od -A d -t x1 "$f" | head -n 40 >&2
    done
    log "FAILED (libFuzzer exit status $rc)"
    exit 1
fi
log "no crash in ${seconds}s"
