"""The dispatcher: forced backends, measured choice, wisdom persistence."""
from __future__ import annotations

import json
import subprocess
import sys
import time

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


def test_a_near_tie_goes_to_native(needs_native, monkeypatch):
    """Within MARGIN the fallback does not win. The timings are given, not
    measured: real ones of equal work moved past MARGIN under ASan in CI."""
    for i, ratio in enumerate((1.0, 0.95, 1 - dispatch.MARGIN / 2, 1 - dispatch.MARGIN + 1e-6)):
        monkeypatch.setattr(dispatch, "_calibrate", lambda native, fallback, r=ratio: (1e-3, 1e-3 * r))
        dispatch.dispatch(f"tie{i}", 100, lambda: "n", lambda: "f")
        assert [r["backend"] for r in slopfast.backend_report() if r["op"] == f"tie{i}"] == ["native"]
    monkeypatch.setattr(dispatch, "_calibrate", lambda native, fallback: (1e-3, 1e-3 * (1 - 2 * dispatch.MARGIN)))
    dispatch.dispatch("tie_lost", 100, lambda: "n", lambda: "f")
    assert [r["backend"] for r in slopfast.backend_report() if r["op"] == "tie_lost"] == ["fallback"]


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


def test_a_first_call_runs_native_and_imports_no_fallback(tmp_path, needs_native):
    """With no wisdom, the first calls of the ops whose fallback imports a
    parser (markdown-it-py, ast and the scanner port) run native only: the
    import waits for the calibration budget, and nothing is stored."""
    wisdom = tmp_path / "wisdom.txt"
    code = (
        "import sys, json, slopfast; from slopfast import dispatch\n"
        "with dispatch.observe() as log:\n"
        "    slopfast.markdown_outline('# a\\n\\ntext\\n'); slopfast.summarise_markdown('# a\\n')\n"
        "    slopfast.summarise_python('def f():\\n    return 1\\n')\n"
        "    for mode in ('summary', 'skeleton'):\n"
        "        slopfast.build_markdown([('a.md', '# T\\n'), ('b.py', 'def f():\\n    return 1\\n')], mode=mode)\n"
        "print(json.dumps({'ran': sorted({b for _, _, b in log}), 'why': sorted({r['why'][:7] for r in slopfast.backend_report()"
        " if r['size_class'] is not None}), 'loaded': [m for m in ('markdown_it', 'slopfast.fallbacks.md_outline',"
        " 'slopfast.fallbacks.py_skeleton') if m in sys.modules]}))"
    )
    proc = run_python(code, SLOPFAST_WISDOM=str(wisdom))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ran": ["native"], "why": ["pending"], "loaded": []}
    assert not wisdom.exists()


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_fallback_is_imported_and_measured_when_the_budget_pays_and_wins(tmp_path, monkeypatch, needs_native):
    """A fallback that imports a module not loaded yet runs only once the
    op's undecided calls have earned what its import is expected to cost;
    then, genuinely faster, it is chosen."""
    (tmp_path / "sf_probe_dep.py").write_text("import time\ntime.sleep(0.02)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sf_probe_dep", raising=False)
    monkeypatch.setattr(dispatch, "IMPORT_ESTIMATE_S", 0.02)    # a shorter test; the rule is the same
    spent, first_fallback_at = [0.0], []

    def native():
        t0 = time.perf_counter()
        _spin(0.002)
        spent[0] += time.perf_counter() - t0
        return "n"

    def fallback():
        if not first_fallback_at:
            first_fallback_at.append(spent[0])
        import sf_probe_dep  # noqa: F401
        return "f"

    need = dispatch.MEASURE_ESTIMATE_S + dispatch.IMPORT_ESTIMATE_S
    for calls in range(1, 1000):
        assert dispatch.dispatch("probe_imp", 100, native, fallback, imports=("sf_probe_dep",)) == "n"
        if first_fallback_at:
            break
        assert "sf_probe_dep" not in sys.modules
    else:
        raise AssertionError("the fallback was never measured")
    earned = dispatch.CALIBRATION_ALLOWANCE_S + dispatch.CALIBRATION_SHARE * first_fallback_at[0]
    assert need - 0.001 <= earned <= need + 0.001, (calls, earned, need)   # not before, and not much after
    assert calls > 10 and "sf_probe_dep" in sys.modules
    row = [r for r in slopfast.backend_report() if r["op"] == "probe_imp"][0]
    assert (row["backend"], row["why"]) == ("fallback", "measured")
    assert dispatch.dispatch("probe_imp", 100, native, fallback, imports=("sf_probe_dep",)) == "f"
    assert dispatch._credit["probe_imp"] < earned - 0.015      # the import (20 ms) was charged


def test_what_a_measurement_cost_is_charged_to_the_op(needs_native):
    """A measurement that cost more than the allowance leaves the op in
    debt: its next size class runs native, unmeasured, until repaid."""
    runs = {"fallback": 0}

    def slow_fallback():
        runs["fallback"] += 1
        time.sleep(0.02)

    dispatch.dispatch("probe_debt", 100, lambda: "n", slow_fallback)
    measured = runs["fallback"]
    assert measured >= 1 and dispatch._credit["probe_debt"] < 0
    assert dispatch.dispatch("probe_debt", 1000, lambda: "n", slow_fallback) == "n"
    assert runs["fallback"] == measured
    rows = {r["size_class"]: r["why"] for r in slopfast.backend_report() if r["op"] == "probe_debt"}
    assert rows == {dispatch.size_class(100): "measured", dispatch.size_class(1000): rows[dispatch.size_class(1000)]}
    assert rows[dispatch.size_class(1000)].startswith("pending")


def test_a_sample_that_grows_late_is_grown(needs_native):
    """Files count 4 KiB each in a sample: the 1 and 4 KiB budgets give the
    same one-file sample, the 16 KiB budget four files. The decision comes
    from the four, where the native call's fixed cost weighs less (on one
    file the fallback wins, on four native does)."""
    budgets = []

    def sample(_data, budget):
        budgets.append(budget)
        files = max(1, budget // 4096)
        return (lambda: _spin(0.0002 + 0.00005 * files)), (lambda: _spin(0.00015 * files)), files * 4096

    assert dispatch.dispatch("probe_grow", 1 << 20, lambda: "n", lambda: "f", sample=sample) == "n"
    assert budgets == [1 << 10, 16 << 10]
    row = [r for r in slopfast.backend_report() if r["op"] == "probe_grow"][0]
    assert (row["backend"], row["sample_bytes"]) == ("native", 16 << 10)


def test_calibration_sees_past_a_slow_start(needs_native, monkeypatch):
    """Native's first two calls slow (memory it then keeps), the rest fast:
    the warm-up and one round would see only slow ones and pick the fallback."""
    monkeypatch.setattr(dispatch, "CALIBRATION_ALLOWANCE_S", 1.0)
    calls = []

    def native():
        calls.append(1)
        time.sleep(0.006 if len(calls) <= 2 else 0.0001)
        return "n"

    dispatch.dispatch("probe_slow_start", 100, native, lambda: time.sleep(0.002) or "f")
    row = [r for r in slopfast.backend_report() if r["op"] == "probe_slow_start"][0]
    assert row["backend"] == "native" and row["native_s"] < 0.002, row


def test_variants_are_decided_apart(needs_native, monkeypatch):
    monkeypatch.setattr(dispatch, "CALIBRATION_ALLOWANCE_S", 1.0)   # both measured at once, however slow the machine
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
    wisdom = tmp_path / "wisdom.txt"
    code = "import slopfast; slopfast.build_markdown([('a', 'b')]); import json; print(json.dumps(slopfast.backend_report()))"
    first = run_python(code, SLOPFAST_WISDOM=str(wisdom))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)[0]["why"] == "measured"
    header, line, end = wisdom.read_text().split("\n")
    assert (header, end) == (dispatch._wisdom_header(), "") and line.startswith("aggregate\t")
    second = run_python(code, SLOPFAST_WISDOM=str(wisdom))
    assert json.loads(second.stdout)[0]["why"] == "wisdom"


@pytest.mark.parametrize("content", ["{not json", '{"key": 1, "decisions": 5}', "[]", "", "slopfast-wisdom 3 x\n",
                                     "slopfast-wisdom 2"])
def test_corrupt_wisdom_is_ignored(tmp_path, content, needs_native):
    wisdom = tmp_path / "wisdom.txt"
    wisdom.write_text(content)
    proc = run_python("import slopfast; print(slopfast.build_markdown([('a', 'b')])[:3])", SLOPFAST_WISDOM=str(wisdom))
    assert proc.stdout.strip() == "###", proc.stderr
    assert wisdom.read_text().startswith("slopfast-wisdom %d " % dispatch.WISDOM_VERSION)  # rewritten


def test_unwritable_wisdom_is_ignored(tmp_path, needs_native):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_python(
        "import slopfast; print(slopfast.build_markdown([('a', 'b')])[:3])",
        SLOPFAST_WISDOM=str(blocker / "sub" / "wisdom.txt"),
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "###", proc.stderr


def test_wisdom_off_writes_nothing(tmp_path, needs_native):
    proc = run_python(
        "import slopfast.dispatch as d; print(d.wisdom_path())",
        SLOPFAST_WISDOM="off",
    )
    assert proc.stdout.strip() == "None"


def _load_from(tmp_path, monkeypatch, data: bytes) -> None:
    """A fresh dispatcher's reading of a wisdom file holding `data`."""
    wisdom = tmp_path / "wisdom.txt"
    monkeypatch.setenv("SLOPFAST_WISDOM", str(wisdom))
    wisdom.write_bytes(data)
    dispatch.reset()
    dispatch._load_wisdom()


def _valid_wisdom() -> list[str]:
    """The lines of a wisdom file as _save_wisdom writes it."""
    return [dispatch._wisdom_header(), "aggregate\t\t2\tnative\t1e-05\t2e-05\t40",
            "aggregate\tfull,files\t3\tfallback\t0.003\t0.0021\t4096", ""]


FIELD = st.sampled_from(["", "0", "02", "-1", "1e-05", "1e999", "nan", "inf", "1.0", "1", "native", "fallback",
                         "x\ty", "23", "\xff", " 1", "9" * 5000, "1" * 21]) | st.text(max_size=6)


def _mutated(lines: list[str], k: int, field: int, value: str) -> str:
    fields = lines[k].split("\t")
    fields[field % len(fields)] = value
    return "\n".join(lines[:k] + ["\t".join(fields)] + lines[k + 1:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=200),
    st.builds(lambda t: dispatch._wisdom_header() + "\n" + t, st.text(max_size=80)),
    st.builds(_mutated, st.just(_valid_wisdom()), st.integers(0, 2), st.integers(0, 6), FIELD),
    st.builds(lambda k, j: "\n".join(_valid_wisdom()[:k] + _valid_wisdom()[j:]), st.integers(0, 4), st.integers(0, 4)),
    st.builds(lambda k: "\n".join(_valid_wisdom()[:k] + _valid_wisdom()[k - 1:]), st.integers(1, 3))))
def test_a_wisdom_file_not_written_by_us_is_ignored(tmp_path, monkeypatch, text):
    """Any content but exactly what _save_wisdom writes is ignored, never an error."""
    _load_from(tmp_path, monkeypatch, text.encode("utf-8", "surrogatepass"))
    if dispatch._decisions:   # then the file is exactly what we write for what was loaded
        loaded = [(op, variant, cls, info) for (op, variant, cls), info in sorted(dispatch._report.items())]
        assert dispatch._wisdom_text(loaded) == text
        assert dispatch._decisions == {k: info["backend"] == "native" for k, info in dispatch._report.items()}
    elif text == "\n".join(_valid_wisdom()):
        pytest.fail("the file as _save_wisdom writes it was not read")


def test_a_valid_wisdom_file_is_read(tmp_path, monkeypatch):
    _load_from(tmp_path, monkeypatch, "\n".join(_valid_wisdom()).encode())
    assert dispatch._decisions == {("aggregate", "", 2): True, ("aggregate", "full,files", 3): False}
    assert dispatch._report[("aggregate", "full,files", 3)] == {
        "backend": "fallback", "why": "wisdom", "native_s": 0.003, "fallback_s": 0.0021, "sample_bytes": 4096}


@pytest.mark.parametrize("text", [b"\xff\xfe", b"9" * 5000, b"\n" * 100, b"slopfast-wisdom 3 " + b"a" * (1 << 20)])
def test_hostile_wisdom_text_is_ignored(tmp_path, monkeypatch, text):
    _load_from(tmp_path, monkeypatch, text)
    assert dispatch._decisions == {}


@pytest.mark.parametrize("field", [2, 6])
def test_a_number_too_long_for_int_is_ignored(tmp_path, monkeypatch, field):
    """int() refuses over 4,300 digits: such a field is not ours, not an error."""
    _load_from(tmp_path, monkeypatch, _mutated(_valid_wisdom(), 1, field, "9" * 5000).encode())
    assert dispatch._decisions == {}


def test_an_op_a_line_cannot_hold_is_not_written(tmp_path):
    info = {"backend": "native", "native_s": 1.0, "fallback_s": 2.0, "sample_bytes": 1}
    text = dispatch._wisdom_text([("a\tb", "", 1, info), ("ok", "x\ny", 1, info), ("ok", "", 1, info)])
    assert text == dispatch._wisdom_header() + "\nok\t\t1\tnative\t1.0\t2.0\t1\n"


def test_the_written_wisdom_is_read_back(tmp_path, monkeypatch, needs_native):
    wisdom = tmp_path / "wisdom.txt"
    monkeypatch.setenv("SLOPFAST_WISDOM", str(wisdom))
    dispatch.dispatch("probe_w", 100, lambda: 1, lambda: sum(range(20000)))
    written = dict(dispatch._decisions)
    dispatch.reset()
    dispatch._load_wisdom()
    assert dispatch._decisions == written
