"""Summaries for build_markdown's summary and skeleton modes (lib/summary.c)."""
from __future__ import annotations

GENERIC_SUMMARY_LINES = 20


def generic_summary(data: bytes) -> bytes:
    """The first 20 lines, then "... N more lines" when there are more."""
    at = 0
    lines = 0
    while at < len(data) and lines < GENERIC_SUMMARY_LINES:
        nl = data.find(b"\n", at)
        at = len(data) if nl < 0 else nl + 1
        lines += 1
    more = data.count(b"\n", at) + (1 if at < len(data) and not data.endswith(b"\n") else 0)
    if not more:
        return data[:at]
    lead = b"" if at and data[at - 1 : at] == b"\n" else b"\n"
    return data[:at] + lead + b"... %d more line%s" % (more, b"" if more == 1 else b"s")


def summarise(path: bytes, data: bytes, skeleton: bool) -> bytes:
    return generic_summary(data)
