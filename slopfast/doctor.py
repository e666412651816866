"""`slopfast doctor`: how slopfast will run here -- library, build, transport,
backend policy per op, stored decisions, wisdom file, a self-test (docs/cli.md).

The ops shown are the rows of slopfast.ops.OPS with public names. Loaded
only when the subcommand runs (slopfast.cli imports it lazily).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

import slopfast

from . import __version__, dispatch, native
from .cli import EXIT_FATAL, EXIT_OK, _say, backend_env, human_bytes, sole_path
from .errors import BackendUnavailable, SlopfastError
from .ops import OPS, Op

DOCTOR_OPS: tuple[Op, ...] = tuple(op for op in OPS if op.api)


def _decided(op: Op, report: list[dict]) -> list[dict]:
    """The decisions of an op: those the dispatcher made under its name, or NAME_something."""
    return [r for r in report if r["op"] == op.name or r["op"].startswith(op.name + "_")]


def _op_status(op: Op, setting: str | None, info: dict, report: list[dict]) -> dict:
    try:
        for name in op.api:
            getattr(slopfast, name)
    except (ImportError, AttributeError) as exc:
        return {"available": False, "why": f"not available: {exc}"}
    if op.op_id is None:
        return {"available": True, "native_path": False, "backend": sole_path(op), "why": "no native path by design"}
    if setting in ("native", "fallback"):
        policy, why = setting, f"forced by SLOPFAST_BACKEND={setting}"
    elif not info["native_available"]:
        policy, why = "fallback", f"native unavailable: {info['native_error']}"
    else:
        rows = _decided(op, report)
        policy = "auto"
        why = (f"{len(rows)} size class(es) decided, see below" if rows
               else "measured per input-size class, then remembered")
    return {"available": True, "native_path": True, "backend": policy, "why": why}


def doctor_report() -> tuple[dict, list[str]]:
    """Everything `slopfast doctor` shows, and the problems that make it fail."""
    problems: list[str] = []
    info: dict[str, Any] = {
        "version": __version__,
        "package": os.path.dirname(os.path.abspath(__file__)),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "machine": f"{platform.system()} {platform.machine()}",
    }
    lib = native.library_path()
    info["library"] = {"path": str(lib), "exists": lib.exists(), "from": "SLOPFAST_LIB" if os.environ.get("SLOPFAST_LIB") else "package"}
    binary = native.binary_path()
    info["pipeline_binary"] = {"path": str(binary), "exists": binary.exists()}
    try:
        info["transport"] = native.transport()
        info["native_available"] = native.available()
        info["native_error"] = native.load_error()
    except BackendUnavailable as exc:
        info["transport"] = None
        info["native_available"] = False
        info["native_error"] = str(exc)
        problems.append(str(exc))
    info["native_version"] = native.version()
    info["build_id"] = native.build_id()
    try:
        setting = dispatch.backend_setting()
    except BackendUnavailable as exc:
        setting = None
        problems.append(str(exc))
    info["backend"] = setting
    if setting == "native" and not info["native_available"]:
        problems.append(f"SLOPFAST_BACKEND=native, but {info['native_error']}")
    wisdom = dispatch.wisdom_path()
    info["wisdom"] = {
        "path": wisdom,
        "setting": os.environ.get("SLOPFAST_WISDOM", "") or "default",
        "exists": bool(wisdom and os.path.exists(wisdom)),
    }
    report = dispatch.backend_report()
    info["decisions"] = [r for r in report if r["size_class"] is not None]   # the ops list says the rest
    info["ops"] = {op.name: _op_status(op, setting, info, report) for op in DOCTOR_OPS}
    # A quick self-check: both paths give the same bytes on a small input.
    if info["native_available"] and setting is not None:
        items = [("a.py", "def f():\n    return 1\n"), ("b.md", "# T\n\n```\nx\n```\n")]
        try:
            build_markdown = slopfast.build_markdown
            with backend_env("native"):
                n = build_markdown(items, as_bytes=True)
            with backend_env("fallback"):
                f = build_markdown(items, as_bytes=True)
            info["self_test"] = "ok: native == fallback (build_markdown)" if n == f else "MISMATCH"
            if n != f:
                problems.append("self-test: native and fallback build_markdown differ")
        except SlopfastError as exc:
            info["self_test"] = f"error: {exc}"
            problems.append(f"self-test failed: {exc}")
    else:
        info["self_test"] = "skipped (native unavailable)"
    info["problems"] = problems
    return info, problems


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _op_line(name: str, o: dict) -> str:
    if not o["available"]:
        return f"  {name:<15} {'-':<9} {o['why']}"
    if not o["native_path"]:
        return f"  {name:<15} {o['backend']} ({o['why']})"
    return f"  {name:<15} {o['backend']:<9} {o['why']}"


def command(args: argparse.Namespace) -> int:
    """`slopfast doctor [--json]`: exit 3 when it finds a problem."""
    info, problems = doctor_report()
    if args.json:
        json.dump(info, sys.stdout, indent=1, default=str)
        print()
        return EXIT_FATAL if problems else EXIT_OK
    lib = info["library"]
    print(f"slopfast {info['version']}  ({info['package']})")
    print(f"python:     {info['python']}, {info['machine']}")
    print(f"library:    {lib['path']} ({'exists' if lib['exists'] else 'missing'}; from {lib['from']})")
    if info["native_version"]:
        print(f"native:     loaded: {info['native_version']}")
        print(f"build id:   {info['build_id']}")
    else:
        print(f"native:     unavailable: {info['native_error']}")
    print(f"transport:  {info['transport']} (SLOPFAST_TRANSPORT; pipeline binary {info['pipeline_binary']['path']}"
          f"{'' if info['pipeline_binary']['exists'] else ' missing'})")
    print(f"backend:    {info['backend']} (SLOPFAST_BACKEND={os.environ.get('SLOPFAST_BACKEND', '')!s})")
    w = info["wisdom"]
    if w["path"]:
        print(f"wisdom:     {w['path']} ({'exists' if w['exists'] else 'not written yet'}; SLOPFAST_WISDOM={w['setting']})")
    else:
        print(f"wisdom:     off (SLOPFAST_WISDOM={w['setting']})")
    print("ops:")
    for name, o in info["ops"].items():
        print(_op_line(name, o))
    if info["decisions"]:
        print("decisions (op, input size, backend, why, native vs fallback time):")
        for r in info["decisions"]:
            sizes = f"{human_bytes(r['bytes_from'])}..{human_bytes(r['bytes_to'])}"
            if r.get("variant"):
                sizes = f"{r['variant']} {sizes}"
            timing = ""
            if "native_s" in r or "fallback_s" in r:
                timing = f"native {_fmt_seconds(r.get('native_s'))} vs fallback {_fmt_seconds(r.get('fallback_s'))}"
            print(f"  {r['op']:<22} {sizes:<22} {r.get('backend', '?'):<9} {r.get('why', ''):<9} {timing}")
    else:
        print("decisions:  none yet")
    print(f"self-test:  {info['self_test']}")
    for p in problems:
        _say(f"problem: {p}")
    return EXIT_FATAL if problems else EXIT_OK
