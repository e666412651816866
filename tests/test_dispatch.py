"""The dispatcher: forced backends, measured choice, wisdom persistence."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def test_a_clearly_faster_fallback_wins(needs_native):
    assert dispatch.dispatch("probe_fb", 100, lambda: sum(range(20000)) and "n", lambda: "f") == "n"
    assert dispatch.dispatch("probe_fb", 100, lambda: "n", lambda: "f") == "f"


def test_a_near_tie_goes_to_native(needs_native):
    """Within MARGIN the fallback does not win, however the noise falls."""
    for i in range(5):
        work = lambda: sum(range(3000))   # noqa: E731 - the same work on both paths
        dispatch.dispatch(f"tie{i}", 100, work, work)
        assert [r["backend"] for r in slopfast.backend_report() if r["op"] == f"tie{i}"] == ["native"]


def test_calibration_of_a_large_input_runs_the_fallback_on_samples_only(needs_native):
    """A fallback that handles this input badly runs on a kilobyte, never on
    the caller's 10 MB."""
    size = 10 << 20
    seen = []

    def sample(_data, budget):
        return (lambda: seen.append(("native", budget))), (lambda: (seen.append(("fallback", budget)), sum(range(200000)))), budget

    def whole_fallback():
        raise AssertionError("the fallback ran on the whole input")

    assert dispatch.dispatch("big", size, lambda: "native answer", whole_fallback, sample=sample) == "native answer"
    assert {budget for path, budget in seen if path == "fallback"} == {1 << 10}
    row = [r for r in slopfast.backend_report() if r["op"] == "big"][0]
    assert (row["backend"], row["sample_bytes"]) == ("native", 1 << 10)


def test_variants_are_decided_apart(needs_native):
    dispatch.dispatch("probe_v", 100, lambda: "n", lambda: sum(range(20000)) and "f", variant="full")
    assert dispatch.dispatch("probe_v", 100, lambda: sum(range(20000)) and "n", lambda: "f", variant="summary") == "n"
    assert dispatch.dispatch("probe_v", 100, lambda: sum(range(20000)) and "n", lambda: "f", variant="summary") == "f"
    rows = {r["variant"]: r["backend"] for r in slopfast.backend_report() if r["op"] == "probe_v"}
    assert rows == {"full": "native", "summary": "fallback"}


def test_ops_without_a_native_path_are_reported():
    rows = [r for r in slopfast.backend_report() if r["op"] == "snapshot"]
    assert rows and rows[0]["why"].startswith("no native path by design")


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


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=8),
    max_leaves=30)


def _valid_wisdom() -> dict:
    return {"key": dispatch.wisdom_key(), "version": dispatch.WISDOM_VERSION, "decisions": [
        {"op": "aggregate", "variant": "", "size_class": 2, "backend": "native",
         "native_s": 1e-05, "fallback_s": 2e-05, "sample_bytes": 40}]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    JSON,
    st.builds(lambda d, k, v: {**d, k: v}, st.just(_valid_wisdom()), st.sampled_from(["key", "version", "decisions"]), JSON),
    st.builds(lambda e, k, v: {**_valid_wisdom(), "decisions": [{**e, k: v}]},
              st.just(_valid_wisdom()["decisions"][0]),
              st.sampled_from(sorted(dispatch._ENTRY_KEYS) + ["extra"]), JSON)))
def test_a_wisdom_file_not_written_by_us_is_ignored(tmp_path, monkeypatch, data):
    """Any content but exactly what _save_wisdom writes is ignored, never an error."""
    wisdom = tmp_path / "wisdom.json"
    monkeypatch.setenv("SLOPFAST_WISDOM", str(wisdom))
    wisdom.write_text(json.dumps(data, allow_nan=True))
    dispatch.reset()
    dispatch._load_wisdom()
    loaded = dict(dispatch._decisions)
    if loaded:   # then the file was exactly what we write: check it by the format's own rules
        assert set(data) == {"key", "version", "decisions"} and data["key"] == dispatch.wisdom_key()
        for entry in data["decisions"]:
            assert set(entry) == {"op", "variant", "size_class", "backend", "native_s", "fallback_s", "sample_bytes"}
            assert type(entry["op"]) is str and type(entry["variant"]) is str and entry["backend"] in ("native", "fallback")
            assert type(entry["size_class"]) is int and 0 <= entry["size_class"] <= 22
            assert all(type(entry[k]) is float and 0 <= entry[k] < float("inf") for k in ("native_s", "fallback_s"))
        assert loaded == {(e["op"], e["variant"], e["size_class"]): e["backend"] == "native" for e in data["decisions"]}


@pytest.mark.parametrize("text", ['{"size_class": 1e999}', "[" * 100000 + "]" * 100000, "\xff\xfe", "9" * 5000])
def test_hostile_wisdom_text_is_ignored(tmp_path, monkeypatch, text):
    wisdom = tmp_path / "wisdom.json"
    monkeypatch.setenv("SLOPFAST_WISDOM", str(wisdom))
    wisdom.write_bytes(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
    dispatch.reset()
    dispatch._load_wisdom()
    assert dispatch._decisions == {}


def test_the_written_wisdom_is_read_back(tmp_path, monkeypatch, needs_native):
    wisdom = tmp_path / "wisdom.json"
    monkeypatch.setenv("SLOPFAST_WISDOM", str(wisdom))
    dispatch.dispatch("probe_w", 100, lambda: 1, lambda: sum(range(20000)))
    written = dict(dispatch._decisions)
    dispatch.reset()
    dispatch._load_wisdom()
    assert dispatch._decisions == written
