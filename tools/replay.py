"""Replay requests through the standalone pipeline binary and check every run.

    python tools/replay.py --exe PATH [--wrap CMD] [--jobs N] [--sample K] [FILE_OR_DIR ...]

The requests are every seed of fuzz/make_seeds.py (the golden wire vectors,
then v3 and v1 requests for every op over the test corpora) and every file
in tests/data/fuzz-regressions, plus any FILE_OR_DIR given. Each runs as
`WRAP EXE < request` in tests/data/wire (where the vectors' file inputs
live). A run passes when the binary exits 0 (ok response) or 1 (error
response), writes a response to stdout, and its stderr carries no report
of AddressSanitizer, LeakSanitizer, UBSan ("runtime error") or valgrind.
A wrapper that finds a problem must exit with another status: valgrind
with --error-exitcode=99, the sanitizers with exitcode=99 (tools/sanitize.sh
leaks sets it). Exit status 0 when every run passed, 1 otherwise.

    python tools/replay.py --exe slopfast/slopfast-pipeline \\
        --wrap "valgrind -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=99"
"""
from __future__ import annotations

import argparse
import random
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))
WIRE = ROOT / "tests" / "data" / "wire"
REGRESSIONS = ROOT / "tests" / "data" / "fuzz-regressions"
REPORTS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:", b"==ERROR", b"Invalid read",
           b"Invalid write", b"definitely lost", b"Conditional jump")


def collect(extra: list[Path], max_bytes: int) -> list[tuple[str, bytes]]:
    from make_seeds import requests
    out = requests(max_bytes)
    paths = sorted(REGRESSIONS.iterdir()) if REGRESSIONS.is_dir() else []
    for p in extra:
        paths += sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
    out += [(str(p), p.read_bytes()) for p in paths if p.is_file() and p.name != "README.md"]
    return out


def check(cmd: list[str], name: str, blob: bytes, timeout: float) -> str | None:
    """None when the run passed, else what went wrong."""
    try:
        proc = subprocess.run(cmd, input=blob, capture_output=True, cwd=WIRE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"{name}: timed out after {timeout} s"
    report = next((r for r in REPORTS if r in proc.stderr), None)
    if proc.returncode not in (0, 1) or report:
        return f"{name}: exit status {proc.returncode}\n{proc.stderr.decode('utf-8', 'replace')[-4000:]}"
    if not proc.stdout and b"out of memory" not in proc.stderr:
        return f"{name}: no response on stdout\n{proc.stderr.decode('utf-8', 'replace')[-2000:]}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", type=Path, required=True)
    ap.add_argument("--wrap", default="", help="command prefix, e.g. valgrind options")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sample", type=int, default=0, help="run a seeded random K of the requests")
    ap.add_argument("--max-bytes", type=int, default=1 << 16)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("paths", nargs="*", type=Path)
    args = ap.parse_args()
    reqs = collect(args.paths, args.max_bytes)
    if args.sample and args.sample < len(reqs):
        reqs = random.Random(7).sample(reqs, args.sample)
    cmd = shlex.split(args.wrap) + [str(args.exe.resolve())]
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        failures = [f for f in pool.map(lambda r: check(cmd, r[0], r[1], args.timeout), reqs) if f]
    took = time.perf_counter() - start
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    total = sum(len(b) for _, b in reqs)
    print(f"replay: {len(reqs)} requests ({total} bytes) through {' '.join(cmd)}: "
          f"{len(failures)} failed, {took:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
