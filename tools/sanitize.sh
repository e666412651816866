#!/usr/bin/env bash
# tools/sanitize.sh: libchunks and the pipeline binary with AddressSanitizer and
# UndefinedBehaviorSanitizer, and the runs that use them.
#
#   tools/sanitize.sh build            build into $SLOPFAST_SANITIZE_DIR (default build/sanitize)
#   tools/sanitize.sh pytest [ARGS]    build, then the pytest suite against the sanitized library
#   tools/sanitize.sh leaks [ARGS]     build, then every seed request (fuzz/make_seeds.py) and
#                                      golden vector through the sanitized binary, leaks checked
#
# Needs gcc (or CC=clang) with libasan/libubsan (Debian's gcc has them).
# clang's UBSan is the stricter (it reports any offset from a null pointer,
# 0 too: gcc's does not); with clang both builds use its shared ASan runtime
# (-shared-libasan, the one pytest preloads), and the binary finds it by its
# rpath, so it runs with or without the preload.
# Flags: -fsanitize=address,undefined -fno-sanitize-recover=all: the first
# error aborts the call with a report, so no finding passes as a test result.
#
# Under pytest the sanitized libchunks is loaded into an unsanitized Python
# through ctypes (SLOPFAST_LIB), so the ASan runtime is LD_PRELOADed (it
# must be the first library loaded). Leak detection is off there: CPython
# keeps objects alive at exit by design and LeakSanitizer would report them
# all. Leaks of the C code are checked instead by `leaks`, where the
# standalone binary (all C) runs with detect_leaks=1 over every request.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${SLOPFAST_SANITIZE_DIR:-build/sanitize}")"
CC="${CC:-gcc}"
python="${PYTHON:-python}"
cmd="${1:-build}"
shift || true

is_clang() { "$CC" --version 2>/dev/null | grep -q clang; }

runtime() {
    local lib
    if is_clang; then
        lib=$("$CC" -print-file-name="libclang_rt.asan-$(uname -m).so")
    else
        lib=$("$CC" -print-file-name=libasan.so)
    fi
    [ -e "$lib" ] || { echo "sanitize: no ASan runtime found for $CC ($lib)" >&2; exit 2; }
    realpath "$lib"
}

build() {
    mkdir -p "$out"
    local sources flags exe_flags=()
    sources=$(ls lib/*.c | grep -v '^lib/main.c$')
    # shellcheck disable=SC2207
    flags=($(cat lib/cflags.txt) -g -O1 -fno-omit-frame-pointer
           -fsanitize=address,undefined -fno-sanitize-recover=all -DSLOPFAST_BUILD_ID=\"sanitize\")
    if is_clang; then
        flags+=(-shared-libasan)
        exe_flags=(-Wl,-rpath,"$(dirname "$(runtime)")")
    fi
    # shellcheck disable=SC2086
    "$CC" "${flags[@]}" -shared -fPIC -fvisibility=hidden -o "$out/libchunks.so" $sources
    # shellcheck disable=SC2086
    "$CC" "${flags[@]}" "${exe_flags[@]}" -o "$out/slopfast-pipeline" $sources lib/main.c
    echo "sanitize: built $out/libchunks.so and $out/slopfast-pipeline with $CC" >&2
}

case "$cmd" in
build)
    build
    ;;
pytest)
    build
    asan=$(runtime)
    export SLOPFAST_LIB="$out/libchunks.so" SLOPFAST_PIPELINE="$out/slopfast-pipeline"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
    # libstdc++ is preloaded too: ASan intercepts __cxa_throw only if it is
    # there at start, and C++ extension modules (matplotlib's) throw.
    cxx=$(realpath "$("$CC" -print-file-name=libstdc++.so.6)")
    LD_PRELOAD="$asan:$cxx${LD_PRELOAD:+:$LD_PRELOAD}" exec "$python" -m pytest "$@"
    ;;
leaks)
    build
    export ASAN_OPTIONS="detect_leaks=1:exitcode=99:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99:${UBSAN_OPTIONS:-}"
    exec "$python" tools/replay.py --exe "$out/slopfast-pipeline" "$@"
    ;;
*)
    echo "usage: tools/sanitize.sh build | pytest [ARGS] | leaks [ARGS]" >&2
    exit 2
    ;;
esac
