"""Benchmark snapshot serialization: native vs msgspec and the usual alternatives.

    python bench/bench_snapshot.py [--repeat N] [--write docs/benchmarks-snapshot.md]

Snapshots are the host app's UI state: a 13-field dataclass (prompt, response
and system prompt strings, a discussion list of {role, content, ...} dicts,
file lists, a dict of scroll positions, an enum, optional fields, floats).
Three sizes: small (~0.4 KB), reference (~5 KB) and large (~360 KB), each
alone and as a 100-snapshot history. Every figure is the best of N timed
rounds in one run (the machine is shared; the best round is the least
disturbed), ratios are against msgspec.msgpack.encode in the same run.

Contenders, encoding:
- slopfast native: snapshot_serialize with SLOPFAST_BACKEND=native (the
  per-class plan, the marshal tape, wire encoding, the ctypes call, decoding);
  its Python-side share (plan + tape) is shown separately;
- slopfast auto: snapshot_serialize as shipped, after the dispatcher decided;
- msgspec.msgpack.encode (the fallback), msgspec.json.encode,
  orjson.dumps(dataclasses.asdict(x)), orjson.dumps(x) (its native dataclass
  support), pickle.dumps, dataclasses.asdict, copy.deepcopy.
Decoding: snapshot_deserialize (typed msgspec), msgspec untyped, pickle.loads.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import enum
import os
import pickle
import platform
import sys
import timeit
from dataclasses import dataclass
from typing import Any, Optional

import msgspec

try:
    import orjson
except ImportError:  # optional: pip install orjson
    orjson = None

from slopfast import dispatch, native
from slopfast import snapshot as snap


class Mode(enum.Enum):
    CHAT = "chat"
    EDIT = "edit"


@dataclass
class UiState:
    prompt: str
    response: str
    system_prompt: str
    discussion: list[dict[str, Any]]
    files: list[str]
    pinned_files: list[str]
    scroll: dict[str, float]
    mode: Mode
    selected: Optional[str]
    temperature: float
    top_p: float
    turn: int
    title: Optional[str] = None


def make(size: str, n: int = 0) -> UiState:
    scale = {"small": 0, "reference": 1, "large": 40}[size]
    turns = {"small": 1, "reference": 16, "large": 200}[size]
    return UiState(
        prompt="Refactor the parser so that the tokens survive a round trip. " * (10 * scale) or "fix it",
        response="```python\ndef parse(text):\n    return [t for t in text.split()]\n```\n" * (20 * scale) or "ok",
        system_prompt="You are a careful senior engineer. Answer with code. " * (5 * scale) or "be brief",
        discussion=[{"role": "user" if i % 2 else "assistant", "content": f"turn {i}: " + "words " * (10 + 5 * scale),
                     "ts": 1700000000.0 + i, "tokens": 40 + i} for i in range(turns)],
        files=[f"src/app/module_{i}.py" for i in range(3 + 5 * scale)],
        pinned_files=["README.md", "pyproject.toml"][: 1 + min(scale, 1)],
        scroll={"prompt": 0.0, "response": 1234.5, "discussion": 88.0},
        mode=Mode.EDIT, selected="src/app/module_1.py", temperature=0.7, top_p=0.95, turn=n,
        title=None if size == "small" else "Parser refactor",
    )


def best(fn, repeat: int) -> float:
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t > 0.05 or number >= 1 << 18:
            break
        number *= 4
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def encoders(obj: Any) -> list[tuple[str, Any]]:
    rows = []
    if native.available():
        rows.append(("slopfast native", lambda: snap.native_encode(obj)))
        rows.append(("  of which plan + tape (Python)", lambda: snap.tape(obj)))
    rows.append(("slopfast auto (decided)", lambda: snap.snapshot_serialize(obj)))
    rows.append(("msgspec.msgpack.encode", lambda: msgspec.msgpack.encode(obj)))
    rows.append(("msgspec.json.encode", lambda: msgspec.json.encode(obj)))
    if orjson is not None:
        rows.append(("orjson.dumps(asdict(x))", lambda: orjson.dumps(dataclasses.asdict(obj))))
        rows.append(("orjson.dumps(x)", lambda: orjson.dumps(obj)))
    rows.append(("pickle.dumps", lambda: pickle.dumps(obj, protocol=5)))
    rows.append(("dataclasses.asdict", lambda: dataclasses.asdict(obj)))
    rows.append(("copy.deepcopy", lambda: copy.deepcopy(obj)))
    return rows


def history_encoders(objs: list[Any]) -> list[tuple[str, Any]]:
    rows = []
    if native.available():
        rows.append(("slopfast native, one call", lambda: snap._native_encode_many(objs)))
        rows.append(("slopfast native, 100 calls", lambda: [snap.native_encode(o) for o in objs]))
    rows.append(("slopfast auto, 100 calls", lambda: [snap.snapshot_serialize(o) for o in objs]))
    rows.append(("SnapshotHistory: 100 pushes", lambda: push_all(objs)))
    rows.append(("msgspec.msgpack.encode x100", lambda: [msgspec.msgpack.encode(o) for o in objs]))
    rows.append(("msgspec.json.encode x100", lambda: [msgspec.json.encode(o) for o in objs]))
    if orjson is not None:
        rows.append(("orjson.dumps(asdict) x100", lambda: [orjson.dumps(dataclasses.asdict(o)) for o in objs]))
    rows.append(("pickle.dumps x100", lambda: [pickle.dumps(o, protocol=5) for o in objs]))
    rows.append(("copy.deepcopy x100", lambda: [copy.deepcopy(o) for o in objs]))
    return rows


def push_all(objs: list[Any]) -> None:
    h = snap.SnapshotHistory(capacity=100)
    for o in objs:
        h.push(o)


def decoders(obj: Any) -> list[tuple[str, Any]]:
    data = msgspec.msgpack.encode(obj)
    pickled = pickle.dumps(obj, protocol=5)
    return [
        ("snapshot_deserialize (typed)", lambda: snap.snapshot_deserialize(data, UiState)),
        ("msgspec.msgpack.decode (untyped)", lambda: msgspec.msgpack.decode(data)),
        ("pickle.loads", lambda: pickle.loads(pickled)),
    ]


def table(title: str, rows: list[tuple[str, Any]], repeat: int, base_name: str) -> list[str]:
    times = [(name, best(fn, repeat)) for name, fn in rows]
    base = dict(times).get(base_name) or times[0][1]
    out = [f"### {title}", "", "| contender | time | vs msgspec.msgpack |", "|---|---:|---:|"]
    for name, t in times:
        shown = f"{t * 1e6:.2f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"
        out.append(f"| {name} | {shown} | {t / base:.2f}x |")
    print("\n".join(out + [""]), flush=True)
    return out + [""]


def picked(obj: Any) -> tuple[str, Any]:
    """The path auto decided for obj's type: (name, the function it calls)."""
    key = snap._type_key.get(type(obj))
    if dispatch._decisions.get(key):
        return "slopfast native (native_encode)", snap.native_encode
    return "msgspec.msgpack.encode", msgspec.msgpack.encode


def overhead(size: str, obj: Any, rounds: int) -> tuple[list[str], dict]:
    """Auto dispatch vs a direct call of the path auto picked: many short
    rounds, the two interleaved in alternating order, so that the load of a
    shared machine hits both alike; the median of the per-round ratios."""
    name, direct = picked(obj)
    ser = snap.snapshot_serialize
    t_direct = timeit.Timer("f(o)", globals={"f": direct, "o": obj})
    t_auto = timeit.Timer("f(o)", globals={"f": ser, "o": obj})
    number = 1
    while t_direct.timeit(number) < 0.002:
        number *= 2
    ratios, ds, as_ = [], [], []
    for i in range(rounds):
        if i % 2:
            a = t_auto.timeit(number)
            d = t_direct.timeit(number)
        else:
            d = t_direct.timeit(number)
            a = t_auto.timeit(number)
        ratios.append(a / d)
        ds.append(d / number)
        as_.append(a / number)
    ratios.sort()
    q = lambda f: ratios[min(len(ratios) - 1, int(f * len(ratios)))]  # noqa: E731
    d, a = min(ds), min(as_)
    row = {"size": size, "picked": name, "direct": d, "auto": a, "median": q(0.5), "q1": q(0.25), "q3": q(0.75)}
    line = (f"| {size} | {name} | {d * 1e6:.3f} µs | {a * 1e6:.3f} µs | {(a / d - 1) * 100:+.1f} % | "
            f"{(q(0.5) - 1) * 100:+.1f} % ({(q(0.25) - 1) * 100:+.1f} .. {(q(0.75) - 1) * 100:+.1f}) |")
    print(line, flush=True)
    return [line], row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=201, help="interleaved rounds for the auto-overhead figure")
    ap.add_argument("--write", help="write the markdown results to this file")
    args = ap.parse_args()
    os.environ.setdefault("SLOPFAST_WISDOM", "off")
    os.environ.pop("SLOPFAST_BACKEND", None)
    dispatch.reset()

    out = [
        "# Benchmarks: snapshot serialization", "",
        f"Command: `python bench/bench_snapshot.py --repeat {args.repeat} --rounds {args.rounds}"
        + (f" --write {args.write}`" if args.write else "`"),
        "",
        f"Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}, Python "
        f"{platform.python_version()}, msgspec {msgspec.__version__}"
        + (f", orjson {orjson.__version__}" if orjson else "") + f"; native: {native.version() or native.load_error()}",
        "",
    ]
    over_lines, picks = [], []
    for size in ("small", "reference", "large"):
        # decide afresh per size, as a fresh process serializing this size would
        dispatch.reset()
        snap._type_key.clear()
        obj = make(size)
        for _ in range(3):
            snap.snapshot_serialize(obj)  # let auto decide before timing it
        nbytes = len(msgspec.msgpack.encode(obj))
        enc_rows = encoders(obj)
        out += table(f"Encode one {size} snapshot ({nbytes} bytes of msgpack)", enc_rows, args.repeat,
                     "msgspec.msgpack.encode")
        t_native = best(lambda: snap.native_encode(obj), args.repeat) if native.available() else None
        t_msgspec = best(lambda: msgspec.msgpack.encode(obj), args.repeat)
        faster = "msgspec.msgpack.encode" if t_native is None or t_msgspec <= t_native else "slopfast native (native_encode)"
        picks.append(f"- {size} ({nbytes} B): auto picked **{picked(obj)[0]}**; faster in this run: {faster} "
                     f"(native {t_native * 1e6:.2f} µs, msgspec {t_msgspec * 1e6:.2f} µs)" if t_native is not None else
                     f"- {size}: no native library; auto runs msgspec")
        objs = [make(size, i) for i in range(100)]
        out += table(f"Encode a 100-snapshot history ({size})", history_encoders(objs), max(3, args.repeat // 2),
                     "msgspec.msgpack.encode x100")
        out += table(f"Decode one {size} snapshot", decoders(obj), args.repeat, "snapshot_deserialize (typed)")
        lines, _ = overhead(size, obj, args.rounds)
        over_lines += lines
    out += ["### Which path auto picked", ""] + picks + [""]
    out += ["### Auto-dispatch overhead: snapshot_serialize (auto, decided) vs a direct call of the path it picked", "",
            f"{args.rounds} interleaved rounds of ~2 ms each, alternating order; best-of and median-of-ratios.", "",
            "| size | picked | direct (best) | auto (best) | best vs best | median ratio (quartiles) |",
            "|---|---|---:|---:|---:|---:|"] + over_lines + [""]
    print("\n".join(picks))
    decisions = [f"- {r['op']} size class {r['size_class']} ({r['bytes_from']}..{r['bytes_to']} B): {r['backend']}"
                 + (f" (native {r['native_s'] * 1e6:.1f} µs, fallback {r['fallback_s'] * 1e6:.1f} µs)" if "native_s" in r else "")
                 for r in dispatch.backend_report()]
    out += ["### Auto decisions in this run (the last size; each size decided afresh)", ""] + decisions + [""]
    out += [
        "### Reading these figures", "",
        "- The native path loses to msgspec at every size: msgspec is itself C and walks the objects",
        "  directly, while the native path first flattens them in Python (the per-class converters and",
        "  `marshal`: the `plan + tape` row) and then pays a ctypes call with a copy in and out. So auto",
        "  picks msgspec, and `snapshot_serialize` costs msgspec plus the dispatch check.",
        "- The dispatch overhead is a fixed ~0.1 µs (one dict lookup by type, one environment check, a",
        "  Python call): a few percent on the large snapshot, about 10% on the ~5 KB reference snapshot,",
        "  more on sub-microsecond small ones. The quartiles are wide because the 2-core machine is shared",
        "  with other work; the median of interleaved rounds is the robust figure.",
        "- `SnapshotHistory: 100 pushes` includes the history bookkeeping (redo-branch drop, byte count,",
        "  eviction); decoding is msgspec's typed decoder on both paths.",
        "",
    ]
    print("\n".join(decisions))
    if args.write:
        with open(args.write, "w", encoding="utf-8") as f:
            f.write("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
