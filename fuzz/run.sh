#!/usr/bin/env bash
# fuzz/run.sh SECONDS: build fuzz/fuzz_pipeline.c with libFuzzer + ASan + UBSan
# and fuzz pipeline_run for SECONDS seconds (default 60), one process.
#
# Needs clang with libFuzzer: on Debian `apt-get install clang` (this script
# installs nothing). Work files go to $SLOPFAST_FUZZ_WORK (default fuzz/work,
# git-ignored): the build, the growing corpus (seeded from fuzz/make_seeds.py
# on the first run, kept across runs) and crash artifacts (crash-*, leak-*,
# timeout-*). Exit status: 0 when nothing was found, libFuzzer's otherwise.
# Extra arguments after SECONDS go to libFuzzer (e.g. -max_total_time is set
# from SECONDS; -runs=N, -seed=N).
#
# A crash: reproduce with `fuzz/work/fuzz_pipeline CRASH_FILE`, fix, then copy
# the file to tests/data/fuzz-regressions/ (tests/test_fuzz_regressions.py
# replays that directory on every test run).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
work="$(realpath -m "${SLOPFAST_FUZZ_WORK:-fuzz/work}")"
CC="${CC:-clang}"
python="${PYTHON:-python3}"

if ! command -v "$CC" >/dev/null; then
    echo "fuzz/run.sh: $CC not found (Debian: apt-get install clang)" >&2
    exit 2
fi
mkdir -p "$work/corpus" "$work/artifacts"

sources=$(ls lib/*.c | grep -v '^lib/main.c$')
# shellcheck disable=SC2086
"$CC" $(cat lib/cflags.txt) -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DSLOPFAST_FUZZ_OUT_FD=100 \
    -o "$work/fuzz_pipeline" fuzz/fuzz_pipeline.c $sources

if [ -z "$(ls -A "$work/corpus")" ]; then
    "$python" fuzz/make_seeds.py "$work/corpus"
fi
corpora=("$work/corpus")
[ -d tests/data/fuzz-regressions ] && corpora+=("$PWD/tests/data/fuzz-regressions")

export SLOPFAST_FUZZ_CWD="$PWD/tests/data/wire"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# New inputs are written to the first corpus directory only.
exec "$work/fuzz_pipeline" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -dict="$PWD/fuzz/pipeline.dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$@" \
    "${corpora[@]}" </dev/null
