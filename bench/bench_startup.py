"""Start-up of `slopfast aggregate`: what a run imports and what it costs (docs/benchmarks-cli.md, "Start-up").

    python bench/bench_startup.py [--checkout DIR ...] [--rounds N] [--imports N] [--json]

The command is the console script pip writes (`from slopfast.cli import main`),
run as `PY SCRIPT ARGS` so that -X importtime can be given, with Python from a venv made without pip (`python -m venv --without-pip`, in a
temporary directory) with PYTHONPATH=CHECKOUT:SITE, SITE being this Python's
site-packages (msgspec, markdown-it-py): an installed slopfast without the
import hook of an editable install, which loads pathlib, re and more before
`slopfast` is imported and so hides their cost. CHECKOUT (default: this
repository) needs its native build products in slopfast/.

Imports: each command runs under `python -X importtime` N times (default 15);
a module's cost is the median of its `self` time; the import cost of a command
is the median over runs of the sum of `self` over the modules that
`python -c pass` does not load (site's own are in both). The rows shown are the
modules imported directly by the command's own code (top-level entries of
-X importtime), by median cumulative time.

Wall time: every command runs once per round, round-robin, N rounds (default
30) after one warm-up round that also writes the wisdom file
(SLOPFAST_WISDOM=TMP/wisdom.txt: later runs read it, as after first use);
best and median of perf_counter around each child, and the median of its CPU
time (user + system, from getrusage of the children: less disturbed than
wall time by other processes on a shared machine).

The reference lines: `python -c pass` (the imports of the others are counted
beyond its own) and a parser of argparse with one option (re, gettext, locale,
shutil: what any argparse command pays). Trees: `lib` of the checkout, run from the checkout (inside a git work tree,
whose pyproject.toml names slopfast: its config is read), and a copy of it in a
temporary directory (no git, no config).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """(depth, self us, cumulative us, module) per line of -X importtime."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        self_us, cum, name = int(parts[0]), int(parts[1]), parts[2]
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((depth, self_us, cum, name.strip()))
    return rows


def import_profile(samples: list[list[tuple[int, int, int, str]]], baseline: set[str]) -> dict:
    """The figures of one command from its -X importtime runs."""
    totals, own, selfs, cums, top = [], [], {}, {}, {}
    for rows in samples:
        new = [r for r in rows if r[3] not in baseline]
        totals.append(sum(r[1] for r in new))
        own.append(sum(r[1] for r in new if r[3].split(".")[0] == "slopfast"))
        for depth, s, c, name in new:
            selfs.setdefault(name, []).append(s)
            cums.setdefault(name, []).append(c)
            if depth == 0:
                top[name] = True
    med = {name: statistics.median(v) for name, v in selfs.items()}
    return {
        "import_ms": statistics.median(totals) / 1000,
        "import_ms_best": min(totals) / 1000,
        "own_ms": statistics.median(own) / 1000,
        "modules": sorted(selfs),
        "self_ms": {n: v / 1000 for n, v in med.items()},
        "top": sorted(((n, statistics.median(cums[n]) / 1000, med[n] / 1000) for n in top), key=lambda t: -t[1]),
    }


def commands_of(checkout: Path, tmp: Path, py: str, sf: str) -> dict:
    """label -> (argv, cwd, env) for one checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOPFAST_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env["SLOPFAST_WISDOM"] = str(tmp / "wisdom.txt")
    tree = tmp / "tree"
    shutil.copytree(checkout / "lib", tree)
    out = str(tmp / "out.md")
    return {
        "python -c pass": (["-c", "pass"], tmp, env),
        "python -c 'import slopfast.cli'": (["-c", "import slopfast.cli"], tmp, env),
        # what argparse alone costs a command: re, gettext, locale, and shutil for its help formatter
        "argparse: a parser with one option": (["-c", "import argparse; argparse.ArgumentParser().add_argument('-x')"], tmp, env),
        "slopfast --version": ([sf, "--version"], tmp, env),
        "slopfast aggregate --help": ([sf, "aggregate", "--help"], tmp, env),
        "slopfast aggregate lib -o OUT (in the checkout)": ([sf, "aggregate", "lib", "-o", out], checkout, env),
        "slopfast aggregate TREE -o OUT (TREE: a copy of lib, no git, no config)":
            ([sf, "aggregate", str(tree), "-o", out], tmp, env),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path, action="append",
                    help="a slopfast source tree to run (default: this one); several: their runs interleave")
    ap.add_argument("--rounds", type=int, default=30, help="wall-time rounds")
    ap.add_argument("--imports", type=int, default=15, help="-X importtime runs per command")
    ap.add_argument("--top", type=int, default=12, help="rows of the import table")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]

    with tempfile.TemporaryDirectory(prefix="slopfast-startup-") as tmp_:
        tmp = Path(tmp_)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
        py = str(tmp / "venv" / "bin" / "python")
        script = tmp / "venv" / "bin" / "slopfast"      # what pip writes for the console script
        script.write_text(f"#!{py}\nimport sys\nfrom slopfast.cli import main\nif __name__ == '__main__':\n"
                          "    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n    sys.exit(main())\n")
        runs = {}        # (checkout index, label) -> (argv, cwd, env)
        for i, checkout in enumerate(checkouts):
            (tmp / str(i)).mkdir()
            for label, cmd in commands_of(checkout, tmp / str(i), py, str(script)).items():
                runs[i, label] = cmd
        for argv, cwd, env in runs.values():       # warm-up: file cache, .pyc, the wisdom file
            subprocess.run([py, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        keys = list(runs)
        base = {}
        samples: dict = {key: [] for key in keys if key[1] != "python -c pass"}
        for i in range(len(checkouts)):
            argv, cwd, env = runs[i, "python -c pass"]
            base[i] = {r[3] for r in parse_importtime(subprocess.run([py, "-X", "importtime", *argv], env=env, cwd=cwd,
                                                                     capture_output=True, text=True).stderr)}
        for k in range(args.imports):
            for key in keys[k % len(keys):] + keys[:k % len(keys)]:
                if key not in samples:
                    continue
                argv, cwd, env = runs[key]
                p = subprocess.run([py, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True, text=True)
                if p.returncode not in (0, 1):
                    raise SystemExit(f"{key}: exit {p.returncode}: {p.stderr[-2000:]}")
                samples[key].append(parse_importtime(p.stderr))
        profiles = {key: import_profile(rows, base[key[0]]) for key, rows in samples.items()}

        times: dict = {key: [] for key in keys}
        cpu: dict = {key: [] for key in keys}
        for k in range(args.rounds):
            for key in keys[k % len(keys):] + keys[:k % len(keys)]:
                argv, cwd, env = runs[key]
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                p = subprocess.run([py, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[key].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[key].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                if p.returncode not in (0, 1):
                    raise SystemExit(f"{key}: exit {p.returncode}")

    result = {
        "python": sys.version.split()[0], "checkouts": [str(c) for c in checkouts], "load": os.getloadavg(),
        "runs": [{"checkout": str(checkouts[i]), "command": label,
                  "wall": {"best": min(times[i, label]), "median": statistics.median(times[i, label])},
                  "cpu": {"best": min(cpu[i, label]), "median": statistics.median(cpu[i, label])},
                  "imports": profiles.get((i, label))} for i, label in keys],
    }
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    print(f"Python {result['python']}; load average after: {', '.join(f'{x:.2f}' for x in result['load'])}\n")
    several = len(checkouts) > 1
    print(f"| command |{' checkout |' if several else ''} wall best (ms) | wall median (ms) | CPU median (ms) "
          "| imports (ms): median, best | modules imported |")
    print(f"|---|{'---|' if several else ''}---:|---:|---:|---:|---:|")
    for label in dict.fromkeys(label for _, label in keys):
        for i, checkout in enumerate(checkouts):
            w, c, prof = (statistics.median(times[i, label]), min(times[i, label])), statistics.median(cpu[i, label]), \
                profiles.get((i, label))
            imp = f"{prof['import_ms']:.1f}, {prof['import_ms_best']:.1f}" if prof else "-"
            mods = str(len(prof["modules"])) if prof else "-"
            where = f" {checkout.name} |" if several else ""
            print(f"| `{label}` |{where} {w[1] * 1000:.1f} | {w[0] * 1000:.1f} | {c * 1000:.1f} | {imp} | {mods} |")
    for (i, label), prof in profiles.items():
        print(f"\n`{label}`{f' ({checkouts[i].name})' if several else ''}: {prof['import_ms']:.1f} ms of imports "
              f"(best {prof['import_ms_best']:.1f}), {len(prof['modules'])} modules, slopfast's own "
              f"{prof['own_ms']:.1f} ms (self); top entries, cumulative / self ms:\n")
        print(", ".join(f"{name} {cum:.1f}/{s:.1f}" for name, cum, s in prof["top"][:args.top]))


if __name__ == "__main__":
    main()
