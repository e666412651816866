"""Seed corpus for fuzz/fuzz_pipeline.c (and the sanitizer/valgrind replays).

    python fuzz/make_seeds.py OUT_DIR [--max-bytes N]

Writes one request file per seed into OUT_DIR: every golden wire vector in
tests/data/wire as it is, then v3 and v1 requests for every op in
lib/op_table.h built with slopfast.wire.encode_request / encode_request_text
from the test corpora: rust-book and CommonMark spec markdown, Python
source (this project's own and a few hand-made edge cases). File inputs
name paths relative to tests/data/wire, so run the requests with that
directory as the working directory.

`requests()` is importable: tools/memcheck.py and tests use the same list.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT))

from slopfast import ops, wire  # noqa: E402
from slopfast.wire import Input  # noqa: E402

OPS = [op.name for op in ops.NATIVE]

PY_SNIPPETS = [
    b'"""Module doc."""\nimport os\nfrom x import (a,\n    b)\nX: int = 1\n\n\nclass A(B, metaclass=M):\n    """Doc."""\n    y = 2\n\n    @property\n    def f(self, a=(1, 2), *args, **kw) -> "T":\n        return a\n\n\nasync def g():\n    await h()\n',
    b"def f(\n    a,\n    b=lambda x: x,\n):\n    '''d'''\n    if a:\n        pass\n",
    b"if TYPE_CHECKING:\n    import typing\nelse:\n    try:\n        import foo\n    except ImportError:\n        foo = None\n",
    b"x = f'{a!r:>{w}} {b}' + rb'\\d' + '''\nmulti\n'''\nclass C: pass\n",
    b"def f(): return 1; y = 2\n@dec(1)\nclass D:\n    def m(self): ...\n",
    b"match x:\n    case [1, 2]:\n        pass\n",
    b"s = (\n  [1, {2: 3}],\n)\n\\\n\nclass E(\n):\n\tdef t(self):\n\t\treturn\n",
    b"def broken(:\n",
    b")",
    b"\xef\xbb\xbfimport sys\r\nclass W:\r\n    pass\r\n",
]

MD_SNIPPETS = [
    b"# Title\n\nSub\n---\n\n> # quoted\n> - item\n>   ## deep\n\n```\n# not a heading\n```\n",
    b"- a\n  - b\n    - c\n      # h\n\n1. x\n2. y\n\n    # code\n\n<div>\n# html\n</div>\n",
    b"[ref]: /url 'title'\n# After ref\n\nSetext with *emph*\n===\n\x00 nul \xff bad utf8\r\nCR\rline\n",
    b">" * 40 + b" # deep\n" + b"- " * 30 + b"# list\n",
]


def markdown_docs() -> list[tuple[bytes, bytes]]:
    docs = [(b"snippet%d.md" % i, s) for i, s in enumerate(MD_SNIPPETS)]
    book = sorted((DATA / "rust-book" / "src").glob("*.md"))[:40]
    docs += [(p.name.encode(), p.read_bytes()) for p in book]
    spec = json.loads((DATA / "commonmark" / "commonmark-spec-0.31.2.json").read_text())
    docs += [(b"spec%d.md" % ex["example"], ex["markdown"].encode()) for ex in spec]
    return docs


def python_sources() -> list[tuple[bytes, bytes]]:
    srcs = [(b"snippet%d.py" % i, s) for i, s in enumerate(PY_SNIPPETS)]
    for p in sorted((ROOT / "slopfast").glob("*.py")) + sorted((ROOT / "fallbacks").glob("*.py")):
        srcs.append((p.name.encode(), p.read_bytes()))
    return srcs


def requests(max_bytes: int = 1 << 16) -> list[tuple[str, bytes]]:
    """(name, request blob) for every seed, each at most max_bytes long."""
    out: list[tuple[str, bytes]] = []

    def add(name: str, ops, inputs, text_too: bool = True) -> None:
        forms = [("v3", wire.encode_request(ops, inputs))]
        if text_too and all(i.path for i in inputs) and all(n for n, _ in ops):
            forms.append(("v1", wire.encode_request_text(ops, inputs)))
        for form, blob in forms:
            if len(blob) <= max_bytes:
                out.append((f"{name}.{form}", blob))

    for path in sorted((DATA / "wire").iterdir()):
        if path.is_file() and (path.name.endswith(".v1.txt") or path.name.endswith(".v3.bin")):
            out.append((f"wire-{path.name}", path.read_bytes()))

    files = [Input(b"files/hello.txt"), Input(b"files/notes.md"), Input(b"files/crlf.txt"), Input(b"files/missing.txt")]
    md = markdown_docs()
    py = python_sources()
    mixed = [Input(n, t, mode) for (n, t), mode in zip(md[:3] + py[:3], [0, 1, 2, 3, 2, 3])] + files[:2]
    # every op of the registry on the inputs of its kind, one request per input
    corpus = {"markdown": [Input(n, t) for n, t in md], "python": [Input(n, t) for n, t in py], "any": mixed}
    for op in ops.NATIVE:
        for item in corpus[op.inputs]:
            add(f"{op.name}-{item.path.decode()}", [(op.name, {})], [item])
        add(f"{op.name}-files", [(op.name, {})], files)

    add("echo-mixed", [("echo", {}), ("echo", {"x": "y"})], [Input(b"a", b"A"), Input(b"b", b""), files[0]])
    add("md-both", [("md_outline", {}), ("md_summary", {})], [Input(n, t) for n, t in md[:6]])
    add("py_skeleton-opts", [("py_skeleton", {"full": "A.f\ng", "signatures": "A"})], [Input(b"m.py", PY_SNIPPETS[0])])
    for mode in ("full", "summary", "skeleton"):
        add(f"aggregate-{mode}", [("aggregate", {"mode": mode, "lang": "py\tpython\nmd\tmarkdown"})], mixed)
    add("aggregate-fences", [("aggregate", {})],
        [Input(b"`tick`.md", b"````\n```\n`````x\n"), Input(b" sp ", b""), Input(b"a\nb.txt", b"x\r\n```")])
    add("aggregate-files-summary", [("aggregate", {"mode": "summary"})], files)
    # streaming and the load checks: descriptor 100 is not open in the shipped
    # binary (a write error, EBADF) and /dev/null in the fuzz build
    checks = {"nofollow": "1", "sniff": "1", "max_bytes": "20"}
    add("aggregate-checks", [("aggregate", checks)], files + mixed[:2])
    add("aggregate-stream", [("aggregate", dict(checks, out_fd="100", continues="1", mode="summary"))], files + mixed)
    # tokens with a vocabulary (every byte and a few merges), so the merges are fuzzed too
    vocab = [bytes([b]) for b in range(256)] + [b"th", b"he", b"the", b" t", b" the", b"in", b"ing", b"  ", b"    "]
    ranks = b"".join(bytes((len(t),)) + t for t in vocab)
    for encoding in ("o200k_base", "cl100k_base"):
        add(f"tokens-ranks-{encoding}", [("tokens", {"encoding": encoding, "ranks": ranks})],
            [Input(n, t) for n, t in md[:4] + py[:4]], text_too=False)
        # aggregate counting its document (units, carries) with the same small vocabulary
        add(f"aggregate-count-{encoding}", [("aggregate", {"encoding": encoding, "ranks": ranks, "tree": "1",
                                                           "count_carry": b"```\n\n", "continues": "1"})],
            [Input(n, t) for n, t in md[:3] + py[:3]], text_too=False)
    # the count cache: a key, two entries, and bodies long enough to be looked up
    cache = bytes(range(16)) + bytes(24) + b"\xff" * 24
    long = [Input(b"long.py", b"def f():\n    return 1\n" * 60), Input(b"long.txt", b"x\n  y\n/z\n" * 150)]
    add("aggregate-count-cache", [("aggregate", {"encoding": "o200k_base", "ranks": ranks, "count_cache": cache})],
        long + [Input(n, t) for n, t in md[:2]], text_too=False)
    add("aggregate-count-cache-plain", [("aggregate", {"encoding": "cl100k_base", "ranks": ranks, "format": "plain",
                                                       "threads": "1", "count_cache": cache})], long, text_too=False)
    # --budget's two documents: the full one looking summaries up ahead, the summaries' taking known entries
    add("aggregate-count-ahead", [("aggregate", {"encoding": "o200k_base", "ranks": ranks, "count_cache": cache,
                                                 "ahead": "skeleton"})], long, text_too=False)
    add("aggregate-count-known", [("aggregate", {"encoding": "o200k_base", "ranks": ranks, "count_cache": cache,
                                                 "count_only": "1", "mode": "summary",
                                                 "known": (3 << 48 | 7).to_bytes(8, "little") + bytes(8)})],
        long, text_too=False)
    odd = [Input(b"a]]>\n\xff.txt", b"]]>\r\n\x00\x1b\xef\xbf\xbe\xff\"\\`"), Input(b"u16", b"\xff\xfeh\x00\x00\xd8"),
           Input(b"u32", b"\x00\x00\xfe\xffX"), Input(b"bom", b"\xef\xbb\xbfx\ny\rz")]
    for fmt in ("xml", "json", "plain", "markdown"):
        add(f"aggregate-{fmt}", [("aggregate", {"format": fmt, "line_numbers": "1", "tree": "1"})], odd + files[:2])
        add(f"aggregate-{fmt}-raw", [("aggregate", {"format": fmt, "raw": "1", "open": "0", "first_index": "9",
                                                     "continues": "1", "tree": "1",
                                                     "tree_files": b"\x01\x00\x00\x00a" + bytes(8)})], odd)
    add("every-op", [(op, {}) for op in OPS],
        [Input(b"x.md", MD_SNIPPETS[0]), Input(b"y.py", PY_SNIPPETS[1])])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-bytes", type=int, default=1 << 16)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = requests(args.max_bytes)
    for name, blob in seeds:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
        (args.out / f"{safe}-{hashlib.sha1(blob).hexdigest()[:8]}").write_bytes(blob)
    print(f"{len(seeds)} seeds in {args.out}")


if __name__ == "__main__":
    main()
