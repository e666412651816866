"""slopfast: fast markdown context building and snapshot serialization.

Every operation has a native path (libchunks, C11, through ctypes) and a
pure-Python fallback giving the same bytes; a dispatcher picks per op and
input size by measured speed (SLOPFAST_BACKEND=auto|native|fallback).
"""
from .aggregate import BuildResult, build_markdown
from .dispatch import backend_report
from .errors import BackendUnavailable, InputError, PipelineError, SlopfastError

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "BuildResult",
    "InputError",
    "PipelineError",
    "SlopfastError",
    "backend_report",
    "build_markdown",
]
