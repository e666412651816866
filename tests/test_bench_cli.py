"""`slopfast bench` (slopfast.bench): the matrix, its table, JSON and plot; its cases come from the op registry."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slopfast import bench, cli
from slopfast.ops import BY_NAME, OPS

from conftest import subprocess_env

AGGREGATE_OP = next(op.name for op in OPS if "build_markdown" in op.api)


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slopfast", *args], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, timeout=120)


def test_every_benched_op_has_a_case_and_every_case_an_op(capsys):
    assert set(bench.CASES) == {op.bench for op in OPS if op.bench}
    assert [op.name for op in bench.BENCHED] == [op.name for op in OPS if op.bench]
    assert cli.main(["bench", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"only this op ({', '.join(op.name for op in bench.BENCHED)}; repeatable)" in help_text


def test_bench_quick_json(tmp_path):
    p = run("bench", "--quick", "--json", "--op", AGGREGATE_OP, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    bm = report["rows"]
    assert [r["size"] for r in bm] == bench.BENCH_SIZES_QUICK
    for r in bm:
        assert r["op"] == AGGREGATE_OP and r["native_path"] is True
        assert r["fallback_bps"] > 0 and r["pick"] in ("native", "fallback")
        if report["native"]:
            assert r["native_bps"] > 0 and r["ratio"] > 0


def test_bench_every_op_has_rows(monkeypatch):
    monkeypatch.setattr(bench, "BENCH_SIZES_QUICK", [100])
    rows = bench.run_bench(quick=True)
    for op in bench.BENCHED:
        assert any(r["op"] == op.name for r in rows)   # a row per op, available or not
    for r in rows:
        if not r["available"]:
            assert r["why"].startswith("not available")
            continue
        assert r["fallback_s"] > 0 or r.get("fallback_error")
        if BY_NAME[r["op"]].op_id is None:
            # no native path by design: not timed, not dispatched
            assert r["native_path"] is False and r["native_s"] is None and r["native_bps"] is None
            assert r["ratio"] is None and "native_error" not in r
            assert (r["pick"], r["why"]) == (cli.sole_path(BY_NAME[r["op"]]), "no native path by design")
        else:
            assert r["native_path"] is True
            assert r["pick"] in ("native", "fallback", "error"), r


def test_bench_line_of_an_op_without_native_path():
    row = {"op": "snapshot", "size": 100, "available": True, "native_path": False, "bytes": 100,
           "native_s": None, "fallback_s": 1e-6, "native_bps": None, "fallback_bps": 1e8, "ratio": None,
           "faster": "fallback", "pick": "msgspec only", "why": "no native path by design"}
    line = bench._bench_line(row)
    assert line.split() == ["snapshot", "100", "B", "-", "100.0", "-", "msgspec", "only", "no", "native",
                            "path", "by", "design"]


def test_bench_table_and_unknown_op(capsys, monkeypatch):
    monkeypatch.setattr(bench, "BENCH_SIZES_QUICK", [100, 2000])
    assert cli.main(["bench", "--quick", "--op", AGGREGATE_OP]) == 0
    out = capsys.readouterr().out
    assert "native/fb" in out and "dispatcher picks" in out
    assert len([line for line in out.splitlines() if line.startswith(AGGREGATE_OP + " ")]) == 2
    assert cli.main(["bench", "--op", "nonsense"]) == cli.EXIT_USAGE
    assert "unknown op nonsense (known: " + ", ".join(op.name for op in bench.BENCHED) + ")" in capsys.readouterr().err


def test_bench_missing_op_module_is_a_row(monkeypatch):
    def missing(size):
        raise ImportError("No module named 'slopfast.nothing'")

    monkeypatch.setitem(bench.CASES, BY_NAME["md_outline"].bench, missing)
    rows = bench.run_bench(quick=True, ops=["md_outline"])
    assert rows == [{"op": "md_outline", "size": None, "available": False,
                     "why": "not available: No module named 'slopfast.nothing'"}]


def test_bench_forced_backend_pick(monkeypatch):
    monkeypatch.setattr(bench, "BENCH_SIZES_QUICK", [100])
    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    [row] = bench.run_bench(quick=True, ops=[AGGREGATE_OP])
    assert row["pick"] == "fallback" and "forced" in row["why"]
    assert row["dispatch_op"] == AGGREGATE_OP                 # seen through dispatch.observe()
    assert os.environ["SLOPFAST_BACKEND"] == "fallback"   # restored


class _FakeAxes:
    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.log.append((name, args, kwargs))


def _fake_plt():
    log = []

    class Fig:
        def tight_layout(self):
            pass

        def savefig(self, path, **kwargs):
            log.append(("savefig", (path,), kwargs))

    class Grid(list):
        def __getitem__(self, key):   # axes[:, 0]
            if isinstance(key, tuple):
                return [row[key[1]] for row in self]
            return list.__getitem__(self, key)

    class Plt:
        def subplots(self, rows, cols, **kwargs):
            log.append(("subplots", (rows, cols), kwargs))
            return Fig(), Grid([[_FakeAxes(log)] for _ in range(rows)])

    return Plt(), log


def test_bench_plot_draws_both_backends_and_the_crossover():
    rows = [
        {"op": AGGREGATE_OP, "available": True, "bytes": 100, "native_bps": 1e6, "fallback_bps": 2e6, "ratio": 0.5},
        {"op": AGGREGATE_OP, "available": True, "bytes": 10000, "native_bps": 4e7, "fallback_bps": 2e7, "ratio": 2.0},
        {"op": "snapshot", "available": True, "bytes": 100, "native_bps": 3e6, "fallback_bps": 1e6, "ratio": 3.0},
        {"op": "md_outline", "size": None, "available": False, "why": "not available"},
    ]
    plt, log = _fake_plt()
    bench._plot(rows, "out.png", plt)
    assert log[0] == ("subplots", (2, 1), {"figsize": (7, 6.4), "squeeze": False})
    plots = [(args, kwargs) for name, args, kwargs in log if name == "plot"]
    assert plots == [((( 100, 10000), (1.0, 40.0), "o-"), {"label": "native"}),
                     (((100, 10000), (2.0, 20.0), "s--"), {"label": "fallback"}),
                     (((100,), (3.0,), "o-"), {"label": "native"}),
                     (((100,), (1.0,), "s--"), {"label": "fallback"})]
    crossings = [args for name, args, kwargs in log if name == "axvline"]
    assert crossings == [(1000.0,)]        # the geometric mean of 100 and 10000: one crossover
    assert [args for name, args, _ in log if name == "set_title"] == [(AGGREGATE_OP,), ("snapshot",)]
    assert log[-1] == ("savefig", ("out.png",), {"dpi": 120})


def test_bench_plot_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    target = tmp_path / "bench.png"
    assert cli.main(["bench", "--quick", "--op", AGGREGATE_OP, "--plot", str(target)]) == cli.EXIT_FATAL
    assert "pip install 'slopfast[plot]'" in capsys.readouterr().err
    assert not target.exists()


def test_bench_plot(tmp_path, monkeypatch, capsys):
    """With matplotlib (the `plot` extra) a PNG is written; without it, the error above."""
    monkeypatch.setattr(bench, "BENCH_SIZES_QUICK", [100, 4000])
    target = tmp_path / "bench.png"
    code = cli.main(["bench", "--quick", "--op", AGGREGATE_OP, "--plot", str(target)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert code == cli.EXIT_FATAL
        assert "pip install 'slopfast[plot]'" in capsys.readouterr().err
        assert not target.exists()
    else:
        assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_first_call_that_pays_one_time_costs_is_not_the_measurement():
    """Fallbacks import their parsers on first use: a first call over the
    budget is a warm-up, not a slow call."""
    calls = []

    def fn():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.05)

    assert bench._best_time(fn, 0.01) < 0.01
