"""Benchmark snapshot serialization: slopfast.snapshot_serialize vs calling msgspec yourself.

    python bench/bench_snapshot.py [--quick] [--rounds N]

snapshot_serialize is msgspec's encoder behind one type lookup (there is no
native path: docs/snapshot.md), so the figure that matters is its overhead
over a direct msgspec.msgpack.encode call, at three sizes of the host app's
UI-state dataclass: tiny (~0.4 KB), 10 KB and 1 MB. The overhead is measured
in many short rounds, the two calls interleaved in alternating order so the
load of a shared machine hits both alike: the median of the per-round
ratios, with quartiles. Then, best of the rounds: snapshot_serialize with
format="json" vs msgspec.json.encode, orjson.dumps (if installed),
snapshot_deserialize vs msgspec's typed decoder, and 100 SnapshotHistory
pushes. Prints markdown.
"""
from __future__ import annotations

import argparse
import enum
import os
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

from slopfast.snapshot import SnapshotHistory, snapshot_deserialize, snapshot_serialize


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


SIZES = {"tiny": (0, 1), "10 KB": (2, 30), "1 MB": (60, 450)}   # (text scale, discussion turns)


def make(size: str, n: int = 0) -> UiState:
    scale, turns = SIZES[size]
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
        title=None if scale == 0 else "Parser refactor",
    )


def number_for(fn: Any, arg: Any, round_s: float) -> int:
    timer = timeit.Timer("f(o)", globals={"f": fn, "o": arg})
    number = 1
    while timer.timeit(number) < round_s:
        number *= 2
    return number


def overhead(obj: Any, rounds: int, round_s: float) -> dict:
    """snapshot_serialize vs msgspec.msgpack.encode: interleaved rounds."""
    direct = timeit.Timer("f(o)", globals={"f": msgspec.msgpack.encode, "o": obj})
    ours = timeit.Timer("f(o)", globals={"f": snapshot_serialize, "o": obj})
    number = number_for(msgspec.msgpack.encode, obj, round_s)
    ratios, ds, os_ = [], [], []
    for i in range(rounds):
        if i % 2:
            o = ours.timeit(number)
            d = direct.timeit(number)
        else:
            d = direct.timeit(number)
            o = ours.timeit(number)
        ratios.append(o / d)
        ds.append(d / number)
        os_.append(o / number)
    ratios.sort()
    q = lambda f: ratios[min(len(ratios) - 1, int(f * len(ratios)))] - 1  # noqa: E731
    return {"direct": min(ds), "ours": min(os_), "median": q(0.5), "q1": q(0.25), "q3": q(0.75)}


def best(fn: Any, rounds: int, round_s: float) -> float:
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < round_s:
        number *= 2
    return min(timer.repeat(repeat=rounds, number=number)) / number


def us(t: float) -> str:
    return f"{t * 1e6:.3f} µs" if t < 1e-3 else f"{t * 1e3:.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke run)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per size (default 201, --quick 21)")
    args = ap.parse_args()
    rounds = args.rounds or (21 if args.quick else 201)
    round_s = 0.0005 if args.quick else 0.002
    print(f"Command: `python bench/bench_snapshot.py{' --quick' if args.quick else ''}"
          f"{f' --rounds {args.rounds}' if args.rounds else ''}`\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}, Python "
          f"{platform.python_version()}, msgspec {msgspec.__version__}"
          + (f", orjson {orjson.__version__}" if orjson else ", orjson not installed") + "\n")

    objs = {size: make(size) for size in SIZES}
    for obj in objs.values():
        assert snapshot_serialize(obj) == msgspec.msgpack.encode(obj)   # also: the type is checked now
    print(f"### snapshot_serialize vs msgspec.msgpack.encode ({rounds} interleaved rounds of ~{round_s * 1e3:g} ms)\n")
    print("| size | msgpack bytes | msgspec.msgpack.encode (best) | snapshot_serialize (best) | overhead, median (quartiles) |")
    print("|---|---:|---:|---:|---:|")
    for size, obj in objs.items():
        r = overhead(obj, rounds, round_s)
        print(f"| {size} | {len(msgspec.msgpack.encode(obj))} | {us(r['direct'])} | {us(r['ours'])} | "
              f"{r['median'] * 100:+.1f} % ({r['q1'] * 100:+.1f} .. {r['q3'] * 100:+.1f}) |", flush=True)

    reps = max(3, rounds // 10)
    print(f"\n### Other calls (best of {reps} rounds)\n")
    print("| size | contender | time | vs the msgspec call above it |")
    print("|---|---|---:|---:|")
    for size, obj in objs.items():
        data = msgspec.msgpack.encode(obj)
        decoder = msgspec.msgpack.Decoder(UiState)
        history = [make(size, i) for i in range(100)]
        rows = [  # (contender, call, what it is compared with: None for the baseline itself)
            ("msgspec.json.encode", lambda: msgspec.json.encode(obj), None),
            ('snapshot_serialize(format="json")', lambda: snapshot_serialize(obj, format="json"), "msgspec.json.encode"),
        ]
        if orjson is not None:
            rows.append(("orjson.dumps", lambda: orjson.dumps(obj), "msgspec.json.encode"))
        rows += [
            ("msgspec.msgpack.Decoder(UiState).decode", lambda: decoder.decode(data), None),
            ("snapshot_deserialize", lambda: snapshot_deserialize(data, UiState), "msgspec.msgpack.Decoder(UiState).decode"),
            ("msgspec.msgpack.encode x100", lambda: encode_all(history), None),
            ("SnapshotHistory: 100 pushes", lambda: push_all(history), "msgspec.msgpack.encode x100"),
        ]
        times = {name: best(fn, reps, round_s) for name, fn, _ in rows}
        for name, _, base in rows:
            vs = "1.00x" if base is None else f"{times[name] / times[base]:.2f}x"
            print(f"| {size} | {name} | {us(times[name])} | {vs} |", flush=True)


def encode_all(objs: list[Any]) -> None:
    for o in objs:
        msgspec.msgpack.encode(o)


def push_all(objs: list[Any]) -> None:
    h = SnapshotHistory(capacity=100)
    for o in objs:
        h.push(o)


if __name__ == "__main__":
    sys.exit(main())
