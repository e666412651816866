"""slopfast: fast markdown context building and snapshot serialization.

Every operation has a native path (libchunks, C11, through ctypes) and a
pure-Python fallback giving the same bytes; a dispatcher picks per op and
input size by measured speed (SLOPFAST_BACKEND=auto|native|fallback).
"""
from .aggregate import BuildResult, build_markdown
from .dispatch import backend_report
from .errors import BackendUnavailable, InputError, PipelineError, SlopfastError

__version__ = "0.1.0"

# Loaded on first use: markdown-it-py and msgspec cost more to import than most
# calls of build_markdown take, and the command line rarely needs them.
_LAZY = {
    "Heading": "markdown", "markdown_outline": "markdown", "summarise_markdown": "markdown",
    "SkeletonError": "python_skeleton", "summarise_python": "python_skeleton",
    "SnapshotError": "snapshot", "SnapshotHistory": "snapshot",
    "snapshot_deserialize": "snapshot", "snapshot_serialize": "snapshot",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'slopfast' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "BackendUnavailable",
    "BuildResult",
    "Heading",
    "InputError",
    "PipelineError",
    "SkeletonError",
    "SlopfastError",
    "SnapshotError",
    "SnapshotHistory",
    "backend_report",
    "build_markdown",
    "markdown_outline",
    "snapshot_deserialize",
    "snapshot_serialize",
    "summarise_markdown",
    "summarise_python",
]
