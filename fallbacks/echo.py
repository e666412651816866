"""echo: an input's bytes, as they are (lib/echo.c). The smallest op: it
shows what an op needs (docs/internals.md) and measures the round trip."""
from __future__ import annotations


def echo(data: bytes) -> bytes:
    return bytes(data)
