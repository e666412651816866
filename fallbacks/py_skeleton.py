"""Python module skeletons with `ast` (the fallback of lib/py_skeleton.c).

The rules are in docs/python-skeleton.md. Every piece of output is a slice
of the source: ast positions give line numbers and UTF-8 byte columns, so
the source is handled as bytes (after the same preparation as the C side:
BOM dropped, CR LF and lone CR turned into LF). Where ast keeps no position
(a header's colon, `else:` / `finally:`), a short forward scan over text
that can hold no string literal finds it.

Where ast cannot build the module (a syntax error, or a module too deep for
CPython's parser), the result is the scanner's verdict, as on the native
path: `scan_skeleton`, at the end of this file, is lib/py_skeleton.c's
scanner and block machine in Python, function for function.
"""
from __future__ import annotations

import ast
import re
import threading
from typing import Iterable

__all__ = ["SkeletonSyntaxError", "check", "prepare", "scan_skeleton", "skeleton"]

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

    def logical_start(self, ls: int) -> int:
        """ls, the start of the physical line of a logical line's first token,
        moved back over the continuation-only lines (blanks, a backslash)
        before it: where the logical line starts."""
        src = self.src
        while ls >= 2 and src[ls - 2] == 0x5C:
            prev = src.rfind(b"\n", 0, ls - 2) + 1
            if src[prev : ls - 2].strip(b" \t\f"):
                break
            ls = prev
        return ls

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

    def continues(self, prev, node) -> bool:
        """Does node, on a later physical line than prev ends on, share prev's
        logical line (`a;` then a backslash continuation then `b`)? Only if
        the line before node's ends with a backslash."""
        if self.src[self.starts[node.lineno - 1] - 2] != 0x5C:
            return False
        gap = self.src[self.end(prev) : self.start(node)]
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
        """What is before node, the first token of its logical line, on that line."""
        at = self.start(node)
        return self.src[self.logical_start(self.line_start(at)) : at]

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
            return _plus4(self.indent_of(header_node)), True
        return self.indent_of(body[0]), False

    def stmts(self, body: list, doc_ok: bool, quals: tuple, block_indent: bytes | None) -> bool:
        """Summarised statements; block_indent is set for one-line bodies."""
        content = False
        indent = b""
        prev = None
        for i, node in enumerate(body):
            if block_indent is not None:
                indent = block_indent
            elif prev is None or (node.lineno != prev.end_lineno and not self.continues(prev, node)):
                indent = self.indent_of(node)   # a logical line's statements share its indentation
            prev = node
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
            start = self.logical_start(self.decorator_line(node.decorator_list[0]))
        else:
            start = self.logical_start(self.line_start(self.start(node)))
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
            head = self.logical_start(self.line_start(kw))
            self.out.append(self.src[head:colon + 1] + b"\n")
            if self.inline(colon):
                indent = _plus4(self.src[head:kw])
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


def _plus4(prefix: bytes) -> bytes:
    """A one-line body's indentation: its header's prefix with 4 more spaces
    where CPython's column count of it stops (before the first backslash
    that follows a non-zero column; else at the end)."""
    col = 0
    for i, c in enumerate(prefix):
        if c == 0x20:
            col += 1
        elif c == 0x09:
            col = (col // 8 + 1) * 8
        elif c == 0x0C:
            col = 0
        elif c == 0x5C and col:
            return prefix[:i] + b"    " + prefix[i:]
    return prefix + b"    "


def _is_doc(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _names(names: Iterable) -> frozenset:
    return frozenset(n.encode("utf-8") if isinstance(n, str) else bytes(n) for n in names)


def _source(data: bytes) -> tuple[bytes, str]:
    """The prepared source, as bytes and as text; SkeletonSyntaxError unless
    it is UTF-8 without NUL (as the C side checks, and words, it first)."""
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
    return src, text


# CPython 3.11's ast keeps its recursion depth in state that threads share: two
# ast.parse calls at once can fail with "AST constructor recursion depth
# mismatch" (python/cpython gh-106905). The GIL runs one parse at a time anyway.
_parse_lock = threading.Lock()


def _ast(text: str) -> ast.Module:
    try:
        with _parse_lock:
            return ast.parse(text)
    except SyntaxError as exc:
        raise SkeletonSyntaxError(f"line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SkeletonSyntaxError(str(exc) or type(exc).__name__) from None


def check(data: bytes) -> None:
    """Raise SkeletonSyntaxError unless the source is UTF-8 that ast accepts
    (with CPython's message: `strict=True`)."""
    _ast(_source(data)[1])


def skeleton(data: bytes, full: Iterable = (), signatures: Iterable = ()) -> bytes:
    """The skeleton of `data` (UTF-8 Python source), from ast; where ast cannot
    build the module, the scanner's verdict (docs/python-skeleton.md, "Syntax
    errors"): its best-effort skeleton, or SkeletonSyntaxError with its message."""
    src, text = _source(data)
    full_names, sig_names = _names(full), _names(signatures)
    try:
        tree = _ast(text)
    except SkeletonSyntaxError:
        return scan_skeleton(src, full_names - {b""}, sig_names - {b""})
    sk = _Skel(src, full_names, sig_names)
    sk.stmts(tree.body, True, (), None)
    return b"".join(sk.out)


# ---- the scanner's rules in Python (lib/py_skeleton.c, line for line) ------------
#
# Used only where ast cannot build the module (a syntax error, or a module too
# deep for CPython's parser): the result is then the scanner's verdict, as on the
# native path: its best-effort skeleton, or its error. Names and structure follow
# the C file so the two can be read side by side; tests hold them to each other.

_MAX_PARENS = 200
_MAX_FSTACK = 300
_MAX_FRAMES = 256
_MAX_INDENT = 100
_PAD = 8

(_KW_NONE, _KW_AT, _KW_DEF, _KW_CLASS, _KW_IF, _KW_ELIF, _KW_ELSE, _KW_TRY, _KW_EXCEPT, _KW_FINALLY,
 _KW_LOOP, _KW_ASYNC, _KW_MATCH, _KW_IMPORT, _KW_DROP) = range(15)
_KEYWORDS = {
    b"if": _KW_IF, b"def": _KW_DEF, b"try": _KW_TRY, b"for": _KW_LOOP, b"del": _KW_DROP,
    b"elif": _KW_ELIF, b"else": _KW_ELSE, b"with": _KW_LOOP, b"from": _KW_IMPORT, b"pass": _KW_DROP,
    b"class": _KW_CLASS, b"while": _KW_LOOP, b"async": _KW_ASYNC, b"match": _KW_MATCH, b"break": _KW_DROP,
    b"raise": _KW_DROP, b"except": _KW_EXCEPT, b"import": _KW_IMPORT, b"return": _KW_DROP,
    b"global": _KW_DROP, b"assert": _KW_DROP, b"finally": _KW_FINALLY, b"continue": _KW_DROP,
    b"nonlocal": _KW_DROP,
}
_ST_DROP, _ST_KEEP, _ST_DOC = 0, 1, 2
(_T_NAME, _T_STR, _T_STROTHER, _T_PAREN, _T_CLOSEPAREN, _T_OPEN, _T_CLOSE, _T_OTHER, _T_EQ, _T_AUG,
 _T_COLON, _T_SEMI, _T_LAMBDA) = range(13)
_FS_STR, _FS_EXPR, _FS_SPEC = 0, 1, 2
_RAW, _FMT, _BYTES = 1, 2, 4
_F_MODULE, _F_CLASS, _F_CLAUSE, _F_FUNC, _F_SKIP, _F_FULL, _F_CONT = range(7)
_NO_DECO = -1

_IDENT_RUN = re.compile(rb"[0-9A-Za-z_\x80-\xff]*")
_NUMBER_RUN = re.compile(rb"[0-9A-Za-z_\x80-\xff.]*")
_STR_RUN = re.compile(rb"[^\x00\n'\"\\]*")
_BLANKS = re.compile(rb"[ \t\f]*")
_QUOTES = (0x22, 0x27)
_OPS = frozenset(b"=:;<>*/+-%@&|^!")
_OPEN = frozenset(b"([{")
_CLOSE = frozenset(b")]}")


def _kw_compound(kw: int) -> bool:
    return _KW_DEF <= kw <= _KW_LOOP


def _kw_clause(kw: int) -> bool:
    return kw in (_KW_ELIF, _KW_ELSE, _KW_EXCEPT, _KW_FINALLY)


class _ScanFail(Exception):
    def __init__(self, at: int, why: str):
        self.at, self.why = at, why


class _Seg:
    __slots__ = ("start", "end", "ntok", "kw", "assign", "lambdas", "doc", "opens", "closes")

    def __init__(self):
        self.start = self.end = self.ntok = self.kw = self.assign = self.lambdas = 0
        self.doc = self.opens = self.closes = 0


class _Line:
    __slots__ = ("phys", "ins", "first", "nl", "col", "kw", "compound", "want_name", "colon", "first_colon",
                 "name", "ntok", "stmts")

    def __init__(self):
        self.phys = self.ins = self.first = self.nl = self.col = self.kw = 0
        self.compound = self.want_name = False
        self.colon = self.first_colon = 0
        self.name = b""
        self.ntok = 0
        self.stmts: list = []


class _FsFrame:
    __slots__ = ("kind", "quote", "triple", "raw", "depth", "str_ix")

    def __init__(self, kind, quote=0, triple=False, raw=False, str_ix=0):
        self.kind, self.quote, self.triple, self.raw, self.depth, self.str_ix = kind, quote, triple, raw, 0, str_ix


class _Frame:
    __slots__ = ("kind", "doc_ok", "no_doc", "started", "content", "dropped", "head_col", "body_col", "body_ind",
                 "deco", "out_mark", "full_start", "full_end", "qual_depth")

    def __init__(self, kind, head_col, qual_depth):
        self.kind, self.head_col, self.qual_depth = kind, head_col, qual_depth
        self.doc_ok = self.no_doc = self.started = self.content = self.dropped = False
        self.body_col = -1
        self.body_ind = b""
        self.deco = _NO_DECO
        self.out_mark = self.full_start = self.full_end = 0


def _prefix_flags(word: bytes) -> int:
    n = len(word)
    if n == 0:
        return 0
    if n > 2:
        return -1
    flags = u = 0
    for c in word:
        c |= 0x20
        if c == 0x72:                       # r
            if flags & _RAW:
                return -1
            flags |= _RAW
        elif c == 0x62:                     # b
            if flags & (_BYTES | _FMT):
                return -1
            flags |= _BYTES
        elif c in (0x66, 0x74):             # f t
            if flags & (_BYTES | _FMT):
                return -1
            flags |= _FMT
        elif c == 0x75:                     # u
            u += 1
        else:
            return -1
    return -1 if u and n != 1 else flags


class _Scan:
    """The scanner (logical lines) and the block machine (frames), as in C."""

    def __init__(self, src: bytes, full: frozenset, sigs: frozenset):
        self.n = len(src)
        self.p = src + b"\0" * _PAD
        self.pos = 0
        self.depth = 0
        self.brackets: list = []      # (char, offset) of each open bracket
        self.seg = _Seg()
        self.full, self.sigs = full, sigs
        self.out: list = []
        self.qual: list = []          # one name per open class frame, and the def being named
        self.frames: list = []
        self.at = 0
        self.indents = [0]

    def line_at(self, at: int) -> int:
        return self.p.count(b"\n", 0, min(at, self.n)) + 1

    def comment_end(self, i: int) -> int:
        nl = self.p.find(b"\n", i, self.n) if i < self.n else -1
        return self.n if nl < 0 else nl

    def fail_unterminated(self, open_: int, at: int, triple: bool):
        raise _ScanFail(open_, "unterminated %sstring literal (detected at line %d)"
                        % ("triple-quoted " if triple else "", self.line_at(at)))

    # -- statements within a logical line ------------------------------------

    def seg_end(self, L: _Line) -> None:
        g = self.seg
        if g.ntok:
            kind = _ST_DROP
            if g.kw == _KW_IMPORT or (g.kw != _KW_DROP and g.assign):
                kind = _ST_KEEP
            elif g.doc in (1, 2) and g.opens == g.closes:
                kind = _ST_DOC
            L.stmts.append((g.start, g.end, kind))
        self.seg = _Seg()

    def line_kw(self, L: _Line, kind: int, a: int, b: int) -> None:
        kw = _KEYWORDS.get(self.p[a:b], _KW_NONE) if kind == _T_NAME else _KW_NONE
        if L.ntok == 0:
            if kind == _T_OTHER and self.p[a] == 0x40:
                kw = _KW_AT
            L.kw = kw
            L.want_name = kw in (_KW_DEF, _KW_CLASS)
        elif L.kw == _KW_ASYNC and L.ntok == 1:
            L.kw = _KW_DEF if kw == _KW_DEF else (_KW_LOOP if kw == _KW_LOOP else _KW_NONE)
            L.want_name = L.kw == _KW_DEF
        elif L.want_name and kind == _T_NAME:
            L.name = self.p[a:b]
            L.want_name = False

    def on_tok(self, L: _Line, kind: int, a: int, b: int) -> None:
        g = self.seg
        if L.ntok < 2 or L.want_name:
            self.line_kw(L, kind, a, b)
        L.ntok += 1
        if kind == _T_SEMI:
            self.seg_end(L)
            return
        if g.ntok == 0:
            g.start = a
            g.kw = _KEYWORDS.get(self.p[a:b], _KW_NONE) if kind == _T_NAME else _KW_NONE
        g.ntok += 1
        g.end = b
        if kind == _T_PAREN:        # seg_doc
            if g.doc == 0:
                g.opens += 1
            else:
                g.doc = 3
        elif kind == _T_STR:
            g.doc = 1 if g.doc <= 1 else 3
        elif kind == _T_CLOSEPAREN:
            if g.doc in (1, 2):
                g.doc = 2
                g.closes += 1
            else:
                g.doc = 3
        else:
            g.doc = 3
        if kind == _T_LAMBDA:
            g.lambdas += 1
        elif kind in (_T_EQ, _T_AUG):
            if not g.lambdas:
                g.assign = 1
        elif kind == _T_COLON:
            if g.lambdas:
                g.lambdas -= 1
            elif _kw_compound(L.kw) and not L.compound:
                L.compound = True
                L.colon = a
                self.seg = _Seg()           # the header is not a statement
            else:
                if L.kw == _KW_MATCH and not L.first_colon:
                    L.first_colon = a + 1
                g.assign = 1

    # -- strings ---------------------------------------------------------------

    def lex_plain(self) -> None:
        p = self.p
        i = self.pos
        q = p[i]
        triple = p[i + 1] == q and p[i + 2] == q
        open_ = i
        i += 3 if triple else 1
        run = _STR_RUN.match
        while True:
            i = run(p, i).end()
            c = p[i]
            if c == q:
                if not triple:
                    self.pos = i + 1
                    return
                if p[i + 1] == q and p[i + 2] == q:
                    self.pos = i + 3
                    return
                i += 1
            elif c == 0x5C:
                if p[i + 1] == 0:
                    break
                i += 2
            elif c == 0x0A:
                if not triple:
                    self.fail_unterminated(open_, i, False)
                i += 1
            elif c == 0:
                break
            else:
                i += 1
        self.fail_unterminated(open_, (self.n - 1 if self.n else 0) if triple else i, triple)

    @staticmethod
    def fs_push(fs: list, frame: _FsFrame, at: int) -> None:
        if len(fs) == _MAX_FSTACK:
            raise _ScanFail(at, "too many nested f-strings")
        fs.append(frame)

    def fs_literal(self, fs: list, i: int, open_: int) -> int:
        p = self.p
        top = fs[-1]
        str_ = top if top.kind == _FS_STR else fs[top.str_ix]
        c = p[i]
        if c == 0:
            raise _ScanFail(open_, "unterminated f-string")
        if c == 0x5C:
            d = p[i + 1]
            if d == 0:
                raise _ScanFail(open_, "unterminated f-string")
            if d in (0x7B, 0x7D):
                i += 1                                          # the brace still counts
            elif not str_.raw and d == 0x4E and p[i + 2] == 0x7B:   # \N{NAME} is no field
                i += 3
                while p[i] and p[i] != 0x7D and p[i] != str_.quote and p[i] != 0x0A:
                    i += 1
                if p[i] != 0x7D:
                    raise _ScanFail(open_, "malformed \\N escape in f-string")
                i += 1
            else:
                i += 2
        elif c == str_.quote and (not str_.triple or (p[i + 1] == c and p[i + 2] == c)):
            if top.kind != _FS_STR:
                raise _ScanFail(i, "f-string: expecting '}'")
            i += 3 if str_.triple else 1
            fs.pop()
        elif c == 0x0A and not str_.triple:
            raise _ScanFail(open_, "unterminated f-string")
        elif c == 0x7B:
            if top.kind == _FS_STR and p[i + 1] == 0x7B:
                i += 2
            else:
                six = len(fs) - 1 if top.kind == _FS_STR else top.str_ix
                self.fs_push(fs, _FsFrame(_FS_EXPR, str_ix=six), i)
                i += 1
        elif c == 0x7D:
            if top.kind == _FS_STR:
                if p[i + 1] != 0x7D:
                    raise _ScanFail(i, "f-string: single '}' is not allowed")
                i += 2
            else:
                fs.pop()
                i += 1
        else:
            i += 1
        return i

    def fs_expr_word(self, fs: list, i: int) -> int:
        p = self.p
        a = i
        i = _IDENT_RUN.match(p, i).end()
        if p[i] in _QUOTES:
            fl = _prefix_flags(p[a:i])
            if fl >= 0:
                if fl & _FMT:
                    q = p[i]
                    triple = p[i + 1] == q and p[i + 2] == q
                    self.fs_push(fs, _FsFrame(_FS_STR, q, triple, bool(fl & _RAW)), a)
                    i += 3 if triple else 1
                else:
                    self.pos = i
                    self.lex_plain()
                    i = self.pos
        return i

    def fs_expr(self, fs: list, i: int, open_: int) -> int:
        p = self.p
        top = fs[-1]
        c = p[i]
        if c == 0:
            raise _ScanFail(open_, "unterminated f-string")
        if c == 0x23:
            while p[i] and p[i] != 0x0A:
                i += 1
        elif c in _QUOTES:
            return self.fs_expr_word(fs, i)
        elif c in _OPEN:
            if top.depth >= _MAX_PARENS:
                raise _ScanFail(i, "too many nested parentheses")
            top.depth += 1
            i += 1
        elif c in (0x29, 0x5D):
            if top.depth:
                top.depth -= 1
            i += 1
        elif c == 0x7D:
            if top.depth:
                top.depth -= 1
            else:
                fs.pop()
            i += 1
        elif c == 0x3A:
            if top.depth == 0:
                top.kind = _FS_SPEC
            i += 1
        elif c == 0x21:
            i += 2 if p[i + 1] == 0x3D else 1
        elif _IDENT_TAB[c] and not 0x30 <= c <= 0x39:
            return self.fs_expr_word(fs, i)
        else:
            i += 1
        return i

    def lex_fstring(self, raw: bool) -> None:
        p = self.p
        i = open_ = self.pos
        q = p[i]
        triple = p[i + 1] == q and p[i + 2] == q
        fs: list = []
        self.fs_push(fs, _FsFrame(_FS_STR, q, triple, raw), i)
        i += 3 if triple else 1
        while fs:
            if fs[-1].kind == _FS_EXPR:
                i = self.fs_expr(fs, i, open_)
            else:
                i = self.fs_literal(fs, i, open_)
        self.pos = i

    # -- tokens ------------------------------------------------------------------

    def lex_word(self, L: _Line) -> None:
        p = self.p
        a = self.pos
        i = _IDENT_RUN.match(p, a).end()
        if p[i] in _QUOTES:
            fl = _prefix_flags(p[a:i])
            if fl >= 0:
                self.pos = i
                if fl & _FMT:
                    self.lex_fstring(bool(fl & _RAW))
                else:
                    self.lex_plain()
                self.on_tok(L, _T_STROTHER if fl & (_FMT | _BYTES) else _T_STR, a, self.pos)
                return
        self.pos = i
        kind = _T_NAME
        if self.depth == 0 and i - a == 6 and p[a:i] == b"lambda":
            kind = _T_LAMBDA
        self.on_tok(L, kind, a, i)

    def lex_number(self, L: _Line) -> None:
        a = self.pos
        self.pos = _NUMBER_RUN.match(self.p, a).end()
        self.on_tok(L, _T_OTHER, a, self.pos)

    def lex_open(self, L: _Line, c: int) -> None:
        if self.depth >= _MAX_PARENS:
            raise _ScanFail(self.pos, "too many nested parentheses")
        self.brackets.append((c, self.pos))
        self.depth += 1
        a = self.pos
        self.pos += 1
        self.on_tok(L, _T_PAREN if c == 0x28 else _T_OPEN, a, a + 1)

    def lex_close(self, L: _Line, c: int) -> None:
        want = 0x28 if c == 0x29 else (0x5B if c == 0x5D else 0x7B)
        if self.depth == 0:
            raise _ScanFail(self.pos, "unmatched '%c'" % c)
        open_, at = self.brackets[-1]
        if open_ != want:
            if self.p.count(b"\n", at, self.pos) == 0:
                why = "closing parenthesis '%c' does not match opening parenthesis '%c'" % (c, open_)
            else:
                why = "closing parenthesis '%c' does not match opening parenthesis '%c' on line %d" % (
                    c, open_, self.p.count(b"\n", 0, at) + 1)
            raise _ScanFail(self.pos, why)
        self.brackets.pop()
        self.depth -= 1
        a = self.pos
        self.pos += 1
        self.on_tok(L, _T_CLOSEPAREN if c == 0x29 else _T_CLOSE, a, a + 1)

    def lex_op(self, L: _Line, c: int) -> None:
        p = self.p
        a = self.pos
        n = 1
        kind = _T_OTHER
        if c == 0x3D:                                   # =
            if p[a + 1] == 0x3D:
                n = 2
            else:
                kind = _T_EQ
        elif c == 0x3A:                                 # :
            if p[a + 1] == 0x3D:
                n = 2
            else:
                kind = _T_COLON
        elif c == 0x3B:
            kind = _T_SEMI
        elif c in b"<>*/":
            if p[a + 1] == c:
                n = 2
            if p[a + n] == 0x3D:
                kind = _T_AUG if (n == 2 or c in b"*/") else _T_OTHER
                n += 1
        elif c in b"+-%@&|^":
            if p[a + 1] == 0x3D:
                kind = _T_AUG
                n = 2
            elif c == 0x2D and p[a + 1] == 0x3E:
                n = 2
        elif c == 0x21:
            if p[a + 1] == 0x3D:
                n = 2
            else:
                raise _ScanFail(a, "invalid syntax")
        if self.depth:
            kind = _T_OTHER
        self.pos = a + n
        self.on_tok(L, kind, a, a + n)

    def line_start(self, L: _Line) -> bool:
        """Skips blank and comment-only lines; False at the end of the source."""
        p = self.p
        i = self.pos
        col = cont_col = cont_at = 0
        ls = i
        while True:
            while True:
                c = p[i]
                if c == 0x20:
                    col += 1
                elif c == 0x09:
                    col = (col // 8 + 1) * 8
                elif c == 0x0C:
                    col = 0
                else:
                    break
                i += 1
            if c == 0x23:
                i = self.comment_end(i)
                c = p[i]
            if c == 0x0A:
                i += 1
                col = cont_col = 0
                ls = i
                continue
            if c == 0x5C and (p[i + 1] == 0 or (p[i + 1] == 0x0A and i + 2 >= self.n)):
                raise _ScanFail(i, "unexpected EOF while parsing")
            if c == 0x5C and p[i + 1] == 0x0A:
                if not cont_col:
                    cont_col, cont_at = col, i
                i += 2
                continue                    # the line goes on: its start stays
            self.pos = i
            if c == 0:
                return False
            L.phys = ls
            L.first = i
            L.col = cont_col or col
            L.ins = cont_at if cont_col else i
            return True

    def scan_line(self) -> _Line | None:
        """One logical line, or None at the end."""
        L = _Line()
        self.seg = _Seg()
        if not self.line_start(L):
            return None
        p = self.p
        blanks = _BLANKS.match
        while True:
            c = p[self.pos]
            if c in (0x20, 0x09, 0x0C):
                self.pos = blanks(p, self.pos).end()
            elif c == 0x0A:
                if self.depth == 0:
                    L.nl = self.pos
                    self.pos += 1
                    break
                self.pos += 1
            elif c == 0:
                if self.depth:
                    open_, at = self.brackets[-1]
                    raise _ScanFail(at, "'%c' was never closed" % open_)
                L.nl = self.pos
                break
            elif c == 0x23:
                self.pos = self.comment_end(self.pos)
            elif c == 0x5C:
                at = self.pos
                d = p[at + 1]
                if d != 0x0A and d != 0:
                    raise _ScanFail(at, "unexpected character after line continuation character")
                self.pos += 2 if d else 1
                if self.pos >= self.n and not self.depth:
                    raise _ScanFail(at, "unexpected EOF while parsing")
            elif c in _QUOTES:
                a = self.pos
                self.lex_plain()
                self.on_tok(L, _T_STR, a, self.pos)
            elif c in _OPEN:
                self.lex_open(L, c)
            elif c in _CLOSE:
                self.lex_close(L, c)
            elif c == 0x2E:
                if 0x30 <= p[self.pos + 1] <= 0x39:
                    self.lex_number(L)
                else:
                    self.on_tok(L, _T_OTHER, self.pos, self.pos + 1)
                    self.pos += 1
            elif c in (0x2C, 0x7E):
                self.on_tok(L, _T_OTHER, self.pos, self.pos + 1)
                self.pos += 1
            elif c in _OPS:
                self.lex_op(L, c)
            elif _IDENT_TAB[c]:
                if 0x30 <= c <= 0x39:
                    self.lex_number(L)
                else:
                    self.lex_word(L)
            else:
                raise _ScanFail(self.pos, "invalid character")
        self.seg_end(L)
        if L.kw == _KW_MATCH and len(L.stmts) == 1 and L.first_colon and L.first_colon == L.stmts[0][1]:
            L.kw = _KW_LOOP                     # `match subject:` opens a dropped block
            L.compound = True
            L.colon = L.first_colon - 1
            L.stmts = []
        elif L.kw in (_KW_MATCH, _KW_ASYNC):
            L.kw = _KW_NONE
        if _kw_compound(L.kw) and not L.compound:
            raise _ScanFail(L.first, "expected ':'")
        if L.kw == _KW_AT and len(L.stmts) != 1:
            raise _ScanFail(L.first, "invalid decorator")
        return L

    # -- the block machine ---------------------------------------------------------

    def emit(self, ind: bytes, body: bytes) -> None:
        self.out.append(ind + body + b"\n")

    def ind_of(self, L: _Line) -> bytes:
        return self.p[L.phys:L.first]

    def ind_inline(self, L: _Line) -> bytes:
        p = self.p
        return p[L.phys:L.ins] + b"    " + p[L.ins:L.first]

    def push_frame(self, kind: int, head_col: int) -> _Frame:
        if len(self.frames) == _MAX_FRAMES:
            raise _ScanFail(self.pos, "too many levels of indentation")
        f = _Frame(kind, head_col, len(self.qual))
        self.frames.append(f)
        return f

    def qual_name(self) -> bytes:
        """The joined name: a dot only after a non-empty prefix (as in C)."""
        out = b""
        for name in self.qual:
            out = out + b"." + name if out else name
        return out

    def emit_stmts(self, F: _Frame, L: _Line, ind: bytes) -> None:
        p = self.p
        for i, (a, b, kind) in enumerate(L.stmts):
            if kind == _ST_KEEP or (kind == _ST_DOC and i == 0 and F.doc_ok):
                self.emit(ind, p[a:b])
                F.content = True
        F.doc_ok = False

    def close_frame(self, F: _Frame) -> None:
        parent = self.frames[-2] if len(self.frames) >= 2 else None
        kind = F.kind
        if kind in (_F_CLASS, _F_CLAUSE):
            if not F.started:
                raise _ScanFail(self.at, "expected an indented block")
            if F.deco != _NO_DECO:
                raise _ScanFail(self.at, "a decorator must precede def or class")
            if not F.content:
                self.emit(F.body_ind, b"...")
            if kind == _F_CLAUSE and F.content and parent:
                parent.content = True
        elif kind == _F_FUNC:
            raise _ScanFail(self.at, "expected an indented block")
        elif kind == _F_SKIP:
            if not F.started:
                raise _ScanFail(self.at, "expected an indented block")
        elif kind == _F_FULL:
            if not F.started:
                raise _ScanFail(self.at, "expected an indented block")
            self.emit(b"", self.p[F.full_start:F.full_end])
        elif kind == _F_CONT:
            if not F.dropped:
                if F.content:
                    if parent:
                        parent.content = True
                else:
                    del self.out[F.out_mark:]     # no clause kept anything: drop the block
        del self.qual[F.qual_depth:]
        self.frames.pop()

    def emit_header(self, T: _Frame, L: _Line) -> None:
        start = T.deco if T.deco != _NO_DECO else L.phys
        T.deco = _NO_DECO
        self.emit(b"", self.p[start:L.colon + 1])

    def on_def(self, T: _Frame, L: _Line) -> None:
        start = T.deco if T.deco != _NO_DECO else L.phys
        qdepth = len(self.qual)
        self.qual.append(L.name)
        qual = self.qual_name()
        full = qual in self.full
        sig = not full and qual in self.sigs
        T.content = True
        if full:
            T.deco = _NO_DECO
            del self.qual[qdepth:]
            if L.stmts:
                self.emit(b"", self.p[start:L.nl])
                return
            F = self.push_frame(_F_FULL, L.col)
            F.full_start, F.full_end = start, L.nl
            return
        self.emit_header(T, L)
        if L.kw == _KW_CLASS and not sig:
            F = self.push_frame(_F_CLASS, L.col)
            F.qual_depth = qdepth
            F.doc_ok = True
            if not L.stmts:
                return
            F.started = True
            F.body_ind = self.p[L.phys:L.first]
            self.emit_stmts(F, L, self.ind_inline(L))
            if not F.content:
                self.emit(self.ind_inline(L), b"...")
                F.content = True
            self.close_frame(F)
            return
        del self.qual[qdepth:]
        if L.stmts:
            ind = self.ind_inline(L)
            a, b, kind = L.stmts[0]
            if not sig and kind == _ST_DOC:
                self.emit(ind, self.p[a:b])
            self.emit(ind, b"...")
            return
        F = self.push_frame(_F_FUNC, L.col)
        F.no_doc = sig

    def on_clause(self, cont: _Frame, L: _Line) -> None:
        if cont.dropped:
            if not L.stmts:
                self.push_frame(_F_SKIP, L.col)
            return
        self.emit(b"", self.p[L.phys:L.colon + 1])
        F = self.push_frame(_F_CLAUSE, L.col)
        if not L.stmts:
            return
        F.started = True
        self.emit_stmts(F, L, self.ind_inline(L))
        if not F.content:
            self.emit(self.ind_inline(L), b"...")
        if F.content:
            cont.content = True
        self.frames.pop()

    def on_compound(self, T: _Frame, L: _Line) -> None:
        if L.kw in (_KW_DEF, _KW_CLASS):
            self.on_def(T, L)
            return
        if _kw_clause(L.kw):
            raise _ScanFail(L.first, "invalid syntax: clause without its block")
        C = self.push_frame(_F_CONT, L.col)
        C.dropped = L.kw == _KW_LOOP
        C.out_mark = len(self.out)
        self.on_clause(C, L)

    def on_body_line(self, T: _Frame, L: _Line) -> None:
        if not T.started:
            T.started = True
            T.body_col = L.col
            T.body_ind = self.p[L.phys:L.first]
        elif L.col != T.body_col:
            raise _ScanFail(L.first, "unexpected indent" if L.col > T.body_col
                            else "unindent does not match any outer indentation level")
        if L.kw == _KW_AT:
            if T.deco == _NO_DECO:
                T.deco = L.phys
            T.doc_ok = False
            return
        if T.deco != _NO_DECO and L.kw not in (_KW_DEF, _KW_CLASS):
            raise _ScanFail(L.first, "a decorator must precede def or class")
        if L.compound:
            T.doc_ok = False
            self.on_compound(T, L)
            return
        self.emit_stmts(T, L, self.ind_of(L))

    def on_line(self, L: _Line) -> None:
        self.at = L.first
        while True:
            T = self.frames[-1]
            if T.kind == _F_MODULE:
                break
            if T.kind == _F_CONT:
                if L.col == T.head_col and _kw_clause(L.kw):
                    self.on_clause(T, L)
                    return
                if L.col > T.head_col:
                    raise _ScanFail(L.first, "unexpected indent")
            elif L.col > T.head_col:
                break
            self.close_frame(T)
        T = self.frames[-1]
        if T.kind == _F_SKIP:
            T.started = True
        elif T.kind == _F_FULL:
            T.started = True
            T.full_end = L.nl
        elif T.kind == _F_FUNC:
            ind = self.ind_of(L)
            first = L.stmts[0] if L.stmts else None
            if not T.no_doc and L.kw != _KW_AT and not L.compound and first and first[2] == _ST_DOC:
                self.emit(ind, self.p[first[0]:first[1]])
            T.kind = _F_SKIP
            T.started = True
            self.emit(ind, b"...")
        else:
            self.on_body_line(T, L)

    def indent_check(self, L: _Line) -> None:
        """The tokenizer's INDENT/DEDENT rule over every logical line."""
        indents = self.indents
        if L.col > indents[-1]:
            if len(indents) >= _MAX_INDENT:
                raise _ScanFail(L.first, "too many levels of indentation")
            indents.append(L.col)
            return
        while L.col < indents[-1]:
            indents.pop()
        if L.col != indents[-1]:
            raise _ScanFail(L.first, "unindent does not match any outer indentation level")

    def run(self) -> bytes:
        module = self.push_frame(_F_MODULE, -1)
        module.doc_ok = True
        module.started = True
        module.body_col = 0
        while True:
            L = self.scan_line()
            if L is None:
                break
            self.indent_check(L)
            self.on_line(L)
        self.at = self.n - 1 if self.n else 0
        while len(self.frames) > 1:
            self.close_frame(self.frames[-1])
        if self.frames[0].deco != _NO_DECO:
            raise _ScanFail(self.n, "a decorator must precede def or class")
        return b"".join(self.out)


_IDENT_TAB = bytes(1 if c in _IDENT else 0 for c in range(256))


def scan_skeleton(src: bytes, full: frozenset = frozenset(), signatures: frozenset = frozenset()) -> bytes:
    """The scanner's skeleton of prepared UTF-8 source with no NUL (what
    lib/py_skeleton.c gives), or SkeletonSyntaxError with the scanner's message."""
    scan = _Scan(src, full, signatures)
    try:
        return scan.run()
    except _ScanFail as exc:
        raise SkeletonSyntaxError(f"line {scan.line_at(exc.at)}: {exc.why}") from None
