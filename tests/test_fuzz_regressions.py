"""Replay tests/data/fuzz-regressions (inputs that once crashed libchunks) and a
sample of the fuzz seeds (fuzz/make_seeds.py: every op) through the library,
the standalone binary and, when gcc's ASan is there, an ASan+UBSan build of
the binary with leak detection: an ok or an error response, never a crash."""
from __future__ import annotations

import ctypes
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slopfast import native, wire

ROOT = Path(__file__).resolve().parent.parent
WIRE = ROOT / "tests" / "data" / "wire"
REGRESSIONS = ROOT / "tests" / "data" / "fuzz-regressions"
sys.path.insert(0, str(ROOT / "fuzz"))

REPORTS = (b"AddressSanitizer", b"LeakSanitizer", b"runtime error:")


def cases() -> list[tuple[str, bytes]]:
    from make_seeds import requests
    files = [(p.name, p.read_bytes()) for p in sorted(REGRESSIONS.iterdir()) if p.is_file() and p.name != "README.md"]
    seeds = random.Random(1).sample(requests(), 40)
    return files + [(f"seed-{name}", blob) for name, blob in seeds]


CASES = cases()
IDS = [name[:60] for name, _ in CASES]


@pytest.fixture(scope="module", params=["gcc", "clang"])
def asan_exe(request, tmp_path_factory):
    """The binary built by tools/sanitize.sh with each compiler: clang's UBSan
    also reports an offset applied to a null pointer (even 0), gcc's does not."""
    cc = request.param
    if sys.platform != "linux" or shutil.which(cc) is None:
        pytest.skip(f"the ASan build needs {cc} on Linux")
    if cc == "gcc":
        libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(libasan):
            pytest.skip("gcc has no ASan runtime")
    out = tmp_path_factory.mktemp("asan-" + cc)
    proc = subprocess.run(["bash", str(ROOT / "tools" / "sanitize.sh"), "build"], capture_output=True, text=True,
                          env={**os.environ, "SLOPFAST_SANITIZE_DIR": str(out), "CC": cc})
    assert proc.returncode == 0, proc.stderr
    return out / "slopfast-pipeline"


def test_regression_directory_is_documented():
    assert (REGRESSIONS / "README.md").is_file()


@pytest.mark.parametrize("name, blob", CASES, ids=IDS)
def test_in_process(lib, monkeypatch, name, blob):
    monkeypatch.chdir(WIRE)
    resp = lib.run(blob, len(blob))
    try:
        r = resp.contents
        code, data = r.code, ctypes.string_at(r.data, r.len) if r.len else b""
    finally:
        lib.free(resp)
    assert 0 <= code <= 7
    assert wire.decode_response(data).code == code


def test_standalone_binary(lib):
    exe = native.binary_path()
    if not exe.exists():
        pytest.skip(f"pipeline binary not found at {exe}")
    for name, blob in CASES:
        proc = subprocess.run([str(exe)], input=blob, capture_output=True, cwd=WIRE, timeout=60)
        assert proc.returncode in (0, 1), (name, proc.returncode, proc.stderr[-2000:])


def test_asan_binary_with_leak_detection(asan_exe):
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:exitcode=99",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=99"}
    env.pop("LD_PRELOAD", None)
    for name, blob in CASES:
        proc = subprocess.run([str(asan_exe)], input=blob, capture_output=True, cwd=WIRE, timeout=120, env=env)
        assert proc.returncode in (0, 1) and not any(r in proc.stderr for r in REPORTS), \
            (name, proc.returncode, proc.stderr.decode("utf-8", "replace")[-4000:])


@pytest.mark.skipif(shutil.which("valgrind") is None or os.environ.get("SLOPFAST_VALGRIND") != "1",
                    reason="set SLOPFAST_VALGRIND=1 to run every op's requests under valgrind memcheck")
def test_every_op_under_valgrind():
    """The regressions and seed sample (every op, v1 and v3) through the shipped
    binary under memcheck: no invalid access, no leak (tools/replay.py does all seeds)."""
    exe = native.binary_path()
    if not exe.exists():
        pytest.skip(f"pipeline binary not found at {exe}")
    cmd = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=all", "--error-exitcode=99", str(exe)]
    for name, blob in CASES:
        proc = subprocess.run(cmd, input=blob, capture_output=True, cwd=WIRE, timeout=300)
        assert proc.returncode in (0, 1), (name, proc.returncode, proc.stderr.decode("utf-8", "replace")[-4000:])
