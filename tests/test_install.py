"""Installs: the wheel a user gets, with and without the native build, and
the sdist and the published wheels installed into fresh virtual environments.

The wheel tests build from a copy of the project's sources (builds leave
build/ and egg-info behind), unpack the wheel, and import slopfast from
there in a fresh interpreter.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import packaging_builds
from conftest import subprocess_env

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md", "_build", "lib", "slopfast",
           "fallbacks"]
BUILT = ("libchunks.", "slopfast-pipeline")

PROBE = r"""
import json, os, slopfast
from slopfast import native
out = {"file": slopfast.__file__, "available": native.available(), "error": native.load_error()}
doc = slopfast.build_markdown([("a.md", "# Hi\n"), ("b.py", "def f():\n    return 1\n")], mode="summary")
out["doc"] = doc
os.environ["SLOPFAST_BACKEND"] = "native"
try:
    slopfast.build_markdown([("a.txt", "x")])
    out["forced"] = "ran"
except slopfast.BackendUnavailable as exc:
    out["forced"] = str(exc)
print(json.dumps(out))
"""


def _sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "libchunks.*", "slopfast-pipeline*")
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    return src


def _wheel(tmp_path: Path, src: Path | None = None, **env: str) -> Path:
    src = src or _sources(tmp_path)
    dist = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
    )
    if proc.returncode != 0 and "No matching distribution" in proc.stderr:
        pytest.skip("the build requirements cannot be fetched here")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = dist.glob("slopfast-*.whl")
    return wheel


def _probe(wheel: Path, tmp_path: Path) -> dict:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = subprocess_env(SLOPFAST_WISDOM="off")
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    env.pop("SLOPFAST_BACKEND", None)
    env.pop("SLOPFAST_LIB", None)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert Path(out["file"]).is_relative_to(site)
    return out


EXPECTED_DOC = ("### `a.md`\n\n```md\n- Hi\n\n```\n\n---\n\n"
                "### `b.py`\n\n```py\ndef f():\n    ...\n\n```")


def test_fallback_only_install(tmp_path):
    src = _sources(tmp_path)
    # a checkout with built files, and a build directory an earlier native build left
    planted = [src / "slopfast" / "libchunks.so", src / "slopfast" / "slopfast-pipeline",
               src / "build" / "lib" / "slopfast" / "libchunks.so"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"built earlier")
    wheel = _wheel(tmp_path, src, SLOPFAST_NO_NATIVE="1")
    assert all(path.read_bytes() == b"built earlier" for path in planted[:2]), "the checkout's files were touched"
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.rsplit("/", 1)[-1].startswith(BUILT)]
    assert "slopfast/fallbacks/aggregate.py" in names and not [n for n in names if n.startswith("fallbacks/")]
    assert wheel.name.endswith("-py3-none-any.whl")
    out = _probe(wheel, tmp_path)
    assert not out["available"] and "SLOPFAST_NO_NATIVE" in out["error"]
    assert out["doc"] == EXPECTED_DOC
    assert out["forced"].startswith("SLOPFAST_BACKEND=native, but native library not found")


def test_default_install_ships_the_native_library(tmp_path):
    wheel = _wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    built = {n.rsplit("/", 1)[-1] for n in names if n.rsplit("/", 1)[-1].startswith(BUILT)}
    if sys.platform.startswith("linux"):
        assert built == {"libchunks.so", "slopfast-pipeline"}
    # a platform wheel (it carries binaries) for any Python 3 (ctypes: no CPython ABI)
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert wheel.name.endswith(f"-py3-none-{platform}.whl"), wheel.name
    out = _probe(wheel, tmp_path)
    assert out["available"], out["error"]
    assert out["doc"] == EXPECTED_DOC and out["forced"] == "ran"


def test_an_editable_install_fails_when_the_native_build_does(tmp_path):
    """setuptools turns an exception in an editable build's build_py into a
    warning and installs the checkout anyway, with no library or the last one
    built: a compiler error must fail `pip install -e` instead."""
    src = _sources(tmp_path)
    with open(src / "lib" / "echo.c", "a") as f:
        f.write("\nint broken(\n")
    hook = "import sys; sys.path.insert(0, '_build'); import slopfast_build; slopfast_build.build_editable(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", hook, str(tmp_path / "wheel")], cwd=src, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0 and "slopfast: the native build failed" in proc.stdout + proc.stderr
    assert not list((src / "slopfast").glob("libchunks.*"))


def test_only_a_native_build_requires_ziglang(tmp_path, monkeypatch):
    """The backend's build requirements: ziglang for a native wheel only."""
    build = pytest.importorskip("build", reason="build is part of the [test] extra")
    import build.env

    src = _sources(tmp_path)
    with build.env.DefaultIsolatedEnv() as env:
        builder = build.ProjectBuilder.from_isolated_env(env, src)
        env.install(builder.build_system_requires)
        monkeypatch.delenv("SLOPFAST_NO_NATIVE", raising=False)
        assert "ziglang==0.15.1" in builder.get_requires_for_build("wheel")
        assert "ziglang==0.15.1" in builder.get_requires_for_build("editable")
        assert not [r for r in builder.get_requires_for_build("sdist") if r.startswith("ziglang")]
        monkeypatch.setenv("SLOPFAST_NO_NATIVE", "1")
        assert not [r for r in builder.get_requires_for_build("wheel") if r.startswith("ziglang")]


# ---- fresh virtual environments ------------------------------------------------

def _venv(path: Path, python: str = sys.executable) -> Path:
    subprocess.run([python, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    return path / ("Scripts" if sys.platform == "win32" else "bin") / "python"


def _install_and_probe(python: Path, target: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLOPFAST_", "PYTHON")) and k != "VIRTUAL_ENV"}
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", target],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env["SLOPFAST_WISDOM"] = "off"
    proc = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert Path(out["file"]).is_relative_to(python.parent.parent), out["file"]
    assert out["available"], out["error"]
    assert out["doc"] == EXPECTED_DOC and out["forced"] == "ran"
    return out


@pytest.mark.packaging
def test_sdist_has_what_the_build_needs(tmp_path):
    names = {n.split("/", 1)[1] for n in tarfile.open(packaging_builds.sdist()).getnames() if "/" in n}
    for name in ["LICENSE", "README.md", "MANIFEST.in", "pyproject.toml", "setup.py", "build.zig",
                 "lib/cflags.txt", "_build/slopfast_build.py", "fallbacks/__init__.py", "slopfast/py.typed"]:
        assert name in names, name
    for pattern in ["lib/*.c", "lib/*.h", "fallbacks/*.py", "slopfast/*.py"]:
        want = {str(p.relative_to(ROOT)) for p in ROOT.glob(pattern)}
        assert want and want <= names, want - names
    assert not [n for n in names if n.rsplit("/", 1)[-1].startswith(BUILT) or "__pycache__" in n], names
    assert not [n for n in names if n.startswith("tests/")]


@pytest.mark.packaging
def test_sdist_builds_and_installs_in_a_fresh_venv(tmp_path):
    python = _venv(tmp_path / "venv")
    _install_and_probe(python, str(packaging_builds.sdist()), tmp_path)
    script = python.parent / ("slopfast.exe" if sys.platform == "win32" else "slopfast")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0 and "aggregate" in proc.stdout, proc.stderr


def _other_pythons() -> list[str]:
    """Interpreters of other Python versions (3.10-3.13) found here."""
    found = {}
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in (10, 11, 12, 13):
        if minor == sys.version_info.minor:
            continue
        for candidate in [shutil.which(f"python3.{minor}"),
                          *sorted(glob.glob(os.path.join(root, "versions", f"3.{minor}.*", "bin", f"python3.{minor}")))]:
            if candidate and subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
                found[minor] = candidate
                break
    return [found[m] for m in sorted(found)]


@pytest.mark.packaging
@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"),
                    reason="installs the x86_64 Linux wheel")
def test_the_linux_wheel_installs_on_other_pythons(tmp_path):
    pythons = _other_pythons()
    if not pythons:
        pytest.skip("no other Python 3.10-3.13 here")
    wheel = packaging_builds.wheels()["manylinux_2_17_x86_64.manylinux2014_x86_64"]
    for i, other in enumerate(pythons[:1] + pythons[-1:] if len(pythons) > 1 else pythons):
        _install_and_probe(_venv(tmp_path / f"venv{i}", other), str(wheel), tmp_path)
