"""`slopfast doctor` (slopfast.doctor): the report, its JSON, forced backends; its ops come from the op registry."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from slopfast import cli, doctor, native
from slopfast.ops import OPS

from conftest import subprocess_env

AGGREGATE_OP = next(op.name for op in OPS if "build_markdown" in op.api)


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slopfast", *args], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, timeout=120)


def test_doctor(tmp_path):
    p = run("doctor", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode()
    for word in ("library:", "transport:", "backend:", "wisdom:", AGGREGATE_OP, "self-test:"):
        assert word in text
    if native.available():
        assert native.build_id() in text and "ok: native == fallback" in text
    p = run("doctor", "--json", cwd=tmp_path, SLOPFAST_WISDOM=str(tmp_path / "w.json"))
    info = json.loads(p.stdout)
    assert info["wisdom"]["path"] == str(tmp_path / "w.json")
    assert info["library"]["path"] == str(native.library_path())
    assert info["ops"][AGGREGATE_OP]["available"] is True
    assert info["problems"] == []


def test_doctor_forced_backends(tmp_path):
    p = run("doctor", cwd=tmp_path, SLOPFAST_BACKEND="fallback", SLOPFAST_LIB=str(tmp_path / "x.so"))
    assert p.returncode == 0   # the library is missing but nobody asked for it
    assert b"forced by SLOPFAST_BACKEND=fallback" in p.stdout


def test_doctor_ops_are_the_registry_rows_with_public_names():
    info, _ = doctor.doctor_report()
    assert list(info["ops"]) == [op.name for op in OPS if op.api]
    for op in OPS:
        if not op.api:
            continue
        status = info["ops"][op.name]
        assert status["available"] is True, status
        assert status["native_path"] is (op.op_id is not None)
        if op.op_id is None:   # one implementation by design: no auto/native/fallback policy
            assert (status["backend"], status["why"]) == (cli.sole_path(op), "no native path by design")
    assert info["ops"]["snapshot"]["backend"] == "msgspec only"


def test_doctor_op_without_native_path_ignores_the_backend_setting(tmp_path):
    snapshot = [op.name for op in OPS if op.op_id is None and op.api]
    for setting in ("auto", "native", "fallback"):
        p = run("doctor", cwd=tmp_path, SLOPFAST_BACKEND=setting)
        lines = p.stdout.decode().splitlines()
        for name in snapshot:
            [line] = [line for line in lines if line.split()[:1] == [name]]
            assert line.split(None, 1)[1] == "msgspec only (no native path by design)"
