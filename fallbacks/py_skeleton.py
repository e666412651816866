"""Python module skeletons with `ast` (the fallback of lib/py_skeleton.c).

The rules are in docs/python-skeleton.md. Every piece of output is a slice
of the source: ast positions give line numbers and UTF-8 byte columns, so
the source is handled as bytes (after the same preparation as the C side:
BOM dropped, CR LF and lone CR turned into LF). Where ast keeps no position
(a header's colon, `else:` / `finally:`), a short forward scan over text
that can hold no string literal finds it.
"""
from __future__ import annotations

import ast
from typing import Iterable

__all__ = ["SkeletonSyntaxError", "check", "prepare", "skeleton"]

_ASSIGN = tuple(t for t in (ast.Assign, ast.AnnAssign, ast.AugAssign, getattr(ast, "TypeAlias", None)) if t)
_IMPORT = (ast.Import, ast.ImportFrom)
_DEF = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_TRY = tuple(t for t in (ast.Try, getattr(ast, "TryStar", None)) if t)
_IDENT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") | frozenset(range(0x80, 0x100))


class SkeletonSyntaxError(ValueError):
    """The source is not Python this path can skeleton (ast rejected it)."""


def prepare(data: bytes) -> bytes:
    """BOM dropped, CR LF and lone CR as LF: what the C scanner sees."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


class _Skel:
    def __init__(self, src: bytes, full: frozenset, sigs: frozenset):
        self.src = src
        self.full = full
        self.sigs = sigs
        starts = [0]
        find = src.find
        at = find(b"\n")
        while at >= 0:
            starts.append(at + 1)
            at = find(b"\n", at + 1)
        self.starts = starts
        self.out: list[bytes] = []

    # -- positions ---------------------------------------------------------

    def start(self, node) -> int:
        return self.starts[node.lineno - 1] + node.col_offset

    def end(self, node) -> int:
        return self.starts[node.end_lineno - 1] + node.end_col_offset

    def line_start(self, off: int) -> int:
        return self.src.rfind(b"\n", 0, off) + 1

    def line_end(self, off: int) -> int:
        nl = self.src.find(b"\n", off)
        return len(self.src) if nl < 0 else nl

    def logical_end(self, off: int) -> int:
        """End of the logical line whose last token ends at off: its newline
        (a backslash continuation carries it over to the next physical line),
        or the end of the source. Only `;`, blanks, a comment and continuations
        can follow the last token there."""
        src, n = self.src, len(self.src)
        while off < n:
            c = src[off]
            if c == 0x0A:
                return off
            if c == 0x23:
                return self.line_end(off)
            off += 2 if c == 0x5C and src[off + 1 : off + 2] == b"\n" else 1
        return n

    def same_logical_line(self, end: int, start: int) -> bool:
        """Do the statements ending at end and starting at start share one
        logical line (`a;` then a backslash continuation then `b`)?"""
        gap = self.src[end:start]
        return b";" in gap and b"#" not in gap and b"\n" not in gap.replace(b"\\\n", b"")

    def decorator_line(self, node) -> int:
        """Start of the physical line holding the `@` of the decorator whose
        expression is node: between the two lie only blanks, `(`, comments and
        continuations (no string), so the first line back whose text before any
        `#` holds an `@` is the one."""
        off = self.start(node)
        ls = self.line_start(off)
        text = self.src[ls:off]
        while b"@" not in text:
            off = ls - 1
            ls = self.line_start(off)
            text = self.src[ls:off].split(b"#", 1)[0]
        return ls

    def colon_after(self, off: int) -> int:
        """The first `:` at or after off outside comments (no strings can occur there)."""
        src = self.src
        while True:
            c = src[off]
            if c == 0x3A:
                return off
            if c == 0x23:
                off = self.line_end(off)
            else:
                off += 1

    def keyword_after(self, off: int) -> int:
        """Start of the next token after off, skipping blanks, comments, `;` and continuations."""
        src = self.src
        while True:
            c = src[off]
            if c == 0x23:
                off = self.line_end(off)
            elif c in b" \t\f\n;\\":
                off += 1
            else:
                return off

    def inline(self, colon: int) -> bool:
        """Does the body follow the header's colon on the same logical line?"""
        src, off = self.src, colon + 1
        while off < len(src):
            c = src[off]
            if c in b" \t\f":
                off += 1
            elif c == 0x5C and src[off + 1 : off + 2] == b"\n":
                off += 2
            else:
                return c not in b"#\n"
        return False

    def indent_of(self, node) -> bytes:
        at = self.start(node)
        return self.src[self.line_start(at) : at]

    def name_of(self, node) -> bytes:
        """The def/class name as written (ast's name is NFKC-normalised)."""
        src, off = self.src, self.start(node)
        words = 2 if isinstance(node, ast.AsyncFunctionDef) else 1
        for _ in range(words):
            while src[off] in _IDENT:
                off += 1
            while src[off] in b" \t\f\\\n":
                off += 1
        a = off
        while off < len(src) and src[off] in _IDENT:
            off += 1
        return src[a:off]

    # -- emission ----------------------------------------------------------

    def line(self, indent: bytes, body: bytes) -> None:
        self.out.append(indent + body + b"\n")

    def body_indent(self, header_node, colon: int, body: list) -> tuple[bytes, bool]:
        if self.inline(colon):
            return self.indent_of(header_node) + b"    ", True
        return self.indent_of(body[0]), False

    def stmts(self, body: list, doc_ok: bool, quals: tuple, block_indent: bytes | None) -> bool:
        """Summarised statements; block_indent is set for one-line bodies."""
        content = False
        indent = b""
        prev_end = -1
        for i, node in enumerate(body):
            if block_indent is not None:
                indent = block_indent
            elif prev_end < 0 or not self.same_logical_line(prev_end, self.start(node)):
                indent = self.indent_of(node)   # a logical line's statements share its indentation
            prev_end = self.end(node)
            if isinstance(node, _DEF):
                self.define(node, quals)
                content = True
            elif isinstance(node, ast.If) or isinstance(node, _TRY):
                content = self.container(node, quals) or content
            elif isinstance(node, _ASSIGN + _IMPORT) or (i == 0 and doc_ok and _is_doc(node)):
                self.line(indent, self.src[self.start(node) : self.end(node)])
                content = True
        return content

    def header_colon(self, node) -> int:
        ends = [self.start(node)]
        if isinstance(node, ast.ClassDef):
            kids = list(node.bases) + list(node.keywords)
        else:
            a = node.args
            kids = a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] + a.defaults + a.kw_defaults
            kids.append(node.returns)
        kids += getattr(node, "type_params", None) or []
        ends += [self.end(k) for k in kids if k is not None]
        return self.colon_after(max(ends))

    def define(self, node, quals: tuple) -> None:
        name = self.name_of(node)
        qual = b".".join(quals + (name,))
        if node.decorator_list:
            start = self.decorator_line(node.decorator_list[0])
        else:
            start = self.line_start(self.start(node))
        if qual in self.full:
            self.out.append(self.src[start : self.logical_end(self.end(node))] + b"\n")
            return
        colon = self.header_colon(node)
        self.out.append(self.src[start : colon + 1] + b"\n")
        indent, one_line = self.body_indent(node, colon, node.body)
        sig = qual in self.sigs
        if isinstance(node, ast.ClassDef) and not sig:
            if not self.stmts(node.body, True, quals + (name,), indent if one_line else None):
                self.line(indent, b"...")
            return
        if not sig and _is_doc(node.body[0]):
            doc = node.body[0]
            self.line(indent, self.src[self.start(doc) : self.end(doc)])
        self.line(indent, b"...")

    def clauses(self, node) -> list:
        """(header start, colon, body) of each clause of an if/try block."""
        out = []
        if isinstance(node, ast.If):
            while True:
                out.append((self.start(node), self.colon_after(self.end(node.test)), node.body))
                orelse = node.orelse
                if len(orelse) == 1 and isinstance(orelse[0], ast.If) and self.src.startswith(b"elif", self.start(orelse[0])):
                    node = orelse[0]
                    continue
                if orelse:
                    kw = self.keyword_after(self.end(node.body[-1]))
                    out.append((kw, self.colon_after(kw + 4), orelse))
                return out
        out.append((self.start(node), self.colon_after(self.start(node) + 3), node.body))
        last = node.body[-1]
        for h in node.handlers:
            after = self.end(h.type) if h.type is not None else self.start(h) + 6
            out.append((self.start(h), self.colon_after(after), h.body))
            last = h
        if node.orelse:
            kw = self.keyword_after(self.end(last))
            out.append((kw, self.colon_after(kw + 4), node.orelse))
            last = node.orelse[-1]
        if node.finalbody:
            kw = self.keyword_after(self.end(last))
            out.append((kw, self.colon_after(kw + 7), node.finalbody))
        return out

    def container(self, node, quals: tuple) -> bool:
        """An if/try block kept only when some clause keeps something."""
        mark = len(self.out)
        content = False
        for kw, colon, body in self.clauses(node):
            head = self.line_start(kw)
            self.out.append(self.src[head:colon + 1] + b"\n")
            if self.inline(colon):
                indent = self.src[head:kw] + b"    "
                kept = self.stmts(body, False, quals, indent)
            else:
                indent = self.indent_of(body[0])
                kept = self.stmts(body, False, quals, None)
            if not kept:
                self.line(indent, b"...")
            content = content or kept
        if not content:
            del self.out[mark:]
        return content


def _is_doc(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _names(names: Iterable) -> frozenset:
    return frozenset(n.encode("utf-8") if isinstance(n, str) else bytes(n) for n in names)


def _parse(data: bytes) -> tuple[bytes, ast.Module]:
    src = prepare(bytes(data))
    try:
        text = src.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = src.count(b"\n", 0, exc.start) + 1
        raise SkeletonSyntaxError(f"line {line}: source is not valid UTF-8") from None
    nul = src.find(b"\0")
    if nul >= 0:   # as the C side words it (ast's wording differs across Python versions)
        line = src.count(b"\n", 0, nul) + 1
        raise SkeletonSyntaxError(f"line {line}: source code cannot contain null bytes")
    try:
        return src, ast.parse(text)
    except SyntaxError as exc:
        raise SkeletonSyntaxError(f"line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SkeletonSyntaxError(str(exc) or type(exc).__name__) from None


def check(data: bytes) -> None:
    """Raise SkeletonSyntaxError unless the source is UTF-8 that ast accepts."""
    _parse(data)


def skeleton(data: bytes, full: Iterable = (), signatures: Iterable = ()) -> bytes:
    """The skeleton of `data` (UTF-8 Python source); raises SkeletonSyntaxError
    when the source is not UTF-8 or ast rejects it."""
    src, tree = _parse(data)
    sk = _Skel(src, _names(full), _names(signatures))
    sk.stmts(tree.body, True, (), None)
    return b"".join(sk.out)
