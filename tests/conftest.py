"""Shared fixtures: native availability and backend forcing."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from slopfast import dispatch, native

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory):
    """Tests (and the commands they run) keep their cache (the parsed token
    ranks) in a directory of the session's, never in the user's."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(autouse=True)
def _no_wisdom_file(monkeypatch):
    """Tests never read or write the user's wisdom file."""
    if "SLOPFAST_WISDOM" not in os.environ:
        monkeypatch.setenv("SLOPFAST_WISDOM", "off")
    dispatch.reset()
    yield
    dispatch.reset()


def require_native() -> None:
    """The one policy for a missing native library: a failure, unless this is
    a fallback-only install by design (SLOPFAST_NO_NATIVE=1), where the
    native half of a test is skipped with the reason."""
    if native.available():
        return
    if os.environ.get("SLOPFAST_NO_NATIVE", "") not in ("", "0"):
        pytest.skip(f"fallback-only install: {native.load_error()}")
    pytest.fail(f"native library did not load: {native.load_error()}")


@pytest.fixture
def needs_native():
    require_native()


@pytest.fixture(scope="module")
def lib():
    """The in-process library (slopfast.native's ctypes handle)."""
    require_native()
    return native._load()


@pytest.fixture(params=["native", "fallback"])
def backend(request, monkeypatch) -> str:
    """The test runs once per backend, forced with SLOPFAST_BACKEND. Op test
    modules mark themselves `pytest.mark.each_backend`: every test of theirs
    that does not compare the backends itself (`backends`, `lib`) gets it."""
    if request.param == "native":
        require_native()
    monkeypatch.setenv("SLOPFAST_BACKEND", request.param)
    return request.param


def pytest_configure(config):
    config.addinivalue_line("markers", "each_backend: run each test of the module on both backends")


def pytest_generate_tests(metafunc):
    names = set(metafunc.fixturenames)
    if metafunc.definition.get_closest_marker("each_backend") and not names & {"backend", "backends", "lib", "needs_native"}:
        metafunc.fixturenames.append("backend")
        metafunc.parametrize("backend", ["native", "fallback"], indirect=True)


@pytest.fixture
def backends(monkeypatch, needs_native):
    """Call `run(fn)` to get fn()'s result under the native and the fallback backend."""

    def run(fn):
        out = []
        for backend in ("native", "fallback"):
            monkeypatch.setenv("SLOPFAST_BACKEND", backend)
            out.append(fn())
        monkeypatch.delenv("SLOPFAST_BACKEND")
        return out

    return run


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env
