"""Snapshot serialization: byte identity with msgspec on both paths, typed
round trips over generated dataclass shapes, hostile inputs, error paths,
and SnapshotHistory."""
import array
import dataclasses
import datetime
import decimal
import enum
import itertools
import marshal
import os
import tracemalloc
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slopfast import native, wire
from slopfast.errors import BackendUnavailable, PipelineError
from slopfast.snapshot import (
    SnapshotError, SnapshotHistory, native_encode, snapshot_deserialize, snapshot_serialize,
    snapshot_serialize_many, tape,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ---- the reference snapshot (the shape the host app keeps) ------------------

class Mode(enum.Enum):
    CHAT = "chat"
    EDIT = "edit"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Message:
    role: str
    content: str
    tokens: int = 0


@dataclass
class UiState:
    prompt: str
    response: str
    system_prompt: str
    discussion: list[dict[str, Any]]
    files: list[str]
    pinned_files: list[str]
    scroll: dict[str, float]
    mode: Mode = Mode.CHAT
    level: Level = Level.LOW
    selected: Optional[str] = None
    temperature: float = 0.7
    turn: int = 0
    thumbnail: Optional[bytes] = None
    history: list[Message] = field(default_factory=list)


def reference(n: int = 1) -> UiState:
    return UiState(
        prompt="Refactor the parser so that é and ✓ survive. " * 30,
        response="```python\ndef f(x):\n    return x\n```\n" * 60,
        system_prompt="You are a careful assistant. " * 20,
        discussion=[{"role": "user" if i % 2 else "assistant", "content": f"turn {i} " * 20, "ts": 1.5 * i,
                     "meta": {"ok": True, "n": i, "tags": ["a", "b"]}} for i in range(12)],
        files=[f"src/pkg/module_{i}.py" for i in range(15)],
        pinned_files=["README.md"],
        scroll={"prompt": 0.0, "response": 123.5, "discussion": -1.0},
        mode=Mode.EDIT, level=Level.HIGH, selected="src/pkg/module_3.py", turn=n,
        thumbnail=b"\x89PNG\x00\xff", history=[Message("user", "hi", 3), Message("assistant", "hello", 5)],
    )


@pytest.fixture
def native_ok():
    # A default install builds the native library: its absence is a failure,
    # not a skip, unless this is a fallback-only install (SLOPFAST_NO_NATIVE=1).
    if not native.available():
        if os.environ.get("SLOPFAST_NO_NATIVE") == "1":
            pytest.skip(f"native library unavailable: {native.load_error()}")
        pytest.fail(f"native library unavailable (set SLOPFAST_NO_NATIVE=1 to skip): {native.load_error()}")


def test_reference_byte_identical_both_paths(native_ok, monkeypatch):
    obj = reference()
    want = msgspec.msgpack.encode(obj)
    assert native_encode(obj) == want
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        assert snapshot_serialize(obj) == want
        assert snapshot_serialize(obj) == want  # second call: decided path
    assert snapshot_deserialize(want, UiState) == obj


def test_fallback_without_native(monkeypatch):
    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    obj = reference()
    data = snapshot_serialize(obj)
    assert data == msgspec.msgpack.encode(obj)
    monkeypatch.delenv("SLOPFAST_BACKEND")
    assert snapshot_deserialize(data, UiState) == obj


def test_many_matches_single(native_ok, monkeypatch):
    objs = [reference(i) for i in range(20)]
    want = [msgspec.msgpack.encode(o) for o in objs]
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        assert snapshot_serialize_many(objs) == want
    assert snapshot_serialize_many([]) == []


def test_json_format(native_ok, monkeypatch):
    obj = reference()
    data = snapshot_serialize(obj, format="json")
    assert data == msgspec.json.encode(obj)
    assert snapshot_deserialize(data, UiState, format="json") == obj
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    with pytest.raises(BackendUnavailable, match="no JSON encoder"):
        snapshot_serialize(obj, format="json")
    with pytest.raises(BackendUnavailable, match="no snapshot decoder"):
        snapshot_deserialize(data, UiState, format="json")
    with pytest.raises(SnapshotError, match="unknown format"):
        snapshot_serialize(obj, format="yaml")


# ---- generated shapes -------------------------------------------------------

INT64 = st.integers(-(1 << 63), (1 << 64) - 1)
_names = itertools.count()


def _enum_type(kind: str, values: list) -> type:
    name = f"E{next(_names)}"
    members = {f"M{i}": v for i, v in enumerate(dict.fromkeys(values))}
    base = enum.IntEnum if kind == "int" else enum.Enum
    return base(name, members)


@st.composite
def enum_shape(draw):
    if draw(st.booleans()):
        values = draw(st.lists(st.integers(-1000, 1000), min_size=1, max_size=4, unique=True))
        tp = _enum_type("int", values)
    else:
        values = draw(st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True))
        tp = _enum_type("str", values)
    return tp, st.sampled_from(list(tp))


SCALARS = st.sampled_from([
    (str, st.text()),
    (int, INT64),
    (float, st.floats()),
    (bool, st.booleans()),
    (bytes, st.binary(max_size=40)),
    (type(None), st.none()),
])

JSONISH = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats() | st.text(max_size=20) | st.binary(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


def dataclass_shape(child):
    @st.composite
    def build(draw):
        fields = draw(st.lists(child, min_size=0, max_size=6))
        names = [f"f{i}_{draw(st.sampled_from(['a', 'role', 'x_y', 'ééé', 'long_field_name_' * 2]))}"
                 for i in range(len(fields))]
        cls = dataclasses.make_dataclass(f"D{next(_names)}", [(n, tp) for n, (tp, _) in zip(names, fields)])
        strat = st.builds(cls, **{n: s for n, (_, s) in zip(names, fields)})
        return cls, strat
    return build()


def shapes():
    def extend(kids):
        return st.one_of(
            kids.map(lambda k: (list[k[0]], st.lists(k[1], max_size=4))),
            kids.map(lambda k: (tuple[k[0], ...], st.lists(k[1], max_size=3).map(tuple))),
            kids.map(lambda k: (dict[str, k[0]], st.dictionaries(st.text(max_size=6), k[1], max_size=3))),
            kids.map(lambda k: (Optional[k[0]], st.none() | k[1])),
            dataclass_shape(kids),
        )
    base = st.one_of(SCALARS, enum_shape(), st.just((Any, JSONISH)))
    return st.recursive(base, extend, max_leaves=8)


@st.composite
def instances(draw):
    cls, strat = draw(dataclass_shape(shapes()))
    return cls, draw(strat)


@SETTINGS
@given(instances())
def test_generated_fallback_round_trip(case):
    cls, obj = case
    data = snapshot_serialize(obj)
    assert data == msgspec.msgpack.encode(obj)
    back = snapshot_deserialize(data, cls)
    assert type(back) is cls
    # NaN != NaN: compare by re-encoding instead of ==
    assert msgspec.msgpack.encode(back) == data


@SETTINGS
@given(instances())
def test_generated_native_identical(native_ok, case):
    cls, obj = case
    assert native_encode(obj) == msgspec.msgpack.encode(obj)


@SETTINGS
@given(JSONISH)
def test_dynamic_values_native_identical(native_ok, value):
    assert native_encode(value) == msgspec.msgpack.encode(value)


@pytest.mark.parametrize("value", [
    0, 127, 128, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(1 << 31), -(1 << 31) - 1, -(1 << 63), (1 << 59), -(1 << 59),
    "", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "é" * 40000, "x" * 70000, b"", b"x" * 255, b"x" * 256, b"y" * 70000,
    [None] * 15, [None] * 16, [1] * 70000, {str(i): i for i in range(15)}, {str(i): i for i in range(16)},
    {str(i): i for i in range(70000)}, float("inf"), -0.0, float("nan"), 1e300, (), [], {}, ((), [[]], {"": {}}),
    bytearray(b"ab"), memoryview(b"cd"), Mode.CHAT, Level.HIGH,
])
def test_edge_values_native_identical(native_ok, value):
    assert native_encode(value) == msgspec.msgpack.encode(value)


def test_dataclass_field_rules_native_identical(native_ok):
    @dataclass
    class Partial:
        a: int
        b: int = field(default=5, init=False)   # class default only: msgspec skips it
        c: Any = msgspec.UNSET                   # UNSET: skipped
        _private: str = "p"

    @dataclass(slots=True)
    class Slotted:
        x: Optional[Partial]
        y: list[Partial]

    obj = Slotted(Partial(1), [Partial(2, c=3)])
    obj.y[0].b = 9
    assert native_encode(obj) == msgspec.msgpack.encode(obj)

    @dataclass
    class Loose:
        anything: Any
        text: str

    # runtime values outside their hints take the slow conversion; still identical
    weird = Loose(anything=[Message("u", "c"), Mode.EDIT, (1, 2), {"k": Level.LOW}], text=Mode.CHAT)  # type: ignore[arg-type]
    assert native_encode(weird) == msgspec.msgpack.encode(weird)


@dataclass
class Node:
    name: str
    children: "list[Node]" = field(default_factory=list)


def test_recursive_type():
    tree = Node("root", [Node("a", [Node("b")]), Node("c")])
    data = snapshot_serialize(tree)
    assert data == msgspec.msgpack.encode(tree)
    assert snapshot_deserialize(data, Node) == tree
    if native.available():
        assert native_encode(tree) == data


# ---- errors: unsupported types and values -----------------------------------

def test_unsupported_annotation_names_field(monkeypatch):
    @dataclass
    class Inner:
        ok: str
        tags: set[str]

    @dataclass
    class Outer:
        inner: Inner

    for backend in ("fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        with pytest.raises(SnapshotError, match=r"^\$\.inner\.tags: unsupported type"):
            snapshot_serialize(Outer(Inner("x", {"a"})))
    with pytest.raises(SnapshotError, match=r"^\$\.inner\.tags"):
        snapshot_deserialize(b"\x80", Outer)

    @dataclass
    class IntKeys:
        d: dict[int, str]

    with pytest.raises(SnapshotError, match=r"\$\.d: dict keys must be str"):
        snapshot_serialize(IntKeys({1: "a"}))


class Opaque:
    pass


def test_unsupported_value_names_path_both_paths(native_ok, monkeypatch):
    obj = reference()
    obj.discussion[3]["role"] = Opaque()
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        with pytest.raises(SnapshotError, match=r"^\$\.discussion\[3\]\.role: unsupported type .*Opaque"):
            snapshot_serialize(obj)


@pytest.mark.parametrize("bad, where", [
    (1 << 64, "integer .* does not fit in 64 bits"),
    (-(1 << 63) - 1, "integer .* does not fit in 64 bits"),
    ("a\ud800b", "string is not valid UTF-8"),
])
def test_bad_values_both_paths(native_ok, monkeypatch, bad, where):
    obj = reference()
    obj.discussion[2]["meta"]["n"] = bad
    for backend in ("native", "fallback"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        with pytest.raises(SnapshotError, match=r"^\$\.discussion\[2\]\.meta\.n: " + where):
            snapshot_serialize(obj)


class IntSub(int):
    pass


@pytest.mark.parametrize("bad, kind", [
    (1j, "complex"), (Ellipsis, "ellipsis"), (type("S", (str,), {})("sub"), "S"), (IntSub(3), "IntSub"),
    (Opaque(), "Opaque"), ([1, Opaque()], "Opaque"), ({"k": {1: Opaque()}}, "Opaque"),
])
def test_refused_on_both_paths(native_ok, monkeypatch, bad, kind):
    obj = reference()
    obj.discussion[0]["meta"] = bad
    with pytest.raises(SnapshotError, match=r"^\$\.discussion\[0\]\.meta.*: unsupported type .*" + kind):
        native_encode(obj)
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        with pytest.raises(SnapshotError, match=r"^\$\.discussion\[0\]\.meta.*: unsupported type .*" + kind):
            snapshot_serialize(obj)


EXTRA_VALUES = [
    {1, 2}, frozenset(), frozenset({"a"}), {1: "int key"}, {(1, 2): None}, datetime.datetime(2024, 5, 1, 12, 30),
    datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc), datetime.date(2024, 5, 1), datetime.time(1, 2, 3),
    datetime.timedelta(days=1, seconds=5), uuid.UUID(int=12345), decimal.Decimal("1.50"), [{3, 4}, {"d": decimal.Decimal(2)}],
    msgspec.Raw(b"\x01"), [msgspec.Raw(b"\xc0")], {"r": msgspec.Raw(b"\x02")}, msgspec.msgpack.Ext(1, b"e"),
]


@pytest.mark.parametrize("extra", EXTRA_VALUES, ids=repr)
def test_msgspec_extra_values_identical_both_paths(native_ok, monkeypatch, extra):
    """Values msgspec encodes natively beyond the documented set (in Any
    slots): the native path gives msgspec's bytes too, never a different
    answer from the fallback."""
    obj = reference()
    obj.discussion[0]["meta"] = extra
    want = msgspec.msgpack.encode(obj)
    assert native_encode(obj) == want
    assert native_encode(extra) == msgspec.msgpack.encode(extra)
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        assert snapshot_serialize(obj) == want
        assert snapshot_serialize_many([reference(), obj, extra]) == [
            msgspec.msgpack.encode(reference()), want, msgspec.msgpack.encode(extra)]


def test_value_outside_its_hint_identical_both_paths(native_ok):
    # a set where the hint says list[str]: the fast converter passes the field
    # through untouched, so the C side meets marshal's set code and refuses it
    obj = reference()
    obj.files = {"only.py"}  # type: ignore[assignment]
    assert native_encode(obj) == msgspec.msgpack.encode(obj)


@pytest.mark.parametrize("field, value", [
    ("prompt", array.array("b", b"ab")), ("prompt", msgspec.Raw(b"\xc0")), ("prompt", bytearray(b"ab")),
    ("files", [array.array("b", b"ab")]), ("files", ["a", msgspec.Raw(b"\x01")]), ("files", (memoryview(b"m"),)),
], ids=repr)
def test_buffer_objects_outside_their_hint_same_answer_both_paths(native_ok, monkeypatch, field, value):
    """A buffer object where the hint says str or list[str]: marshal would write
    it as bytes; every path gives msgspec's answer (its bytes, or its refusal)."""
    obj = reference()
    setattr(obj, field, value)
    try:
        want = msgspec.msgpack.encode(obj)
    except TypeError:
        want = None
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        if want is None:
            with pytest.raises(SnapshotError, match=r"^\$\." + field):
                snapshot_serialize(obj)
        else:
            assert snapshot_serialize(obj) == want


# ---- unions -------------------------------------------------------------------

@dataclass
class WithUnions:
    a: Union[int, str]
    b: Optional[Union[str, list[str]]]
    c: Union[Message, None, int]
    d: Union[bool, float, None]
    e: "int | list[Message] | None" = None


@pytest.mark.parametrize("obj", [
    WithUnions(1, None, None, None), WithUnions("x", "y", Message("u", "c"), True, [Message("a", "b", 2)]),
    WithUnions(-5, ["p", "q"], 7, 2.5, 3), WithUnions("", [], 0, False, []),
])
def test_unions_round_trip_both_paths(native_ok, monkeypatch, obj):
    want = msgspec.msgpack.encode(obj)
    assert native_encode(obj) == want
    for backend in ("native", "fallback"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        assert snapshot_serialize(obj) == want
    monkeypatch.delenv("SLOPFAST_BACKEND")
    assert snapshot_deserialize(want, WithUnions) == obj
    assert snapshot_deserialize(snapshot_serialize(obj, format="json"), WithUnions, format="json") == obj


def test_undecodable_union_refused_with_path(native_ok, monkeypatch):
    @dataclass
    class Other:
        z: int

    @dataclass
    class Ambiguous:
        ok: int
        pick: Union[Message, Other]

    @dataclass
    class Holder:
        inner: list[Ambiguous]

    obj = Holder([Ambiguous(1, Message("u", "c"))])
    for backend in ("native", "fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        with pytest.raises(SnapshotError, match=r"^\$\.inner\[\]\.pick: unsupported union Message \| .*Other"):
            snapshot_serialize(obj)
    monkeypatch.delenv("SLOPFAST_BACKEND")
    with pytest.raises(SnapshotError, match=r"^\$\.inner\[\]\.pick: unsupported union"):
        snapshot_deserialize(b"\x81\xa5inner\x90", Holder)


# ---- the per-type plan is compiled once -------------------------------------

def test_plan_compiled_once_per_type(native_ok, monkeypatch):
    from slopfast import _snapshot_plan, snapshot as snap_mod

    @dataclass
    class Fresh:
        name: str
        mode: Mode
        inner: Message

    calls = []
    real = _snapshot_plan.ClassPlan

    def counting(cls):
        calls.append(cls)
        return real(cls)

    monkeypatch.setattr(_snapshot_plan, "ClassPlan", counting)
    for i in range(50):
        obj = Fresh(f"n{i}", Mode.EDIT, Message("u", "c", i))
        assert native_encode(obj) == msgspec.msgpack.encode(obj)
    assert calls.count(Fresh) == 1 and calls.count(Message) <= 1
    assert Fresh in snap_mod._converters


def test_too_deep(native_ok):
    deep: Any = []
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(SnapshotError, match="nest"):
        native_encode(deep)


# ---- errors: decoding corrupt, truncated, forged ----------------------------

def test_decode_type_error_message():
    @dataclass
    class Turn:
        role: str
        content: str

    @dataclass
    class Chat:
        discussion: list[Turn]

    data = msgspec.msgpack.encode({"discussion": [{"role": "u", "content": "c"}] * 3 + [{"role": 7, "content": "c"}]})
    with pytest.raises(SnapshotError) as info:
        snapshot_deserialize(data, Chat)
    assert str(info.value) == "$.discussion[3].role: expected str, got int"
    with pytest.raises(SnapshotError, match=r"^\$: object missing required field `?discussion"):
        snapshot_deserialize(msgspec.msgpack.encode({}), Chat)
    assert isinstance(info.value, ValueError)


def test_truncated_everywhere():
    data = snapshot_serialize(reference())
    for cut in range(len(data)):
        with pytest.raises(SnapshotError):
            snapshot_deserialize(data[:cut], UiState)
    with pytest.raises(SnapshotError, match="trailing"):
        snapshot_deserialize(data + b"\x00", UiState)


@pytest.mark.parametrize("forged", [
    b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff",
    b"\xde\xff\xff", b"\x8e\xa6prompt\xdb\x7f\xff\xff\xff", b"\x8e\xa6prompt\xc6\xff\xff\xff\xfeab",
])
def test_forged_lengths_are_errors_without_big_allocation(forged):
    # tracemalloc sees msgspec's allocations (PyMem/PyObject); a decoder that
    # trusted a forged 4 GiB length would show up here, unlike in ru_maxrss
    # whose high-water mark earlier tests may already have raised
    tracemalloc.start()
    try:
        for tp in (UiState, list[int], dict[str, Any], Any, str, bytes):
            with pytest.raises(SnapshotError):
                snapshot_deserialize(forged, tp)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_allocation_check_can_fail():
    tracemalloc.start()
    try:
        blob = bytearray(8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(blob) and peak >= 8 << 20


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(blob):
    try:
        snapshot_deserialize(blob, UiState)
    except SnapshotError:
        pass


@SETTINGS
@given(st.data())
def test_mutated_snapshot_is_value_or_error(data):
    blob = bytearray(snapshot_serialize(reference()))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    try:
        snapshot_deserialize(bytes(blob), UiState)
    except SnapshotError:
        pass


def test_decode_rejects_non_bytes():
    with pytest.raises(SnapshotError):
        snapshot_deserialize("not bytes", UiState)  # type: ignore[arg-type]


# ---- the native op on hostile tapes -----------------------------------------

def run_tape(blob: bytes) -> list[bytes]:
    return native.run([("snapshot_encode", {})], [wire.Input(b"", blob)])


def u4(n: int) -> bytes:
    return (n & 0xffffffff).to_bytes(4, "little")


@pytest.mark.parametrize("blob, message", [
    (b"", "bad magic"), (b"SFM", "bad magic"), (b"XXXXN", "bad magic"), (b"SFM2", "truncated"),
    (b"SFM2NN", "trailing"), (b"SFM2u" + u4(0x7fffffff) + b"ab", "length exceeds"),
    (b"SFM2u" + u4(-1), "length exceeds"), (b"SFM2s" + u4(5) + b"ab", "length exceeds"),
    (b"SFM2[" + u4(0x7fffffff) + b"N", "count exceeds"), (b"SFM2(" + u4(-5), "count exceeds"),
    (b"SFM2[" + u4(2) + b"N", "count exceeds"), (b"SFM2[" + u4(1) + b"NN", "trailing"), (b"SFM2[" + u4(2) + b"Ni", "truncated"),
    (b"SFM2{uaaaaN", "length exceeds"), (b"SFM2{u" + u4(1) + b"kN", "truncated"), (b"SFM2{" + b"i" + u4(1) + b"N0", "key is not a str"),
    (b"SFM2l" + u4(6) + b"\x00" * 12, "64-bit"), (b"SFM2l" + u4(5) + b"\xff\x7f" * 4 + b"\x10\x00", "64-bit"),
    (b"SFM2l" + u4(-5) + b"\x01\x00" + b"\x00\x00" * 3 + b"\x08\x00", "64-bit"), (b"SFM2l" + u4(1) + b"\xff\xff", "digit"),
    (b"SFM2l" + u4(0x80000000), "64-bit"), (b"SFM2g\x00\x00", "truncated"), (b"SFM2u" + u4(2) + b"\xed\xa0", "UTF-8"),
    (b"SFM2u" + u4(2) + b"\xc0\x80", "UTF-8"), (b"SFM2u" + u4(1) + b"\xff", "UTF-8"), (b"SFM2<" + u4(0), "unsupported"),
    (b"SFM2\xe9" + u4(1), "unsupported"), (b"SFM2r" + u4(0), "unsupported"), (b"SFM2" + b"[" + u4(1), "count exceeds"),
    (b"SFM2" + (b"[" + u4(1)) * 20000 + b"N", "nesting too deep"), (b"SFM2" + (b"{u" + u4(1) + b"k") * 20000, "nesting too deep"),
], ids=lambda v: v[:24].hex() if isinstance(v, bytes) else str(v))
def test_hostile_tapes(native_ok, blob, message):
    with pytest.raises(PipelineError, match=message):
        run_tape(blob)


def test_tape_long_boundaries(native_ok):
    for v in (-(1 << 63), (1 << 64) - 1, 1 << 31, -(1 << 31) - 1, 1 << 40):
        assert run_tape(b"SFM2" + marshal.dumps(v, 2)) == [msgspec.msgpack.encode(v)]


@SETTINGS
@given(st.data())
def test_mutated_tapes_never_crash(native_ok, data):
    blob = bytearray(tape(reference()))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(4, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(blob)))
    try:
        out = run_tape(bytes(blob[:cut]))
    except PipelineError:
        return
    msgspec.msgpack.decode(out[0])  # whatever came out is well-formed MessagePack


# ---- SnapshotHistory --------------------------------------------------------

def test_history_undo_redo_branch():
    h = SnapshotHistory(capacity=10)
    assert len(h) == 0 and h.current() is None and not h.can_undo and not h.can_redo
    states = [reference(i) for i in range(4)]
    for s in states:
        h.push(s)
    assert len(h) == 4 and h.current() == states[3]
    assert h.undo() == states[2] and h.undo() == states[1]
    assert h.can_redo and h.redo() == states[2]
    h.push(reference(99))            # drops the redo branch (states[3])
    assert not h.can_redo and len(h) == 4
    assert h.current().turn == 99
    assert h.undo() == states[2]
    while h.can_undo:
        h.undo()
    assert h.current() == states[0]
    with pytest.raises(IndexError):
        h.undo()
    h.clear()
    assert len(h) == 0 and h.nbytes == 0
    with pytest.raises(IndexError):
        h.redo()


def test_history_capacity_and_bytes():
    h = SnapshotHistory(capacity=3)
    for i in range(10):
        h.push(reference(i))
    assert len(h) == 3 and h.current().turn == 9
    assert h.undo().turn == 8 and h.undo().turn == 7 and not h.can_undo

    size = len(snapshot_serialize(reference(0)))
    h = SnapshotHistory(capacity=100, max_bytes=size * 5 + 10)
    for i in range(20):
        h.push(reference(i))
    assert len(h) == 5 and h.nbytes <= h.max_bytes
    assert h.current().turn == 19


def test_history_oversized_snapshot_is_refused():
    h = SnapshotHistory(max_bytes=100)
    small = Message("u", "x")
    h.push(small)
    with pytest.raises(SnapshotError, match="exceeds the history's max_bytes"):
        h.push(reference())
    assert len(h) == 1 and h.current() == small


def test_history_typed_and_invalid_arguments():
    h = SnapshotHistory(type=UiState, format="json")
    h.push(reference(1))
    h.push(reference(2))
    assert h.undo() == reference(1)
    with pytest.raises(ValueError):
        SnapshotHistory(capacity=0)
    with pytest.raises(SnapshotError):
        SnapshotHistory(format="xml")
    raw = SnapshotHistory()
    raw.push_bytes(b"\x01")
    with pytest.raises(SnapshotError, match="no type"):
        raw.current()


# ---- the auto hot path --------------------------------------------------------

def test_auto_fast_path_follows_env_and_reset(native_ok, monkeypatch):
    from slopfast import dispatch
    from slopfast import snapshot as snap_mod

    obj = reference()
    want = msgspec.msgpack.encode(obj)
    monkeypatch.delenv("SLOPFAST_BACKEND", raising=False)
    assert snapshot_serialize(obj) == want           # auto decides (and remembers) for UiState
    assert type(obj) in snap_mod._fast
    assert snapshot_serialize(obj) == want           # the hot path
    calls = []
    real = snap_mod.native_encode
    monkeypatch.setattr(snap_mod, "native_encode", lambda o: calls.append(o) or real(o))
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")  # forcing still wins after a decision
    assert snapshot_serialize(obj) == want and calls == [obj]
    with pytest.raises(BackendUnavailable):
        snapshot_serialize(obj, format="json")
    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    assert snapshot_serialize(obj) == want and calls == [obj]
    monkeypatch.delenv("SLOPFAST_BACKEND")
    dispatch.reset()                                  # forgets the decision, and the hot path
    assert type(obj) not in snap_mod._fast
    assert snapshot_serialize(obj, format="json") == msgspec.json.encode(obj)
    bad = reference()
    bad.discussion[1]["role"] = Opaque()
    snapshot_serialize(obj)
    with pytest.raises(SnapshotError, match=r"^\$\.discussion\[1\]\.role: unsupported type"):
        snapshot_serialize(bad)                       # errors keep their path on the hot path
