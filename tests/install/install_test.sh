#!/usr/bin/env bash
# The C API as a service gets it: install the build into a fresh prefix
# (then move the tree, as it is relocatable), take README.md's C example
# from its fenced ```c block, build it with nothing but
# `pkg-config --cflags --libs mailroom` and again through a CMake project
# with find_package(mailroom), and run each build against the installed
# mailroomd on its embedded cluster: each prints
# `orders/<partition>@<offset> id=<uuid>`.
#
# Usage: install_test.sh CC [SANITIZERS]
#   CC          the C compiler of the build
#   SANITIZERS  the build's MR_SANITIZER list, if any: a sanitized
#               libmailroom needs the same -fsanitize flags in the program
# Environment: MR_SOURCE_DIR, MR_BINARY_DIR.
set -uo pipefail

cc=${1:?usage: install_test.sh CC [SANITIZERS]}
sanitizers=${2:-}
: "${MR_SOURCE_DIR:?MR_SOURCE_DIR must name the source directory}"
: "${MR_BINARY_DIR:?MR_BINARY_DIR must name the build directory}"
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
mrt_need cmake pkg-config python3 timeout
san_flags=()
if [[ -n $sanitizers ]]; then
    san_flags=(-fsanitize="$sanitizers" -fno-omit-frame-pointer)
fi

mrt_workdir install

# die WHAT: a step the rest depends on failed.
die() {
    echo "FAIL: $*"
    exit 1
}

# --- install, then move: nothing may point back to the first place -----------
cmake --install "$MR_BINARY_DIR" --prefix "$work/staged" >"$work/install.log" 2>&1 ||
    die "cmake --install: $(tail -5 "$work/install.log")"
mv "$work/staged" "$work/prefix"
prefix=$work/prefix
mrt_pass "installed, and moved to $prefix"
for h in mailroom.h version.h error.h envelope.h client.h consumer.h actor.h supervisor.h mirror.h; do
    [[ -f $prefix/include/mailroom/$h ]] || mrt_fail "include/mailroom/$h is not installed"
done
pc=$(find "$prefix" -name mailroom.pc -path '*/pkgconfig/*' | head -1)
[[ -n $pc ]] || die "no mailroom.pc under $prefix"

# --- README.md's C example, as written ----------------------------------------
awk '/^```c$/ { n++; inside = (n == 1); next }
     /^```/ { inside = 0 }
     inside' "$MR_SOURCE_DIR/README.md" >"$work/example.c"
[[ -s $work/example.c ]] || die "README.md has no fenced \`\`\`c block"

# --- pkg-config only ----------------------------------------------------------
export PKG_CONFIG_PATH=${pc%/mailroom.pc}
pc_prefix=$(cd "$(pkg-config --variable=prefix mailroom)" 2>/dev/null && pwd -P)
[[ $pc_prefix == "$(cd "$prefix" && pwd -P)" ]] ||
    mrt_fail "mailroom.pc's prefix is '$(pkg-config --variable=prefix mailroom)', not the installed tree $prefix"
read -r -a pc_flags <<<"$(pkg-config --cflags --libs mailroom)" ||
    die "pkg-config --cflags --libs mailroom failed"
if "$cc" -Wall -Wextra -Werror "${san_flags[@]}" "$work/example.c" \
    "${pc_flags[@]}" -o "$work/example-pc" >"$work/cc.log" 2>&1; then
    mrt_pass "README's example builds with $cc and pkg-config's ${pc_flags[*]}"
else
    mrt_fail "README's example does not build with pkg-config's ${pc_flags[*]}: $(head -c 1500 "$work/cc.log")"
fi

# --- CMake: find_package(mailroom) -------------------------------------------
cm_flags=()
if [[ -n $sanitizers ]]; then
    cm_flags=(-DCMAKE_C_FLAGS="${san_flags[*]}")
fi
if cmake -S "$MR_SOURCE_DIR/tests/install/example" -B "$work/cmake" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
    -DMR_EXAMPLE_SOURCE="$work/example.c" "${cm_flags[@]}" \
    >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1; then
    mrt_pass "README's example builds with find_package(mailroom)"
    found=$(sed -n 's/^mailroom_DIR:PATH=//p' "$work/cmake/CMakeCache.txt")
    [[ $found == "$prefix"/* ]] || mrt_fail "find_package(mailroom) found '$found', not the installed tree"
else
    mrt_fail "README's example does not build with find_package(mailroom): $(tail -c 1500 "$work/cmake.log")"
fi

# --- run each build against the installed mailroomd ---------------------------
MR="$prefix/bin/mailroom"
MRD="$prefix/bin/mailroomd"
mrt_start_daemon mailroomd

# run NAME PROGRAM [ENV...]: it prints one ack line; its partition and
# offset go to $work/acks.
run() {
    local name=$1 prog=$2 out
    shift 2
    if [[ ! -x $prog ]]; then
        mrt_fail "$name: not built"
        return
    fi
    out=$(env MAILROOM_URL="$url" "$@" timeout 60 "$prog" 2>&1)
    if [[ $? -eq 0 && $out =~ ^orders/([0-9]+)@([0-9]+)\ id=[0-9a-f-]{36}$ ]]; then
        mrt_pass "$name prints '$out'"
        echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" >>"$work/acks"
    else
        mrt_fail "$name: expected 'orders/<partition>@<offset> id=<uuid>', got '$out'"
    fi
}
: >"$work/acks"
run "the pkg-config build" "$work/example-pc" \
    LD_LIBRARY_PATH="$(pkg-config --variable=libdir mailroom)"
run "the CMake build (mailroom::mailroom)" "$work/cmake/publish_shared"
run "the CMake build (mailroom::mailroom_static)" "$work/cmake/publish_static"
# Key 42 always goes to one partition, and each publish is a new record.
python3 - "$work/acks" <<'PY' || mrt_fail "acks not on one partition at rising offsets: $(tr '\n' ' ' <"$work/acks")"
import sys
acks = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
assert len({p for p, _ in acks}) <= 1
assert all(a[1] < b[1] for a, b in zip(acks, acks[1:]))
PY

mrt_stop_daemon
mrt_finish 30 "$work/mailroomd.log"
