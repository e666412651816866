"""slopfast: fast markdown context building and snapshot serialization.

Every operation has a native path (libchunks, C11, through ctypes) and a
pure-Python fallback giving the same bytes; a dispatcher picks per op and
input size by measured speed (SLOPFAST_BACKEND=auto|native|fallback).
"""
from .aggregate import BuildResult, build_markdown
from .dispatch import backend_report
from .errors import BackendUnavailable, InputError, PipelineError, SlopfastError
from .markdown import Heading, markdown_outline, summarise_markdown
from .python_skeleton import SkeletonError, summarise_python
from .snapshot import SnapshotError, SnapshotHistory, snapshot_deserialize, snapshot_serialize

__version__ = "0.1.0"

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
