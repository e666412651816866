"""The golden wire vectors in tests/data/wire (docs/wire-format.md), as models.

Each vector is a request in one or both encodings:

    NAME.v1.txt          the v1 text envelope
    NAME.v3.bin          the v3 binary request
    NAME.response.txt    the expected response (text format), or
    NAME.response.bin    (binary format), when both encodings answer the same bytes;
    NAME.v1.response.*   per encoding when they do not (e.g. error messages that
    NAME.v3.response.*   name a line or an offset)

A request form is GEN when slopfast.wire.encode_request(_text) of the model
produces it byte for byte; a bytes value is a hand-written envelope (CRLF,
comments, escapes the encoder does not emit); a callable derives a malformed
v3 request from the encoded model. File inputs name paths relative to
tests/data/wire: requests run with that directory as the working directory.

    python tests/wire_vectors.py

rewrites every request file from these models and every response file from
the built standalone binary; review the diff (the responses are the contract)
before committing.
"""
from __future__ import annotations

import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

from slopfast.wire import (
    MODE_FULL,
    MODE_SKELETON,
    MODE_SUMMARY,
    RESPONSE_BINARY,
    RESPONSE_TEXT,
    Input,
    encode_request,
    encode_request_text,
)

WIRE = Path(__file__).resolve().parent / "data" / "wire"


class _Gen:
    def __repr__(self) -> str:
        return "GEN"


GEN = _Gen()
Form = Union[_Gen, bytes, Callable[[bytes], bytes], None]


@dataclass
class Vector:
    name: str
    code: int                       # the expected response code (lib/op.h Code_*)
    ops: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    response_format: int = RESPONSE_TEXT
    v1: Form = GEN
    v3: Form = GEN

    def request(self, form: str) -> bytes | None:
        how = self.v1 if form == "v1" else self.v3
        if how is None:
            return None
        if isinstance(how, bytes):
            return how
        if form == "v1":
            assert how is GEN
            return encode_request_text(self.ops, self.inputs, self.response_format)
        blob = encode_request(self.ops, self.inputs, self.response_format)
        return blob if how is GEN else how(blob)

    def forms(self) -> list[str]:
        return [f for f in ("v1", "v3") if (self.v1 if f == "v1" else self.v3) is not None]


# ---- helpers for malformed v3 requests -------------------------------------

def put(blob: bytes, offset: int, fmt: str, value: int) -> bytes:
    """`blob` with the little-endian field `fmt` at `offset` set to `value`."""
    b = bytearray(blob)
    struct.pack_into("<" + fmt, b, offset, value)
    return bytes(b)


HEADER = 8          # "SLPF", version, response format, 2 reserved
OPS_AT = HEADER + 4  # first op, after the U4 op count


def echo_input_at(name: str = "echo") -> int:
    """Offset of the input count in a request with one param-less op `name`."""
    return OPS_AT + 2 + len(name) + 2


HELLO = Input(b"files/hello.txt")
LINES = Input(b"files/lines.txt")
ODD = Input(b"files/odd name%.txt")
NOTES = Input(b"files/notes.md")
CRLF_FILE = Input(b"files/crlf.txt")
MISSING = Input(b"files/missing.txt")
ECHO = ("echo", {})
LANG = "txt\ttext\nmd\tmarkdown\npy\tpython"

E1 = b"slopfast-request 1\n"
MD_INLINE = Input(b"inline.md", b"Title\r\n=====\r\n\n### Deep `x`\n")
PY_INLINE = Input(b"m.py", b'"""Doc."""\nimport os\n\ndef f(x):\n    return x\n\ndef g():\n    return 2\n')


VECTORS: list[Vector] = [
    # ---- valid ---------------------------------------------------------------
    Vector("empty_request", 0),
    Vector("echo_no_inputs", 0, [ECHO]),
    Vector("echo_inline", 0, [ECHO], [
        Input(b"a.txt", b"hello\n"),
        Input(b"empty", b""),
        Input(b"bytes.bin", bytes(range(256))),
        Input(b"no-newline", b"end\r"),
    ]),
    Vector("echo_file", 0, [ECHO], [HELLO, LINES, CRLF_FILE]),
    Vector("echo_mixed", 0, [ECHO], [
        Input(b"files/hello.txt", mode=MODE_SUMMARY),
        Input(b"inline.md", b"# inline\n", MODE_FULL),
        Input(b"files/notes.md", mode=MODE_SKELETON),
    ]),
    Vector("echo_binary_response", 0, [ECHO], [Input(b"x", b"binary\x00response"), HELLO],
           response_format=RESPONSE_BINARY),
    Vector("two_ops", 0, [ECHO, ("aggregate", {})], [Input(b"a.txt", b"one\n"), HELLO]),
    Vector("build_markdown_lang", 0, [("aggregate", {"lang": LANG})], [
        HELLO, NOTES, Input(b"src/main.py", b"print('hi')\n"), Input(b"Makefile", b"all:\n"),
    ]),
    Vector("build_markdown_modes", 0, [("aggregate", {"mode": "summary", "lang": LANG})], [
        LINES,                                         # default: the op's mode, summary
        Input(b"files/lines.txt", mode=MODE_FULL),
        Input(b"files/lines.txt", mode=MODE_SKELETON),  # not Python: its content
        Input(b"short.txt", b"one\ntwo\n", MODE_SUMMARY),
    ]),
    Vector("build_markdown_missing_file", 0, [("aggregate", {})], [HELLO, MISSING, LINES]),
    Vector("aggregate_xml", 0, [("aggregate", {"format": "xml", "line_numbers": "1"})],
           [Input(b"a&b.txt", b"x]]>y\r\n\x01"), MISSING, Input(b"b\nc", b"\xef\xbb\xbfz")]),
    Vector("aggregate_json_raw", 0, [("aggregate", {"format": "json", "raw": "1", "first_index": "3", "open": "0"})],
           [Input(b"a\\b", b"\"q\"\t\xff\n"), HELLO]),
    Vector("aggregate_plain_continues", 0, [("aggregate", {"format": "plain", "continues": "1"})],
           [Input(b"u16.txt", b"\xff\xfeh\x00i\x00")]),
    Vector("percent_escapes", 0, [("aggregate", {"lang": "txt\tx=%y", "mode": "full"})], [
        ODD,
        Input(b"dir/a=b%c d.txt", b"escaped path\n"),
        Input(b"tab\there.txt", b"t\n"),
        Input("caf\u00e9 \u2603.txt".encode(), b"utf-8 path\n"),
    ]),
    Vector("escapes_handwritten", 0, [("aggregate", {"lang": "txt\tplain"})], [
        Input(b"files/hello.txt"), Input(b"a b/c%d.txt", b"x\n"),
    ], v1=E1 + b"op a%67gregate l%61ng=txt%09plain\n"
              b"input file files%2fhello.txt\n"
              b"input inline a%20b%2Fc%25d.txt 2\nx\n\nend\n"),
    Vector("crlf_envelope", 0, [ECHO, ("aggregate", {"lang": LANG})], [
        Input(b"a.txt", b"crlf data\r\n", MODE_FULL), HELLO,
    ], v1=b"slopfast-request 1\r\n"
          b"# a comment line\r\n"
          b"\r\n"
          b"op   echo\r\n"
          b"op aggregate  lang=txt%09text%0Amd%09markdown%0Apy%09python \r\n"
          b"input inline a.txt 11 mode=full\r\ncrlf data\r\n\r\n"
          b"input file files/hello.txt\r\n"
          b"format text\r\n"
          b"end\r\n"),
    Vector("interleaved", 0, [ECHO, ("aggregate", {})], [Input(b"a.txt", b"A"), HELLO, Input(b"b", b"")],
           v1=E1 + b"format text\n"
                   b"  # indented comment\n"
                   b"input inline a.txt 1\nA\n"
                   b"op echo\n"
                   b"input file files/hello.txt mode=default\n"
                   b"op aggregate\n"
                   b"input inline b 0\n\n"
                   b"end\n \n\t\n"),

    # ---- malformed: the envelope ---------------------------------------------
    Vector("bad_magic", 1, [ECHO], [HELLO],
           v1=b"slopfast-reqest 1\nop echo\nend\n", v3=lambda b: b"SLPX" + b[4:]),
    Vector("empty_blob", 1, v1=None, v3=b""),
    Vector("magic_only", 1, v1=None, v3=b"SLPF"),
    Vector("bad_version", 1, [ECHO], [HELLO],
           v1=b"slopfast-request 2\nop echo\nend\n", v3=lambda b: put(b, 4, "B", 4)),
    Vector("binary_version_1", 1, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, 4, "B", 1)),
    # the version before record parts: an old client gets a clear refusal
    Vector("binary_version_2", 1, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, 4, "B", 2)),
    Vector("bad_response_format", 1, [ECHO], [HELLO],
           v1=E1 + b"op echo\nformat json\nend\n", v3=lambda b: put(b, 5, "B", 2)),
    Vector("reserved_not_zero", 1, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, 6, "H", 1)),
    Vector("truncated_header", 1, [ECHO], [HELLO], v1=None, v3=lambda b: b[:7]),
    Vector("truncated_op", 1, [ECHO], [HELLO], v1=None, v3=lambda b: b[:OPS_AT + 4]),
    Vector("truncated_input", 1, [ECHO], [Input(b"a", b"0123456789")],
           v1=E1 + b"op echo\ninput inline a 10\n01234", v3=lambda b: b[:-5]),
    Vector("trailing_bytes", 1, [ECHO], [HELLO],
           v1=E1 + b"op echo\ninput file files/hello.txt\nend\njunk\n", v3=lambda b: b + b"\0"),
    Vector("missing_end", 1, [ECHO], [HELLO], v1=E1 + b"op echo\ninput file files/hello.txt\n", v3=None),
    Vector("end_with_words", 1, v1=E1 + b"end now\n", v3=None),
    Vector("unknown_keyword", 1, v1=E1 + b"opp echo\nend\n", v3=None),
    Vector("op_without_name", 1, v1=E1 + b"op\nend\n", v3=None),
    Vector("param_without_eq", 1, v1=E1 + b"op echo verbose\nend\n", v3=None),
    Vector("bad_escape", 1, v1=E1 + b"op ech%6\nend\n", v3=None),
    Vector("bad_escape_hex", 1, v1=E1 + b"input file a%zz\nend\n", v3=None),
    Vector("inline_without_length", 1, v1=E1 + b"input inline a.txt\nend\n", v3=None),
    Vector("inline_bad_length", 1, v1=E1 + b"input inline a.txt -1\nend\n", v3=None),
    Vector("inline_no_line_end", 1, v1=E1 + b"input inline a.txt 2\nabcend\n", v3=None),
    Vector("input_without_path", 1, v1=E1 + b"input file\nend\n", v3=None),
    Vector("unknown_input_kind", 1, [ECHO], [HELLO],
           v1=E1 + b"input blob files/hello.txt\nend\n", v3=lambda b: put(b, echo_input_at() + 4, "B", 2)),
    Vector("unknown_input_mode", 1, [ECHO], [HELLO],
           v1=E1 + b"input file files/hello.txt mode=brief\nend\n", v3=lambda b: put(b, echo_input_at() + 5, "B", 4)),

    # ---- malformed: forged counts and lengths ----------------------------------
    Vector("forged_op_count", 5, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, HEADER, "I", 0xFFFFFFFF)),
    # two ops declared, one present: the input count is read as a second op
    # (empty name, no parameters), then the input count is missing
    Vector("forged_op_count_small", 1, [ECHO], [], v1=None, v3=lambda b: put(b, HEADER, "I", 2)),
    Vector("forged_name_len", 1, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, OPS_AT, "H", 0xFFFF)),
    Vector("forged_param_count", 5, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, OPS_AT + 6, "H", 0xFFFF)),
    Vector("forged_value_len", 1, [("echo", {"k": "v"})], [HELLO], v1=None,
           v3=lambda b: put(b, OPS_AT + 2 + 4 + 2 + 2 + 1, "I", 0xFFFFFFFF)),
    Vector("forged_input_count", 5, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, echo_input_at(), "I", 0xFFFFFFFF)),
    Vector("forged_input_count_small", 1, [ECHO], [HELLO], v1=None, v3=lambda b: put(b, echo_input_at(), "I", 100000)),
    Vector("forged_path_len", 5, [ECHO], [HELLO], v1=None,
           v3=lambda b: put(b, echo_input_at() + 6, "I", 0xFFFFFFFF)),
    Vector("forged_path_len_small", 1, [ECHO], [HELLO], v1=None,
           v3=lambda b: put(b, echo_input_at() + 6, "I", 60000)),
    Vector("forged_data_len", 1, [ECHO], [Input(b"a", b"data")], v1=E1 + b"op echo\ninput inline a 9999999999999999999\ndata\nend\n",
           v3=lambda b: put(b, echo_input_at() + 4 + 6 + 1, "Q", 0xFFFFFFFFFFFFFFFF)),
    Vector("forged_data_len_v1_digits", 1, v1=E1 + b"input inline a 99999999999999999999\nx\nend\n", v3=None),

    # ---- malformed: limits -----------------------------------------------------
    Vector("too_many_ops", 5, [ECHO] * 65),
    Vector("too_many_params", 5, [("echo", {f"k{i}": str(i) for i in range(65)})]),
    Vector("path_too_long", 5, [ECHO], [Input(b"p" * 65537, b"")]),

    # ---- requests the ops refuse -----------------------------------------------
    Vector("unknown_op", 2, [("nope", {})], [HELLO]),
    Vector("unknown_op_after_valid", 2, [ECHO, ("aggregate", {}), ("no%pe op", {})], [HELLO]),
    Vector("bad_param_mode", 3, [("aggregate", {"mode": "bogus"})], [HELLO]),
    Vector("bad_param_lang", 3, [("aggregate", {"lang": "txt text"})], [HELLO]),
    Vector("bad_param_format", 3, [("aggregate", {"format": "yaml"})], [HELLO]),
    Vector("missing_file", 4, [ECHO], [HELLO, MISSING]),

    # ---- the other ops: their part layouts (docs/wire-format.md, "Ops") ---------
    Vector("md_outline", 0, [("md_outline", {})], [NOTES, MD_INLINE, Input(b"none.md", b"no heading\n")],
           response_format=RESPONSE_BINARY),
    Vector("md_summary", 0, [("md_summary", {})], [NOTES, MD_INLINE]),
    Vector("md_outline_missing_file", 4, [("md_outline", {})], [NOTES, MISSING]),
    Vector("py_skeleton", 0, [("py_skeleton", {"full": "g"})], [PY_INLINE]),
    Vector("py_skeleton_rejected", 7, [("py_skeleton", {})], [Input(b"bad.py", b"def f(:\n")]),
]

BY_NAME = {v.name: v for v in VECTORS}
assert len(BY_NAME) == len(VECTORS), "duplicate vector names"

REQUEST_SUFFIX = {"v1": ".v1.txt", "v3": ".v3.bin"}


def request_path(name: str, form: str) -> Path:
    return WIRE / (name + REQUEST_SUFFIX[form])


def response_path(name: str, form: str) -> Path:
    """The expected response of one form: its own file, else the shared one."""
    for stem in (f"{name}.{form}.response", f"{name}.response"):
        for ext in (".txt", ".bin"):
            if (WIRE / (stem + ext)).exists():
                return WIRE / (stem + ext)
    raise FileNotFoundError(f"no response file for {name} ({form})")


def _run_binary(exe: Path, request: bytes) -> bytes:
    proc = subprocess.run([str(exe)], input=request, capture_output=True, cwd=WIRE)
    assert proc.returncode in (0, 1), proc
    return proc.stdout


def _ext(response: bytes) -> str:
    return ".txt" if response.startswith(b"slopfast-response 2\n") else ".bin"


def generate() -> None:
    from slopfast import native

    exe = native.binary_path()
    for old in WIRE.glob("*.v[12].*"):
        old.unlink()
    for old in WIRE.glob("*.response.*"):
        old.unlink()
    for v in VECTORS:
        responses = {}
        for form in v.forms():
            request = v.request(form)
            request_path(v.name, form).write_bytes(request)
            responses[form] = _run_binary(exe, request)
        if len(set(responses.values())) == 1:
            r = next(iter(responses.values()))
            (WIRE / f"{v.name}.response{_ext(r)}").write_bytes(r)
        else:
            for form, r in responses.items():
                (WIRE / f"{v.name}.{form}.response{_ext(r)}").write_bytes(r)
    print(f"wrote {len(VECTORS)} vectors to {WIRE}")


if __name__ == "__main__":
    sys.exit(generate())
