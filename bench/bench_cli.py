"""Wall time of `slopfast aggregate` vs `files-to-prompt`, in fresh processes (docs/benchmarks-cli.md).

    python bench/bench_cli.py [--runs N] [--json] [--tree stdlib|rust-book]

Trees:
- stdlib: every .py file of this Python's standard library (sysconfig "stdlib",
  without site-packages and __pycache__), copied to a temporary directory;
- rust-book: tests/data/rust-book (markdown, TOML, Rust).

Commands, each run N times as a new process (best and median wall time, output
to a file outside the tree):
- slopfast aggregate TREE -o OUT with SLOPFAST_BACKEND=native, =fallback, and
  =auto with a wisdom file written by a warm-up run (as after first use);
- files-to-prompt TREE -o OUT, and with -m (its markdown output).
The commands take turns (round-robin), N rounds after one warm-up round.

Each line also gives the number of files in the output and its size, so that
one can see that the tools did comparable work. hyperfine is not needed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stdlib_tree(dest: Path) -> Path:
    src = Path(sysconfig.get_paths()["stdlib"])
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "site-packages"))
        rel = Path(dirpath).relative_to(src)
        for name in filenames:
            if name.endswith(".py"):
                (dest / rel).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(dirpath) / name, dest / rel / name)
    return dest


def tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else (shutil.which(name) or name)


def time_runs(cmd: list[str], env: dict[str, str], runs: int, cwd: Path) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
        if p.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return times


def count_files(out: Path, kind: str, tree: Path, files: list[str]) -> int:
    """How many of the tree's files the output document holds (by their header lines)."""
    lines = set(out.read_bytes().split(b"\n"))
    if kind == "slopfast":
        return sum(1 for rel in files if f"### `{tree}/{rel}`".encode() in lines)
    return sum(1 for rel in files if f"{tree}/{rel}".encode() in lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--tree", action="append", choices=("stdlib", "rust-book"))
    args = ap.parse_args()

    loadavg_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    work = Path(tempfile.mkdtemp(prefix="slopfast-bench-cli-"))
    try:
        trees = {}
        for name in args.tree or ("stdlib", "rust-book"):
            if name == "stdlib":
                trees[name] = stdlib_tree(work / "stdlib")
            else:
                trees[name] = ROOT / "tests" / "data" / "rust-book"
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("SLOPFAST_")}
        wisdom = work / "wisdom.txt"
        out = work / "out.md"
        slopfast = tool("slopfast")
        ftp = tool("files-to-prompt")
        results = []
        for name in ("--version",):   # startup alone, for scale
            for label, exe in (("slopfast --version", slopfast), ("files-to-prompt --version", ftp)):
                times = time_runs([exe, name], base_env, args.runs, work)
                results.append({"tree": None, "command": label, "argv": f"{os.path.basename(exe)} {name}",
                                "best_s": min(times), "median_s": statistics.median(times), "runs": len(times)})
                if not args.json:
                    print(f"{'-':<10} {label:<28} best {min(times):7.3f} s  median {statistics.median(times):7.3f} s",
                          flush=True)
        for tree_name, tree in trees.items():
            files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
            n_in = len(files)
            b_in = sum((tree / rel).stat().st_size for rel in files)
            commands = [
                ("slopfast native", [slopfast, "aggregate", str(tree), "-o", str(out)],
                 {"SLOPFAST_BACKEND": "native"}, "slopfast"),
                ("slopfast fallback", [slopfast, "aggregate", str(tree), "-o", str(out)],
                 {"SLOPFAST_BACKEND": "fallback"}, "slopfast"),
                ("slopfast auto (wisdom warm)", [slopfast, "aggregate", str(tree), "-o", str(out)],
                 {"SLOPFAST_WISDOM": str(wisdom)}, "slopfast"),
                ("files-to-prompt -m", [ftp, str(tree), "-m", "-o", str(out)], {}, "ftp-md"),
                ("files-to-prompt", [ftp, str(tree), "-o", str(out)], {}, "ftp"),
            ]
            # Rounds: every command once per round, so that load from other
            # processes (the machine is shared) falls on all of them alike.
            for label, cmd, extra, kind in commands:
                time_runs(cmd, {**base_env, **extra}, 1, work)     # warm-up: file cache, wisdom file
            times: dict[str, list[float]] = {label: [] for label, *_ in commands}
            for _ in range(args.runs):
                for label, cmd, extra, kind in commands:
                    times[label] += time_runs(cmd, {**base_env, **extra}, 1, work)
            for label, cmd, extra, kind in commands:
                time_runs(cmd, {**base_env, **extra}, 1, work)     # its output, for the counts
                row = {
                    "tree": tree_name, "files_in_tree": n_in, "bytes_in_tree": b_in,
                    "command": label, "argv": " ".join(
                        [*(f"{k}={v}" for k, v in extra.items()), os.path.basename(cmd[0]), *cmd[1:]]),
                    "best_s": min(times[label]), "median_s": statistics.median(times[label]),
                    "runs": len(times[label]),
                    "out_bytes": out.stat().st_size, "out_files": count_files(out, kind, tree, files),
                }
                results.append(row)
                if not args.json:
                    print(f"{tree_name:<10} {label:<28} best {row['best_s']:7.3f} s  median {row['median_s']:7.3f} s  "
                          f"{row['out_files']:5} files  {row['out_bytes'] / 1e6:7.2f} MB out", flush=True)
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "loadavg_before": loadavg_before, "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "files_to_prompt": subprocess.run([ftp, "--version"], capture_output=True, text=True).stdout.strip(),
            "slopfast_native": json.loads(subprocess.run([slopfast, "doctor", "--json"], capture_output=True,
                                                         text=True, env=base_env).stdout)["native_version"],
        }
        if args.json:
            json.dump({"meta": meta, "results": results}, sys.stdout, indent=1)
            print()
        else:
            print(json.dumps(meta))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
