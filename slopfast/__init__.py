"""slopfast: fast markdown context building and snapshot serialization.

Every operation has a native path (libchunks, C11, through ctypes) and a
pure-Python fallback giving the same bytes; a dispatcher picks per op and
input size by measured speed (SLOPFAST_BACKEND=auto|native|fallback).
"""
import os as _os

# A source checkout keeps fallbacks/ beside slopfast/ (an install maps it into
# slopfast.fallbacks): `import slopfast` from the repository root finds it there.
_checkout = _os.path.dirname(__path__[0])
if not _os.path.isdir(_os.path.join(__path__[0], "fallbacks")) and \
        _os.path.isfile(_os.path.join(_checkout, "fallbacks", "__init__.py")):
    __path__.append(_checkout)

from .aggregate import BuildResult, build_markdown  # noqa: E402
from .dispatch import backend_report  # noqa: E402
from .errors import BackendUnavailable, InputError, PipelineError, SlopfastError  # noqa: E402
from .ops import exports as _exports  # noqa: E402

__version__ = "0.1.0"

# The other ops' names load on first use (the op registry says where each
# lives): markdown-it-py and msgspec cost more to import than most calls of
# build_markdown take, and the command line rarely needs them.
_LAZY = {name: module for name, module in _exports().items() if name not in globals()}


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


__all__ = sorted(
    {"BackendUnavailable", "InputError", "PipelineError", "SlopfastError", "backend_report"} | set(_exports())
)
