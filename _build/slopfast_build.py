"""The build backend: setuptools' (setup.py does the native build), plus the
Zig toolchain as a build requirement only when the native build will run.
A fallback-only install (SLOPFAST_NO_NATIVE=1) and the sdist need no ziglang.
"""
import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every PEP 517/660 hook)

ZIGLANG = "ziglang==0.15.1"   # build.zig is written for this version


def _native() -> list[str]:
    return [ZIGLANG] if os.environ.get("SLOPFAST_NO_NATIVE", "") in ("", "0") else []


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _native()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _native()
