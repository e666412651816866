"""Build the sdist and the wheels of every published platform, on this machine.

    pip install build
    python tools/build_wheels.py --out dist/
    python tools/build_wheels.py --out dist/ --target x86_64-windows-gnu

The sdist is built first and each wheel from it (so a wheel holds nothing the
sdist lacks), all in one isolated build environment (setuptools and ziglang,
installed once); zig cross-compiles libchunks and slopfast-pipeline for each
target (SLOPFAST_TARGET, see setup.py), and setup.py tags the wheel for it.
--no-isolation builds with this Python's setuptools and ziglang instead.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import build
import build.env

ROOT = Path(__file__).resolve().parent.parent
# zig target -> the wheel it makes (setup.py derives the tag from the target)
TARGETS = {
    "x86_64-linux-gnu.2.17": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "aarch64-linux-gnu.2.17": "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "x86_64-macos.11.0": "macosx_11_0_x86_64",
    "aarch64-macos.11.0": "macosx_11_0_arm64",
    "x86_64-windows-gnu": "win_amd64",
}


def build_all(out: Path, targets: list[str], isolation: bool = True) -> list[Path]:
    """The sdist, then one wheel per target, into `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("SLOPFAST_NO_NATIVE", None)
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(build.env.DefaultIsolatedEnv()) if isolation else None

        def builder(src: Path, distribution: str) -> build.ProjectBuilder:
            if env is None:
                return build.ProjectBuilder(src)
            project = build.ProjectBuilder.from_isolated_env(env, src)
            env.install(project.build_system_requires)
            env.install(project.get_requires_for_build(distribution))
            return project

        built = [Path(builder(ROOT, "sdist").build("sdist", out))]
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="slopfast-wheels-")))
        for target in targets:
            with tarfile.open(built[0]) as tar:   # a fresh tree per target: no stale build/
                tar.extractall(tmp / target, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            (src,) = (tmp / target).iterdir()
            os.environ["SLOPFAST_TARGET"] = target
            try:
                built.append(Path(builder(src, "wheel").build("wheel", out)))
            finally:
                del os.environ["SLOPFAST_TARGET"]
            print(f"build_wheels: {target}: {built[-1].name}", flush=True)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (default: dist/)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="build only this target (repeatable; default: all)")
    parser.add_argument("--no-isolation", action="store_true",
                        help="build with this Python's setuptools and ziglang")
    args = parser.parse_args(argv)
    for path in build_all(args.out, args.target or list(TARGETS), isolation=not args.no_isolation):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
