"""Test builds of libchunks and the pipeline binary (ziglang cc, as setup.py
builds them), with extra flags: SLOPFAST_TEST_HOOKS (fail_after, the crash
op) and -D overrides of the byte limits in lib/op.h. Built once per flag set
per test session into a temporary directory."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from slopfast import native

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"
CFLAGS = (LIB / "cflags.txt").read_text().split()
_dir = Path(tempfile.mkdtemp(prefix="slopfast-test-builds-"))


def _cc(args: list[str]) -> None:
    try:
        import ziglang  # noqa: F401
    except ImportError:
        pytest.skip("ziglang (a test dependency) is not installed")
    cmd = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, "-O1", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"build failed: {' '.join(cmd)}\n{proc.stderr}")


def _sources() -> list[str]:
    return sorted(str(p) for p in LIB.glob("*.c") if p.name != "main.c")


def _key(flags: tuple[str, ...]) -> str:
    digest = hashlib.sha256(" ".join(flags).encode())
    for p in sorted(LIB.glob("*.[ch]")):
        digest.update(p.name.encode() + p.read_bytes())
    return digest.hexdigest()[:12]


def library(*flags: str) -> native._Library:
    """libchunks with `flags` (e.g. "-DSLOPFAST_TEST_HOOKS"), loaded."""
    out = _dir / f"{_key(flags)}-{native.library_filename()}"
    if not out.exists():
        shared = ["-shared"] + ([] if sys.platform == "win32" else ["-fPIC"])
        _cc([*shared, *flags, "-o", str(out), *_sources()])
    return native._Library(out)


def binary(*flags: str) -> Path:
    """The standalone pipeline binary with `flags`."""
    out = _dir / (f"{_key(flags)}-slopfast-pipeline" + (".exe" if sys.platform == "win32" else ""))
    if not out.exists():
        _cc([*flags, "-o", str(out), *_sources(), str(LIB / "main.c")])
    return out
