"""Crash survival: the `crash` op exists only in SLOPFAST_TEST_HOOKS builds
(lib/test_hooks.c, lib/op_table.h); a pipeline process it kills becomes a
clear PipelineError on the subprocess transport, not a hang or a dead
interpreter. The shipped library and binary do not know the op."""
from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest

import native_builds
from conftest import require_native
from slopfast import native, wire
from slopfast.errors import PipelineError

ROOT = Path(__file__).resolve().parent.parent
posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture(scope="module")
def crash_exe():
    return native_builds.binary("-DSLOPFAST_TEST_HOOKS")


@pytest.fixture
def subprocess_transport(monkeypatch, crash_exe):
    monkeypatch.setenv("SLOPFAST_TRANSPORT", "subprocess")
    monkeypatch.setenv("SLOPFAST_PIPELINE", str(crash_exe))


@posix
@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT, signal.SIGKILL, signal.SIGBUS])
def test_a_crashing_pipeline_process_is_a_clear_error(subprocess_transport, sig):
    start = time.perf_counter()
    with pytest.raises(PipelineError) as err:
        native.run([("echo", {}), ("crash", {"signal": str(int(sig))})], [wire.Input(b"a", b"x" * 100_000)])
    assert time.perf_counter() - start < 30
    assert err.value.code == -1
    assert str(err.value).startswith(f"native pipeline process died (signal {int(sig)}, {sig.name})")


@posix
def test_the_next_call_after_a_crash_works(subprocess_transport):
    for _ in range(3):
        with pytest.raises(PipelineError, match=r"died \(signal 11, SIGSEGV\)"):
            native.run([("crash", {})], [])
        assert native.run([("echo", {})], [wire.Input(b"a", b"still here")]) == [b"still here"]


def test_crash_op_checks_its_parameter(subprocess_transport):
    with pytest.raises(PipelineError) as err:
        native.run([("crash", {"signal": "0"})], [])
    assert err.value.code == 3 and "parameter signal: expected 1..64" in str(err.value)


def test_a_crash_op_after_a_bad_op_never_runs(subprocess_transport):
    """Op names are checked before any op runs: an unknown op stops the request first."""
    with pytest.raises(PipelineError) as err:
        native.run([("crash", {}), ("nope", {})], [])
    assert err.value.code == 2


def test_the_shipped_library_and_binary_have_no_crash_op(monkeypatch):
    require_native()
    monkeypatch.delenv("SLOPFAST_TRANSPORT", raising=False)
    for transport in ("inprocess", "subprocess"):
        monkeypatch.setenv("SLOPFAST_TRANSPORT", transport)
        if transport == "subprocess" and not native.binary_path().exists():
            continue
        with pytest.raises(PipelineError) as err:
            native.run([("crash", {})], [])
        assert err.value.code == 2 and "unknown op 'crash'" in str(err.value)
    # the op name is not even in the shipped files
    for path in (native.library_path(), native.binary_path()):
        if path.exists() and "sanitize" not in str(path):
            assert b"crash\0" not in path.read_bytes(), path


def test_the_crash_row_is_under_the_test_hooks_guard():
    table = (ROOT / "lib" / "op_table.h").read_text()
    assert re.search(r"#ifdef SLOPFAST_TEST_HOOKS\n(?:/\*.*\*/\n)?OP_\(crash,\s*\d+\)\n#endif", table)
