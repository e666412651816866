"""The dispatcher: forced backends, measured choice, wisdom persistence."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import slopfast
from slopfast import dispatch
from slopfast.errors import BackendUnavailable

from conftest import subprocess_env


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=subprocess_env(**env), capture_output=True, text=True)


def test_import_does_not_load_or_calibrate():
    proc = run_python(
        "import slopfast, slopfast.native as n, slopfast.dispatch as d;"
        "assert n._library is None and n._load_error is None and not d._decisions; print('ok')"
    )
    assert proc.stdout.strip() == "ok", proc.stderr


def test_forced_native_without_library_says_why():
    proc = run_python(
        "import slopfast; slopfast.build_markdown([('a', 'b')])",
        SLOPFAST_BACKEND="native", SLOPFAST_LIB="/nonexistent/libchunks.so",
    )
    assert proc.returncode != 0
    assert "BackendUnavailable" in proc.stderr and "/nonexistent/libchunks.so" in proc.stderr


def test_auto_without_library_falls_back():
    proc = run_python(
        "import slopfast; print(slopfast.build_markdown([('a', 'b')]) == '### `a`\\n\\n```\\nb\\n```');"
        "print(slopfast.backend_report()[0]['backend'])",
        SLOPFAST_LIB="/nonexistent/libchunks.so", SLOPFAST_WISDOM="off",
    )
    assert proc.stdout.split() == ["True", "fallback"], proc.stderr


def test_unknown_backend_value(monkeypatch):
    monkeypatch.setenv("SLOPFAST_BACKEND", "turbo")
    with pytest.raises(BackendUnavailable, match="turbo"):
        slopfast.build_markdown([("a", "b")])


def test_native_none_means_fallback_in_auto_and_error_when_forced(monkeypatch):
    assert dispatch.dispatch("x", 10, None, lambda: "fb") == "fb"
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    with pytest.raises(BackendUnavailable, match="no native path"):
        dispatch.dispatch("x", 10, None, lambda: "fb")


def test_auto_measures_once_and_keeps_the_faster(needs_native):
    calls = {"native": 0, "fallback": 0}

    def fast():
        calls["native"] += 1
        return 1

    def slow():
        calls["fallback"] += 1
        sum(range(20000))
        return 1

    dispatch.dispatch("probe", 100, fast, slow)
    measured = dict(calls)
    assert measured["native"] >= 1 and measured["fallback"] >= 1
    for _ in range(5):
        dispatch.dispatch("probe", 100, fast, slow)
    assert calls["fallback"] == measured["fallback"] and calls["native"] == measured["native"] + 5
    row = [r for r in slopfast.backend_report() if r["op"] == "probe"][0]
    assert row["backend"] == "native" and row["why"] == "measured"
    assert row["native_s"] < row["fallback_s"]
    assert row["bytes_from"] <= 100 < row["bytes_to"]


def test_size_classes_are_separate(needs_native):
    dispatch.dispatch("probe", 10, lambda: 1, lambda: 1)
    dispatch.dispatch("probe", 10_000_000, lambda: 1, lambda: 1)
    assert len([r for r in slopfast.backend_report() if r["op"] == "probe"]) == 2


def test_wisdom_persists_across_processes(tmp_path, needs_native):
    wisdom = tmp_path / "wisdom.json"
    code = "import slopfast; slopfast.build_markdown([('a', 'b')]); import json; print(json.dumps(slopfast.backend_report()))"
    first = run_python(code, SLOPFAST_WISDOM=str(wisdom))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)[0]["why"] == "measured"
    saved = json.loads(wisdom.read_text())
    assert saved["key"] == dispatch.wisdom_key() and saved["decisions"][0]["op"] == "aggregate"
    second = run_python(code, SLOPFAST_WISDOM=str(wisdom))
    assert json.loads(second.stdout)[0]["why"] == "wisdom"


@pytest.mark.parametrize("content", ["{not json", '{"key": 1, "decisions": 5}', "[]", ""])
def test_corrupt_wisdom_is_ignored(tmp_path, content, needs_native):
    wisdom = tmp_path / "wisdom.json"
    wisdom.write_text(content)
    proc = run_python("import slopfast; print(slopfast.build_markdown([('a', 'b')])[:3])", SLOPFAST_WISDOM=str(wisdom))
    assert proc.stdout.strip() == "###", proc.stderr
    assert json.loads(wisdom.read_text())["key"]  # rewritten


def test_unwritable_wisdom_is_ignored(tmp_path, needs_native):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_python(
        "import slopfast; print(slopfast.build_markdown([('a', 'b')])[:3])",
        SLOPFAST_WISDOM=str(blocker / "sub" / "wisdom.json"),
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "###", proc.stderr


def test_wisdom_off_writes_nothing(tmp_path, needs_native):
    proc = run_python(
        "import slopfast.dispatch as d; print(d.wisdom_path())",
        SLOPFAST_WISDOM="off",
    )
    assert proc.stdout.strip() == "None"
