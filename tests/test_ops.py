"""The op registry (slopfast/ops.py) against everything it stands for: the op
table in lib/op_table.h, the four places an op lives, the public exports, the
docs' op table; and each constant defined once (codes, modes, wire version,
compiler flags) against its one source."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import slopfast
from slopfast import ops, wire

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"


def c_op_table(test_hooks: bool = False) -> dict[str, int]:
    text = (LIB / "op_table.h").read_text()
    if not test_hooks:
        text = re.sub(r"#ifdef SLOPFAST_TEST_HOOKS.*?#endif", "", text, flags=re.S)
    return {name: int(op_id) for name, op_id in re.findall(r"^OP_\((\w+),\s*(\d+)\)", text, re.M)}


def c_enum(name: str) -> dict[str, int]:
    body = re.search(rf"Enum_\({name}\)\s*{{(.*?)}};", (LIB / "op.h").read_text(), re.S).group(1)
    return {k: int(v) for k, v in re.findall(rf"\b{name}_(\w+)\s*=\s*(\d+)", body)}


def test_the_registry_is_the_op_table():
    assert {op.name: op.op_id for op in ops.NATIVE} == c_op_table()
    assert len({op.op_id for op in ops.NATIVE}) == len(ops.NATIVE)


@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.name)
def test_an_op_lives_in_four_places(op):
    if op.op_id is not None:
        c_file = LIB / f"{op.name}.c"
        view_of = LIB / f"{op.module}.c"   # md_summary is a view of md_outline
        assert c_file.exists() or f"B4 op_{op.name}(Ctx *ctx)" in view_of.read_text()
    assert (ROOT / "fallbacks" / f"{op.module}.py").exists()
    assert (ROOT / "tests" / f"test_{op.module}.py").exists()
    module, function = op.fallback.split(":")
    assert callable(getattr(importlib.import_module(f"slopfast.fallbacks.{module}"), function))
    public = importlib.import_module(f"slopfast.{op.module}") if op.api else None
    for name in op.api:
        assert getattr(public, name) is getattr(slopfast, name)


def test_every_c_file_is_an_op_or_shared():
    shared = {"core", "pipeline", "wire_v1", "main", "summary", "test_hooks"}
    assert {p.stem for p in LIB.glob("*.c")} - shared == {op.name for op in ops.NATIVE} - {"md_summary"}


def test_exports_are_the_registry_s():
    assert set(ops.exports()) <= set(slopfast.__all__)
    for name in slopfast.__all__:
        assert getattr(slopfast, name) is not None


def test_the_docs_op_table_is_the_registry_s():
    text = (ROOT / "docs" / "wire-format.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", text, re.M))
    assert {k: int(v) for k, v in table.items()} == c_op_table(test_hooks=True)


def test_codes_are_op_h_s():
    codes = c_enum("Code")
    assert sorted(codes.values()) == sorted(wire.CODE_NAMES)
    for name, value in codes.items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
        assert getattr(wire, f"CODE_{snake}") == value, name


def test_modes_are_op_h_s():
    names = re.search(r"#define INPUT_MODE_NAMES \{(.*?)\}", (LIB / "op.h").read_text()).group(1)
    assert tuple(re.findall(r'"(\w+)"', names)) == wire.MODE_NAMES
    modes = c_enum("InputMode")
    assert [modes[n.capitalize()] for n in wire.MODE_NAMES] == list(range(len(wire.MODE_NAMES)))


def test_skip_reasons_are_op_h_s():
    names = re.search(r"#define SKIP_NAMES \{(.*?)\}", (LIB / "op.h").read_text()).group(1)
    assert tuple(re.findall(r'"([\w-]*)"', names)) == wire.SKIP_NAMES
    skips = c_enum("Skip")
    for name, value in skips.items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
        assert getattr(wire, f"SKIP_{snake}") == value, name
    assert int(re.search(r"SNIFF_BYTES = (\d+)", (LIB / "op.h").read_text()).group(1)) == wire.SNIFF_BYTES


def test_wire_version_is_pipeline_h_s():
    version = re.search(r"#define WIRE_VERSION (\d+)", (LIB / "pipeline.h").read_text()).group(1)
    assert int(version) == wire.WIRE_VERSION


def test_compiler_flags_have_one_source():
    flags = (LIB / "cflags.txt").read_text().split()
    assert "-std=c11" in flags and "-Werror" in flags
    for path in ("setup.py", "build.zig", "tests/native_builds.py", "tools/sanitize.sh", "fuzz/run.sh"):
        text = (ROOT / path).read_text()
        assert "cflags.txt" in text, path
        assert "-Wextra" not in text, f"{path} spells out the flags of lib/cflags.txt"
