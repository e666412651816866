"""Heading outlines with markdown-it-py: the reference lib/md_outline.c follows.

Only the block stage runs (core rules "normalize" and "block"): a heading's
inline token gets its `.content` there, so the inline stage would only cost
time. tests/test_md_outline.py checks that this gives the same outline as a
full parse.
"""
from __future__ import annotations

import threading

from markdown_it import MarkdownIt

_lock = threading.Lock()
_parser: MarkdownIt | None = None


def _block_parser() -> MarkdownIt:
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                _parser = MarkdownIt("commonmark").disable(["inline", "text_join"])
    return _parser


def outline_tokens(tokens) -> list[tuple[int, str, int]]:
    """(level, text, line) for each heading in a markdown-it token stream."""
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            out.append((int(tok.tag[1:]), tokens[i + 1].content, tok.map[0]))
    return out


def outline(text: str) -> list[tuple[int, str, int]]:
    """(level, text, 0-based start line) of every heading, in document order."""
    return outline_tokens(_block_parser().parse(text))


def summary_line(level: int, text: str) -> str:
    """One heading of the summary rendering (docs/markdown-outline.md)."""
    return "  " * (level - 1) + "- " + text.replace("\n", " ") + "\n"


def summary(text: str) -> str:
    return "".join(summary_line(level, heading) for level, heading, _ in outline(text))
