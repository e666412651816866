"""Build hook: compile libchunks (lib/*.c) with the Zig toolchain from PyPI.

`python -m ziglang cc -std=c11` builds the shared library and the standalone
pipeline binary into the package directory before setuptools collects it, so
both regular and editable installs find them. SLOPFAST_NO_NATIVE=1 skips the
native build: slopfast then runs on its pure-Python fallbacks.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
LIB = ROOT / "lib"
PACKAGE = ROOT / "slopfast"
# lib/cflags.txt: the flags of every build (build.zig, tests, tools read it
# too). -mcpu=baseline: a library that runs on any CPU of this architecture
# (and under valgrind), not just the build machine's.
CFLAGS = (LIB / "cflags.txt").read_text().split() + ["-O2", "-mcpu=baseline"]


def library_name() -> str:
    if sys.platform == "win32":
        return "libchunks.dll"
    if sys.platform == "darwin":
        return "libchunks.dylib"
    return "libchunks.so"


def build_id(sources: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(sources + list(LIB.glob("*.h"))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(" ".join(CFLAGS).encode())
    return digest.hexdigest()[:16]


def zig_cc(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, *args]
    print("slopfast:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=LIB)


def compile_native() -> None:
    library_sources = sorted(p for p in LIB.glob("*.c") if p.name != "main.c")
    define = f"-DSLOPFAST_BUILD_ID=\"{build_id(library_sources)}\""
    names = [p.name for p in library_sources]
    shared = ["-shared"] + ([] if sys.platform == "win32" else ["-fPIC", "-fvisibility=hidden"])
    zig_cc([*shared, define, "-o", str(PACKAGE / library_name()), *names])
    exe = "slopfast-pipeline.exe" if sys.platform == "win32" else "slopfast-pipeline"
    zig_cc([define, "-o", str(PACKAGE / exe), *names, "main.c"])


class BuildWithNative(build_py):
    def run(self):
        if os.environ.get("SLOPFAST_NO_NATIVE", "") not in ("", "0"):
            print("slopfast: SLOPFAST_NO_NATIVE set, installing the fallbacks only", flush=True)
            for stale in PACKAGE.glob("libchunks.*"):
                stale.unlink()
            for stale in PACKAGE.glob("slopfast-pipeline*"):
                stale.unlink()
        else:
            compile_native()
        super().run()


class PlatformDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return os.environ.get("SLOPFAST_NO_NATIVE", "") in ("", "0")


setup(cmdclass={"build_py": BuildWithNative}, distclass=PlatformDistribution)
