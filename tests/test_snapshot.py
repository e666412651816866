"""Snapshot serialization: msgspec's own bytes (msgpack and JSON) whatever
SLOPFAST_BACKEND says, typed round trips over generated dataclass shapes,
hostile inputs, error paths, and SnapshotHistory (its eviction rules, and a
push that stays O(1) amortized)."""
import array
import dataclasses
import datetime
import decimal
import enum
import itertools
import random
import tracemalloc
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slopfast import snapshot as snap_mod
from slopfast.fallbacks import snapshot as impl
from slopfast.snapshot import SnapshotError, SnapshotHistory, snapshot_deserialize, snapshot_serialize

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


def test_reference_is_msgspecs_bytes():
    obj = reference()
    want = msgspec.msgpack.encode(obj)
    assert snapshot_serialize(obj) == want
    assert snapshot_serialize(obj) == want  # second call: the type is known
    assert snapshot_deserialize(want, UiState) == obj
    assert snapshot_deserialize(bytearray(want), UiState) == obj
    assert snapshot_deserialize(memoryview(want), UiState) == obj


@pytest.mark.parametrize("backend", ["native", "fallback", "auto", ""])
def test_backend_setting_does_not_apply(monkeypatch, backend):
    """Snapshots have one implementation by design: SLOPFAST_BACKEND=native
    (even with no loadable library) and =fallback both give msgspec's bytes,
    for msgpack and JSON, and decode; nothing raises BackendUnavailable."""
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    monkeypatch.setenv("SLOPFAST_LIB", "/nonexistent/libchunks.so")

    @dataclass
    class Fresh:  # a type seen first under this setting
        name: str
        mode: Mode

    for obj in (reference(), Fresh("x", Mode.CHAT), [1, "two", {"three": 3.0}]):
        data = snapshot_serialize(obj)
        assert data == msgspec.msgpack.encode(obj)
        assert snapshot_serialize(obj, format="json") == msgspec.json.encode(obj)
        assert snapshot_deserialize(data, type(obj)) == obj
    assert snapshot_deserialize(snapshot_serialize(reference(), format="json"), UiState, format="json") == reference()
    bad = reference()
    bad.discussion[3]["role"] = Opaque()
    with pytest.raises(SnapshotError, match=r"^\$\.discussion\[3\]\.role: unsupported type"):
        snapshot_serialize(bad)


def test_no_native_path_is_left():
    """No tape, no batch entry point, no dispatch in the snapshot modules."""
    for name in ("tape", "native_encode", "snapshot_serialize_many", "_fast", "_type_key"):
        assert not hasattr(snap_mod, name), name
    assert "dispatch" not in vars(snap_mod) and "native" not in vars(snap_mod)


def test_json_format():
    obj = reference()
    data = snapshot_serialize(obj, format="json")
    assert data == msgspec.json.encode(obj)
    assert snapshot_deserialize(data, UiState, format="json") == obj
    with pytest.raises(SnapshotError, match=r"^\$: unknown format 'yaml'"):
        snapshot_serialize(obj, format="yaml")
    with pytest.raises(SnapshotError, match=r"^\$: unknown format 'yaml'"):
        snapshot_deserialize(data, UiState, format="yaml")
    bad = reference()
    bad.discussion[5]["meta"]["n"] = Opaque()
    with pytest.raises(SnapshotError, match=r"^\$\.discussion\[5\]\.meta\.n: unsupported type .*Opaque"):
        snapshot_serialize(bad, format="json")


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
def test_generated_round_trip(case):
    cls, obj = case
    data = snapshot_serialize(obj)
    assert data == msgspec.msgpack.encode(obj)
    back = snapshot_deserialize(data, cls)
    assert type(back) is cls
    # NaN != NaN: compare by re-encoding instead of ==
    assert msgspec.msgpack.encode(back) == data


@SETTINGS
@given(instances())
def test_generated_json_identical(case):
    cls, obj = case
    try:
        want = msgspec.json.encode(obj)
    except TypeError:  # bytes keys and the like: msgspec.json refuses, so must we
        with pytest.raises(SnapshotError):
            snapshot_serialize(obj, format="json")
        return
    assert snapshot_serialize(obj, format="json") == want


@SETTINGS
@given(JSONISH)
def test_dynamic_values_identical(value):
    assert snapshot_serialize(value) == msgspec.msgpack.encode(value)
    assert snapshot_serialize(value, format="json") == msgspec.json.encode(value)


@pytest.mark.parametrize("value", [
    0, 127, 128, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(1 << 31), -(1 << 31) - 1, -(1 << 63), (1 << 59), -(1 << 59),
    "", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "é" * 40000, "x" * 70000, b"", b"x" * 255, b"x" * 256, b"y" * 70000,
    [None] * 15, [None] * 16, [1] * 70000, {str(i): i for i in range(15)}, {str(i): i for i in range(16)},
    {str(i): i for i in range(70000)}, float("inf"), -0.0, float("nan"), 1e300, (), [], {}, ((), [[]], {"": {}}),
    bytearray(b"ab"), memoryview(b"cd"), Mode.CHAT, Level.HIGH,
])
def test_edge_values_identical(value):
    assert snapshot_serialize(value) == msgspec.msgpack.encode(value)


def test_dataclass_field_rules_identical():
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
    assert snapshot_serialize(obj) == msgspec.msgpack.encode(obj)

    @dataclass
    class Loose:
        anything: Any
        text: str

    # runtime values outside their hints: msgspec's answer, whatever it is
    weird = Loose(anything=[Message("u", "c"), Mode.EDIT, (1, 2), {"k": Level.LOW}], text=Mode.CHAT)  # type: ignore[arg-type]
    assert snapshot_serialize(weird) == msgspec.msgpack.encode(weird)


@dataclass
class Node:
    name: str
    children: "list[Node]" = field(default_factory=list)


def test_recursive_type():
    tree = Node("root", [Node("a", [Node("b")]), Node("c")])
    data = snapshot_serialize(tree)
    assert data == msgspec.msgpack.encode(tree)
    assert snapshot_deserialize(data, Node) == tree


def test_type_hints_checked_once_per_type(monkeypatch):
    """The hint check runs on a type's first serialization only; later calls
    go straight to msgspec's encoder."""
    @dataclass
    class Fresh:
        name: str
        mode: Mode
        inner: Message

    calls = []
    real = impl._check_dataclass
    monkeypatch.setattr(impl, "_check_dataclass", lambda tp, *a: calls.append(tp) or real(tp, *a))
    for i in range(50):
        obj = Fresh(f"n{i}", Mode.EDIT, Message("u", "c", i))
        assert snapshot_serialize(obj) == msgspec.msgpack.encode(obj)
    assert calls.count(Fresh) == 1 and calls.count(Message) <= 1
    assert Fresh in impl.CHECKED_ROOTS


# ---- errors: unsupported types and values -----------------------------------

def test_unsupported_annotation_names_field():
    @dataclass
    class Inner:
        ok: str
        tags: set[str]

    @dataclass
    class Outer:
        inner: Inner

    for _ in range(2):  # refused every time, not just on first use
        with pytest.raises(SnapshotError, match=r"^\$\.inner\.tags: unsupported type"):
            snapshot_serialize(Outer(Inner("x", {"a"})))
    assert Outer not in impl.CHECKED_ROOTS
    with pytest.raises(SnapshotError, match=r"^\$\.inner\.tags"):
        snapshot_deserialize(b"\x80", Outer)

    @dataclass
    class IntKeys:
        d: dict[int, str]

    with pytest.raises(SnapshotError, match=r"\$\.d: dict keys must be str"):
        snapshot_serialize(IntKeys({1: "a"}))


class Opaque:
    pass


def test_unsupported_value_names_path():
    obj = reference()
    obj.discussion[3]["role"] = Opaque()
    for _ in range(2):  # first use of the type, then the hot path
        with pytest.raises(SnapshotError, match=r"^\$\.discussion\[3\]\.role: unsupported type .*Opaque"):
            snapshot_serialize(obj)
    assert type(obj) in impl.CHECKED_ROOTS


@pytest.mark.parametrize("bad, where", [
    (1 << 64, "integer .* does not fit in 64 bits"),
    (-(1 << 63) - 1, "integer .* does not fit in 64 bits"),
    ("a\ud800b", "string is not valid UTF-8"),
])
def test_bad_values(bad, where):
    obj = reference()
    obj.discussion[2]["meta"]["n"] = bad
    with pytest.raises(SnapshotError, match=r"^\$\.discussion\[2\]\.meta\.n: " + where):
        snapshot_serialize(obj)


class IntSub(int):
    pass


@pytest.mark.parametrize("bad, kind", [
    (1j, "complex"), (Ellipsis, "ellipsis"), (type("S", (str,), {})("sub"), "S"), (IntSub(3), "IntSub"),
    (Opaque(), "Opaque"), ([1, Opaque()], "Opaque"), ({"k": {1: Opaque()}}, "Opaque"),
])
def test_refused(bad, kind):
    obj = reference()
    obj.discussion[0]["meta"] = bad
    with pytest.raises(TypeError):
        msgspec.msgpack.encode(obj)  # msgspec refuses it too: we only add the path
    with pytest.raises(SnapshotError, match=r"^\$\.discussion\[0\]\.meta.*: unsupported type .*" + kind):
        snapshot_serialize(obj)


EXTRA_VALUES = [
    {1, 2}, frozenset(), frozenset({"a"}), {1: "int key"}, {(1, 2): None}, datetime.datetime(2024, 5, 1, 12, 30),
    datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc), datetime.date(2024, 5, 1), datetime.time(1, 2, 3),
    datetime.timedelta(days=1, seconds=5), uuid.UUID(int=12345), decimal.Decimal("1.50"), [{3, 4}, {"d": decimal.Decimal(2)}],
    msgspec.Raw(b"\x01"), [msgspec.Raw(b"\xc0")], {"r": msgspec.Raw(b"\x02")}, msgspec.msgpack.Ext(1, b"e"),
]


@pytest.mark.parametrize("extra", EXTRA_VALUES, ids=repr)
def test_msgspec_extra_values_identical(extra):
    """Values msgspec encodes natively beyond the documented set (in Any
    slots) are encoded as msgspec encodes them."""
    obj = reference()
    obj.discussion[0]["meta"] = extra
    assert snapshot_serialize(obj) == msgspec.msgpack.encode(obj)
    assert snapshot_serialize(extra) == msgspec.msgpack.encode(extra)


def test_value_outside_its_hint_identical():
    # a set where the hint says list[str]: values are msgspec's business
    obj = reference()
    obj.files = {"only.py"}  # type: ignore[assignment]
    assert snapshot_serialize(obj) == msgspec.msgpack.encode(obj)


@pytest.mark.parametrize("field, value", [
    ("prompt", array.array("b", b"ab")), ("prompt", msgspec.Raw(b"\xc0")), ("prompt", bytearray(b"ab")),
    ("files", [array.array("b", b"ab")]), ("files", ["a", msgspec.Raw(b"\x01")]), ("files", (memoryview(b"m"),)),
], ids=repr)
def test_buffer_objects_outside_their_hint_same_answer(field, value):
    """A buffer object where the hint says str or list[str]: msgspec's answer
    (its bytes, or its refusal with the path)."""
    obj = reference()
    setattr(obj, field, value)
    try:
        want = msgspec.msgpack.encode(obj)
    except TypeError:
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
def test_unions_round_trip(obj):
    want = msgspec.msgpack.encode(obj)
    assert snapshot_serialize(obj) == want
    assert snapshot_deserialize(want, WithUnions) == obj
    assert snapshot_deserialize(snapshot_serialize(obj, format="json"), WithUnions, format="json") == obj


def test_undecodable_union_refused_with_path():
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
    with pytest.raises(SnapshotError, match=r"^\$\.inner\[\]\.pick: unsupported union Message \| .*Other"):
        snapshot_serialize(obj)
    with pytest.raises(SnapshotError, match=r"^\$\.inner\[\]\.pick: unsupported union"):
        snapshot_deserialize(b"\x81\xa5inner\x90", Holder)


def test_too_deep():
    deep: Any = []
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(SnapshotError, match="nest"):
        snapshot_serialize(deep)


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
    assert len(h) == 0 and h.nbytes == 0 and h.current_bytes() is None
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


def kept(h: SnapshotHistory) -> list[bytes]:
    """The entries a history holds, oldest first."""
    return h._entries[h._first:]


def test_history_eviction_rules():
    # capacity: the oldest go first, the count never exceeds capacity
    h = SnapshotHistory(capacity=2, max_bytes=100)
    for b in (b"a", b"bb", b"ccc"):
        h.push_bytes(b)
    assert kept(h) == [b"bb", b"ccc"] and h.nbytes == 5
    # bytes: exactly max_bytes is kept, one more evicts the oldest
    h = SnapshotHistory(capacity=10, max_bytes=10)
    h.push_bytes(b"x" * 4)
    h.push_bytes(b"y" * 6)
    assert len(h) == 2 and h.nbytes == 10
    h.push_bytes(b"z")
    assert kept(h) == [b"y" * 6, b"z"] and h.nbytes == 7
    # the entry just pushed is never evicted: it may push out all the others
    h.push_bytes(b"w" * 10)
    assert kept(h) == [b"w" * 10] and h.nbytes == 10 and not h.can_undo
    # the redo branch is dropped before eviction is judged, and its bytes with it
    h = SnapshotHistory(capacity=3, max_bytes=12, type=str)
    for s in ("1", "22", "333"):                 # 2 + 3 + 4 bytes of msgpack
        h.push(s)
    assert h.undo() == "22" and h.undo() == "1"
    h.push("4" * 9)                              # 2 + 10 = 12 once "22" and "333" are gone
    assert kept(h) == [b"\xa11", b"\xa9" + b"4" * 9] and h.nbytes == 12
    assert h.undo() == "1" and not h.can_undo and h.redo() == "4" * 9 and not h.can_redo
    # bytearray / memoryview are stored as bytes, counted in bytes
    h = SnapshotHistory()
    assert h.push_bytes(memoryview(array.array("i", [1, 2]))) == 8
    assert h.nbytes == 8 and type(h.current_bytes()) is bytes


def test_history_oversized_snapshot_is_refused():
    h = SnapshotHistory(max_bytes=100)
    small = Message("u", "x")
    h.push(small)
    h.push(Message("u", "y"))
    h.undo()
    with pytest.raises(SnapshotError, match="exceeds the history's max_bytes"):
        h.push(reference())
    # unchanged: the redo branch is still there
    assert len(h) == 2 and h.current() == small and h.can_redo
    assert h.redo() == Message("u", "y")


def _model_push(model: dict, data: bytes, capacity: int, max_bytes: int) -> None:
    """The eviction rules written the obvious (quadratic) way."""
    if len(data) > max_bytes:
        return
    entries = model["entries"][: model["pos"] + 1] + [data]
    while len(entries) > capacity or (sum(map(len, entries)) > max_bytes and len(entries) > 1):
        entries.pop(0)
    model["entries"], model["pos"] = entries, len(entries) - 1


def test_history_running_total_matches_a_model():
    """Many pushes, undos, redos, branch drops and evictions of both kinds:
    nbytes is always the sum of the entries kept, and they are the model's."""
    rng = random.Random(7)
    for capacity, max_bytes in ((1, 50), (3, 1000), (50, 400), (1000, 10 ** 9)):
        h = SnapshotHistory(capacity=capacity, max_bytes=max_bytes, type=bytes)
        model: dict = {"entries": [], "pos": -1}
        for step in range(3000):
            r = rng.random()
            if r < 0.6:
                data = msgspec.msgpack.encode(bytes([step % 256]) * rng.choice((0, 1, 7, 40, 90, 200, 600)))
                try:
                    h.push_bytes(data)
                except SnapshotError:
                    assert len(data) > max_bytes
                _model_push(model, data, capacity, max_bytes)
            elif r < 0.8 and h.can_undo:
                model["pos"] -= 1
                assert h.undo() == msgspec.msgpack.decode(model["entries"][model["pos"]])
            elif r < 0.95 and h.can_redo:
                model["pos"] += 1
                assert h.redo() == msgspec.msgpack.decode(model["entries"][model["pos"]])
            elif r > 0.999:
                h.clear()
                model = {"entries": [], "pos": -1}
            assert kept(h) == model["entries"] and len(h) == len(model["entries"])
            assert h.nbytes == sum(map(len, model["entries"]))
            assert h.current_bytes() == (model["entries"][model["pos"]] if model["entries"] else None)
            assert h.can_undo == (model["pos"] > 0) and h.can_redo == (model["pos"] + 1 < len(model["entries"]))
        assert h._first <= max(16, len(h._entries) // 2)   # the evicted slots are cut off


def test_history_push_is_amortized_constant(monkeypatch):
    """Not a timing test: the work per push (here: every len() the history
    module calls) does not grow with the number of entries kept. The old push
    summed every entry on each push: n pushes cost n**2 / 2 len() calls."""
    calls = 0
    real_len = len

    def counting_len(x):
        nonlocal calls
        calls += 1
        return real_len(x)

    monkeypatch.setattr(snap_mod, "len", counting_len, raising=False)
    per_push = []
    for n in (1000, 4000):
        for capacity in (10 ** 6, 100):     # growing without bound, and evicting on every push
            h = SnapshotHistory(capacity=capacity, max_bytes=1 << 40)
            calls = 0
            for i in range(n):
                h.push_bytes(b"%d" % i)
            per_push.append(calls / n)
            assert h.nbytes == sum(real_len(e) for e in h._entries[h._first:])
    assert max(per_push) < 8, per_push
    assert per_push[2] <= per_push[0] * 1.1 + 0.1 and per_push[3] <= per_push[1] * 1.1 + 0.1, per_push


def test_history_typed_and_invalid_arguments():
    h = SnapshotHistory(type=UiState, format="json")
    h.push(reference(1))
    h.push(reference(2))
    assert h.undo() == reference(1)
    assert h.current_bytes() == msgspec.json.encode(reference(1))
    with pytest.raises(ValueError):
        SnapshotHistory(capacity=0)
    with pytest.raises(ValueError):
        SnapshotHistory(max_bytes=0)
    with pytest.raises(SnapshotError):
        SnapshotHistory(format="xml")
    raw = SnapshotHistory()
    raw.push_bytes(b"\x01")
    with pytest.raises(SnapshotError, match="no type"):
        raw.current()
