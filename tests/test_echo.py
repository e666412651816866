"""echo, native against its fallback: every input's bytes back, in order;
an unreadable file is code 4 with an error record naming the input."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slopfast import native, wire
from slopfast.errors import PipelineError
from slopfast.fallbacks.echo import echo


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_native_equals_fallback(lib, datas):
    inputs = [wire.Input(b"in%d" % i, d) for i, d in enumerate(datas)]
    assert native.run([("echo", {})], inputs) == [echo(d) for d in datas]


def test_file_inputs_are_read_once_each(lib, tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"file bytes\r\n\0")
    parts = native.run([("echo", {}), ("echo", {})], [wire.Input(str(path).encode())])
    assert parts == [echo(path.read_bytes())] * 2


def test_an_unreadable_file_names_its_input(lib, tmp_path):
    inputs = [wire.Input(b"ok", b"x"), wire.Input(str(tmp_path / "missing").encode())]
    with pytest.raises(PipelineError) as info:
        native.run([("echo", {})], inputs)
    err = info.value
    assert (err.code, err.op, err.input, err.detail) == (wire.CODE_INPUT_ERROR, "echo", 1, "cannot read (errno 2)")
    assert str(err) == f"echo: {tmp_path / 'missing'}: cannot read (errno 2) (input error)"
