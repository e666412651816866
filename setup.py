"""Build hook: compile libchunks (lib/*.c) with the Zig toolchain from PyPI.

`python -m ziglang cc -std=c11` builds the shared library and the standalone
pipeline binary into the build directory, and the wheel carries them; an
editable install builds them into the checkout's slopfast/ instead (with
debug info: it is for development). SLOPFAST_NO_NATIVE=1 skips the native
build (slopfast then runs on its pure-Python fallbacks) and never touches
files in the checkout.

SLOPFAST_TARGET=<zig target> cross-compiles for that target and tags the
wheel for it (tools/build_wheels.py builds every published target):
  x86_64-linux-gnu.2.17    manylinux_2_17_x86_64.manylinux2014_x86_64
  aarch64-linux-gnu.2.17   manylinux_2_17_aarch64.manylinux2014_aarch64
  x86_64-macos.11.0        macosx_11_0_x86_64
  aarch64-macos.11.0       macosx_11_0_arm64
  x86_64-windows-gnu       win_amd64
Wheels are `py3-none-<platform>`: libchunks is loaded with ctypes and uses
no CPython ABI, so one wheel serves every Python 3 of its platform.
"""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
LIB = ROOT / "lib"
PACKAGE = ROOT / "slopfast"
NATIVE = os.environ.get("SLOPFAST_NO_NATIVE", "") in ("", "0")
TARGET = os.environ.get("SLOPFAST_TARGET", "").strip()
# lib/cflags.txt: the flags of every build (build.zig, tests, tools read it
# too). -mcpu=baseline: a library that runs on any CPU of this architecture
# (and under valgrind), not just the build machine's.
CFLAGS = (LIB / "cflags.txt").read_text().split() + ["-O2", "-mcpu=baseline"]
if TARGET:
    CFLAGS = ["-target", TARGET, *CFLAGS]


def target_os() -> str:
    if TARGET:
        return "windows" if "-windows" in TARGET else "darwin" if "-macos" in TARGET else "linux"
    return {"win32": "windows", "darwin": "darwin"}.get(sys.platform, "linux")


def target_platform_tag() -> str:
    """The wheel platform tag of TARGET (a zig target, see the docstring)."""
    arch, system, abi = (TARGET.split("-") + ["", ""])[:3]
    if system == "linux" and abi.startswith("gnu.2."):
        glibc = abi[len("gnu."):]
        tag = f"manylinux_{glibc.replace('.', '_')}_{arch}"
        return tag + (f".manylinux2014_{arch}" if glibc == "2.17" else "")
    if system.startswith("macos.") and system.count(".") == 2:
        return f"macosx_{system[len('macos.'):].replace('.', '_')}_{'arm64' if arch == 'aarch64' else arch}"
    if system == "windows" and arch in ("x86_64", "aarch64"):
        return {"x86_64": "win_amd64", "aarch64": "win_arm64"}[arch]
    sys.exit(f"slopfast: no wheel platform tag for SLOPFAST_TARGET={TARGET!r} "
             "(use ARCH-linux-gnu.2.N, ARCH-macos.X.Y or ARCH-windows-gnu)")


def built_names() -> tuple[str, str]:
    """(library, pipeline binary) file names for the target."""
    system = target_os()
    library = {"windows": "libchunks.dll", "darwin": "libchunks.dylib"}.get(system, "libchunks.so")
    return library, "slopfast-pipeline.exe" if system == "windows" else "slopfast-pipeline"


def build_id(sources: list[Path], flags: list[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(sources + list(LIB.glob("*.h"))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(" ".join(flags).encode())
    return digest.hexdigest()[:16]


def zig_cc(flags: list[str], args: list[str]) -> None:
    try:
        import ziglang  # noqa: F401
    except ImportError:
        sys.exit("slopfast: the native build needs ziglang (pip install ziglang==0.15.1); "
                 "SLOPFAST_NO_NATIVE=1 installs the pure-Python fallbacks only")
    cmd = [sys.executable, "-m", "ziglang", "cc", *flags, *args]
    print("slopfast:", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=LIB).returncode != 0:
        # SystemExit, not an exception: setuptools' editable install turns an
        # exception in build_py into a warning and installs the checkout anyway,
        # with no library or the last one built
        sys.exit("slopfast: the native build failed (the compiler's messages are above); "
                 "SLOPFAST_NO_NATIVE=1 installs the pure-Python fallbacks only")


def compile_native(out: Path, work: Path, release: bool) -> None:
    """Build the library and the pipeline binary in `work`, copy them to `out`."""
    flags = CFLAGS + (["-s"] if release else [])   # -s: no debug info in what ships
    library_sources = sorted(p for p in LIB.glob("*.c") if p.name != "main.c")
    define = f"-DSLOPFAST_BUILD_ID=\"{build_id(library_sources, flags)}\""
    names = [p.name for p in library_sources]
    library, exe = built_names()
    shared = ["-shared"] + ([] if target_os() == "windows" else ["-fPIC", "-fvisibility=hidden"])
    if target_os() == "darwin":   # else the dylib's id is its path in the build directory
        shared.append(f"-Wl,-install_name,@rpath/{library}")
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    zig_cc(flags, [*shared, define, "-o", str(work / library), *names])
    zig_cc(flags, [define, "-o", str(work / exe), *names, "main.c"])
    # only these two: a Windows build leaves an import library (.lib) beside them
    for name in (library, exe):
        shutil.copy2(work / name, out / name)


class BuildWithNative(build_py):
    def run(self):
        super().run()
        work = Path(self.get_finalized_command("build").build_temp).resolve() / "native"
        if self.editable_mode:
            # the checkout's slopfast/ is the installed package
            if NATIVE:
                compile_native(PACKAGE, work, release=False)
            elif stale := [name for name in built_names() if (PACKAGE / name).exists()]:
                print(f"slopfast: warning: SLOPFAST_NO_NATIVE set, but the checkout holds an earlier "
                      f"build ({', '.join('slopfast/' + name for name in stale)}), which this editable "
                      "install will load; delete those files to run on the fallbacks only", flush=True)
            return
        out = Path(self.build_lib).resolve() / "slopfast"
        for stale in [*out.glob("libchunks.*"), *out.glob("slopfast-pipeline*")]:
            stale.unlink()   # of an earlier build in this build directory, maybe for another target
        if NATIVE:
            compile_native(out, work, release=True)
        else:
            print("slopfast: SLOPFAST_NO_NATIVE set, building the fallbacks only", flush=True)


class PlatformDistribution(Distribution):
    """With the native build the wheel carries binaries: a platform wheel,
    installed to platlib."""

    def has_ext_modules(self):
        return NATIVE


class PlatformWheel(bdist_wheel):
    """A native wheel is `py3-none-<platform>`: the library is loaded with
    ctypes and needs no CPython ABI."""

    def get_tag(self):
        python, abi, platform = super().get_tag()
        if not NATIVE:
            return python, abi, platform
        return "py3", "none", target_platform_tag() if TARGET else platform


setup(cmdclass={"build_py": BuildWithNative, "bdist_wheel": PlatformWheel}, distclass=PlatformDistribution)
