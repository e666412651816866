"""build.zig builds libchunks for Windows and macOS from this machine, and the
results export the entry points (parsed, not loaded)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

lief = pytest.importorskip("lief", reason="lief is part of the [test] extra")

ROOT = Path(__file__).resolve().parents[1]
EXPORTS = {"pipeline_run", "pipeline_free", "pipeline_version", "pipeline_run_opts",
           "pipeline_context_new", "pipeline_run_in", "pipeline_context_free"}


def zig_build(target: str, prefix: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ziglang", "build", f"-Dtarget={target}", "--prefix", str(prefix)],
        cwd=ROOT, check=True, capture_output=True, timeout=900,
    )


def exported_names(path: Path) -> set[str]:
    binary = lief.parse(str(path))
    assert binary is not None, f"lief cannot parse {path}"
    return {getattr(f, "name", str(f)).lstrip("_") for f in binary.exported_functions}


@pytest.mark.parametrize(
    "target, library, fmt",
    [
        ("x86_64-windows-gnu", "bin/libchunks.dll", lief.Binary.FORMATS.PE),
        ("aarch64-macos", "lib/libchunks.dylib", lief.Binary.FORMATS.MACHO),
        ("x86_64-linux-gnu", "lib/libchunks.so", lief.Binary.FORMATS.ELF),
    ],
)
def test_cross_target_exports_pipeline_run(tmp_path, target, library, fmt):
    zig_build(target, tmp_path)
    path = tmp_path / library
    assert path.exists(), sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert lief.parse(str(path)).format == fmt
    assert EXPORTS <= exported_names(path)
