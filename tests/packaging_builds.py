"""What the packaging tests install and inspect, built once per session from
a copy of the checkout (the checkout itself gets no build/ or egg-info):
the sdist (`python -m build --sdist`) and the published wheels
(`tools/build_wheels.py`, which builds them from its own sdist)."""
from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_dir = Path(tempfile.mkdtemp(prefix="slopfast-packaging-"))
atexit.register(shutil.rmtree, _dir, ignore_errors=True)
# the built files in slopfast/ stay in the copy: nothing may ship them
_IGNORE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                 ".zig-cache", "zig-out", ".hypothesis", ".pytest_cache", "data")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kwargs)
    if proc.returncode:
        pytest.fail(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@functools.cache
def source_copy() -> Path:
    pytest.importorskip("build", reason="build is part of the [test] extra")
    src = _dir / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    return src


@functools.cache
def sdist() -> Path:
    out = _dir / "sdist"
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(source_copy())])
    (path,) = out.glob("slopfast-*.tar.gz")
    return path


@functools.cache
def wheels() -> dict[str, Path]:
    """{platform tag of the wheel file name: wheel}. Built with this
    environment's setuptools and ziglang (the [test] extra): zig keeps the
    cross targets' libc builds cached per toolchain, so this is fast after
    the first time."""
    out = _dir / "wheels"
    _run([sys.executable, str(source_copy() / "tools" / "build_wheels.py"), "--out", str(out), "--no-isolation"])
    return {path.name[:-len(".whl")].split("-", 4)[-1]: path for path in out.glob("slopfast-*.whl")}
