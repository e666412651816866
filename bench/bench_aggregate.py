"""Whole-command benchmark of `slopfast aggregate` against files-to-prompt, repomix and `cat` (issue 11).

    python bench/bench_aggregate.py [--quick] [--corpus NAME ...] [--rounds N]
                                    [--slopfast PATH] [--json FILE] [--md FILE]

Corpora (built or fetched once, cached under --data, default /work/bench-data/corpora;
each one's parameters and counts in NAME.manifest.json beside it, outside the tree):

- stdlib     every .py file of the running Python's standard library (sysconfig
             "stdlib", without site-packages and __pycache__), copied out;
             quick: the top-level modules only (no packages).
- rust-book  a copy of tests/data/rust-book (so that no .gitignore of this
             repository applies); quick: the same.
- sympy      a git work tree of sympy (cloned from the `fetch` mirror,
             --sympy-mirror, into DATA/sympy); quick: its sympy/core directory.
- gen-50k    50,000 small text files (64 B - 4 KiB) in nested directories;
             quick: 5,000.
- gen-100mb  100 MB of text files of mixed sizes (64 B - 2 MiB, log-uniform), a few
             with backtick runs; quick: 10 MB.
- gen-1gb    1 GB the same way; quick: 40 MB.
The generated trees are deterministic (--seed, default 11) and outside any git
work tree.

Commands, each a fresh process writing to a file outside the tree (OUT):
  slopfast native / fallback / auto   [SLOPFAST_BACKEND=...] slopfast aggregate TREE -o OUT
                                      (auto with a wisdom file the warm-up round writes)
  files-to-prompt -m                  files-to-prompt TREE -m -o OUT
  repomix                             repomix --style markdown -o OUT TREE
  floor                               in a git work tree: git ls-files -z | xargs -0 cat > OUT
                                      (run in TREE); else
                                      find TREE -type f -print0 | sort -z | xargs -0 cat > OUT
and on the repository corpora (stdlib, rust-book, sympy) the condensed modes:
  slopfast summary / skeleton         slopfast aggregate --mode summary|skeleton TREE -o OUT
  repomix --compress                  repomix --compress --style markdown -o OUT TREE
repomix is left out on gen-100mb and gen-1gb unless --repomix-everywhere.

Every command runs once in a warm-up round (page cache, wisdom file), then N rounds
in which each command runs once, in an order rotated by one each round, so that load
from other processes falls on all alike. Reported: best and median wall time, peak
RSS (GNU time's %M: ru_maxrss from wait4; for a shell pipeline the largest process
of it), output size, and how many of the tree's files the output holds (found by their
section headings; for the floor, the number of files it concatenated).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import mmap
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path("/work/bench-data")
DEFAULT_SLOPFAST = "/work/main/.venv/bin/slopfast"
DEFAULT_SYMPY_MIRROR = "/work/.mirror/sympy+sympy/repo"
CORPORA = ("rust-book", "stdlib", "sympy", "gen-50k", "gen-100mb", "gen-1gb")
REPO_CORPORA = ("rust-book", "stdlib", "sympy")
# Default timed rounds per corpus (after one warm-up round); --rounds overrides.
DEFAULT_ROUNDS = {"rust-book": 5, "stdlib": 3, "sympy": 3, "gen-50k": 3, "gen-100mb": 5, "gen-1gb": 3}
GENERATOR_VERSION = 1


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- corpora

def tree_stats(tree: Path) -> tuple[int, int]:
    n = b = 0
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                n += 1
                b += os.path.getsize(p)
    return n, b


def cached(data: Path, name: str, params: dict, build) -> tuple[Path, dict]:
    """The tree DATA/corpora/NAME, rebuilt when its manifest's params differ."""
    tree = data / "corpora" / name
    manifest = data / "corpora" / f"{name}.manifest.json"
    if manifest.exists() and tree.is_dir():
        m = json.loads(manifest.read_text())
        if m.get("params") == params:
            return tree, m
    if tree.exists():
        shutil.rmtree(tree)
    tree.parent.mkdir(parents=True, exist_ok=True)
    log(f"building corpus {name} in {tree} ...")
    t0 = time.perf_counter()
    tmp = tree.with_name(tree.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    build(tmp)
    tmp.rename(tree)
    n, b = tree_stats(tree)
    m = {"name": name, "path": str(tree), "params": params, "files": n, "bytes": b,
         "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "build_s": round(time.perf_counter() - t0, 1)}
    manifest.write_text(json.dumps(m, indent=1) + "\n")
    log(f"  {n} files, {b / 1e6:.1f} MB in {m['build_s']} s")
    return tree, m


def build_stdlib(dest: Path, quick: bool) -> None:
    src = Path(sysconfig.get_paths()["stdlib"])
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [] if quick else sorted(d for d in dirnames if d not in ("__pycache__", "site-packages"))
        rel = Path(dirpath).relative_to(src)
        for name in sorted(filenames):
            if name.endswith(".py"):
                (dest / rel).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(dirpath) / name, dest / rel / name)


def dir_digest(src: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(src.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(src).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


WORDS = ("the of and to in is for that with as on by this be are from at or it an not which "
         "function value return file path tree index buffer chunk stream write read open close "
         "markdown fence heading section context document repository module class method "
         "alpha beta gamma delta epsilon zeta theta lambda sigma omega parse token scan walk "
         "ignore pattern match glob binary text size limit error output input native fallback").split()


def text_pool(seed: int, size: int) -> bytes:
    """`size` bytes of word lines (ASCII, 20-100 columns), deterministic."""
    rng = random.Random(seed)
    lines, n = [], 0
    while n < size:
        k = rng.randint(3, 16)
        line = " ".join(rng.choices(WORDS, k=k))
        if rng.random() < 0.15:
            line = "    " + line
        if rng.random() < 0.05:
            line = ""
        lines.append(line)
        n += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:size]


EXTS = (".txt", ".md", ".py", ".rs", ".c", ".toml")


def build_generated(dest: Path, seed: int, *, files: int | None = None, total: int | None = None,
                    min_size: int, max_size: int, backtick_every: int = 0) -> None:
    """Text files in nested directories: either `files` files, or files until
    `total` bytes (the last one cut short). Sizes log-uniform in [min_size, max_size].
    Every `backtick_every`-th file (about) gets lines with backtick runs (3 to 12
    backticks) in it, so that fences must be longer."""
    rng = random.Random(seed)
    pool = text_pool(seed, max(max_size, 1 << 20) + (1 << 20))
    view = memoryview(pool + pool)
    lmin, lmax = math.log(min_size), math.log(max_size)
    made_dirs: set[str] = set()
    i = written = 0
    while (files is not None and i < files) or (total is not None and written < total):
        size = int(math.exp(rng.uniform(lmin, lmax)))
        if total is not None:
            size = min(size, total - written)
        # nested: a/b/c with fan-out 10 x 10 x 10 (1,000 leaf directories)
        d = f"d{i % 10}/e{(i // 10) % 10}/f{(i // 100) % 10}"
        if d not in made_dirs:
            os.makedirs(dest / d, exist_ok=True)
            made_dirs.add(d)
        name = f"{d}/file{i:06d}{EXTS[i % len(EXTS)]}"
        start = rng.randrange(len(pool))
        with open(dest / name, "wb", buffering=0) as f:
            if backtick_every and rng.randrange(backtick_every) == 0:
                run = "`" * rng.randint(3, 12)
                head = f"a backtick run follows\n{run}\ninline {run} run\n{run}text\n".encode()
                head = head[:size]
                f.write(head)
                f.write(view[start:start + size - len(head)])
            else:
                f.write(view[start:start + size])
        written += size
        i += 1


def generated_spec(name: str, quick: bool) -> dict:
    if name == "gen-50k":
        return {"files": 5_000 if quick else 50_000, "min_size": 64, "max_size": 4096, "backtick_every": 0}
    if name == "gen-100mb":
        return {"total": 10_000_000 if quick else 100_000_000, "min_size": 64, "max_size": 2 << 20,
                "backtick_every": 40}
    if name == "gen-1gb":
        return {"total": 40_000_000 if quick else 1_000_000_000, "min_size": 64, "max_size": 2 << 20,
                "backtick_every": 40}
    raise KeyError(name)


def git_tree_of(data: Path, mirror: str) -> Path:
    tree = data / "sympy"
    if not (tree / ".git").exists():
        if not Path(mirror).exists():
            raise SystemExit(f"no sympy work tree at {tree} and no mirror at {mirror}: fetch it "
                             f"(the session's `fetch github:sympy/sympy`, or "
                             f"`git clone https://github.com/sympy/sympy {tree}`)")
        log(f"cloning {mirror} into {tree} ...")
        subprocess.run(["git", "clone", "-q", mirror, str(tree)], check=True)
    return tree


def corpus(name: str, args) -> dict:
    """{name, path, git, files: [rel], bytes, description}."""
    data, quick, seed = args.data, args.quick, args.seed
    label = name + ("-quick" if quick and name != "rust-book" else "")   # rust-book has no small variant
    git = False
    if name == "stdlib":
        params = {"python": platform.python_version(), "stdlib": sysconfig.get_paths()["stdlib"],
                  "top_level_only": quick}
        tree, m = cached(data, label, params, lambda d: build_stdlib(d, quick))
        desc = (f"the .py files of CPython {platform.python_version()}'s standard library "
                + ("(top level only) " if quick else "(without site-packages, __pycache__) ")
                + f"copied to {tree}")
    elif name == "rust-book":
        src = ROOT / "tests" / "data" / "rust-book"
        params = {"source": str(src), "digest": dir_digest(src)}
        tree, m = cached(data, "rust-book", params,
                         lambda d: shutil.copytree(src, d, dirs_exist_ok=True, symlinks=True))
        desc = f"a copy of {src.relative_to(ROOT)} (this repository) at {tree}, outside any git work tree"
    elif name == "sympy":
        top = git_tree_of(data, args.sympy_mirror)
        tree = top / "sympy" / "core" if quick else top
        git = True
        head = subprocess.run(["git", "-C", str(top), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        desc = (f"sympy git work tree at {top}, commit {head}"
                + (", its sympy/core directory" if quick else ""))
        m = {"commit": head}
    else:
        spec = generated_spec(name, quick)
        params = {**spec, "seed": seed, "generator": GENERATOR_VERSION}
        tree, m = cached(data, label, params, lambda d: build_generated(d, seed, **spec))
        what = f"{spec['files']:,} files" if "files" in spec else f"{spec['total']:,} bytes"
        desc = (f"generated ({what}, sizes {spec['min_size']:,} B - {spec['max_size']:,} B log-uniform, "
                f"seed {seed}{', backtick runs in about 1 file in %d' % spec['backtick_every'] if spec['backtick_every'] else ''}) "
                f"at {tree}")
    if git:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=tree, capture_output=True, check=True).stdout
        files = [f for f in out.decode("utf-8", "surrogateescape").split("\0") if f]
    else:
        files = []
        for dirpath, dirnames, filenames in os.walk(tree):
            dirnames.sort()
            rel = os.path.relpath(dirpath, tree)
            for f in filenames:
                p = os.path.join(dirpath, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    files.append(f if rel == "." else f"{rel}/{f}")
    files.sort()
    nbytes = sum(os.path.getsize(tree / f) for f in files)
    return {"name": name, "label": label, "path": str(tree), "git": git, "files": files,
            "n_files": len(files), "bytes": nbytes, "description": desc, "manifest": m}


# ---------------------------------------------------------------- commands

def commands_for(c: dict, args, work: Path) -> list[dict]:
    tree = c["path"]
    sf = args.slopfast
    wisdom = str(work / "wisdom.txt")
    cmds = []

    def add(label, argv, *, env=None, kind, cwd=None, shell=False, group="full"):
        out = work / ("out-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".md")
        argv = [a.replace("{OUT}", str(out)) for a in argv]
        cmds.append({"label": label, "argv": argv, "env": env or {}, "kind": kind, "out": str(out),
                     "cwd": cwd or str(work), "shell": shell, "group": group})

    add("slopfast native", [sf, "aggregate", tree, "-o", "{OUT}"], env={"SLOPFAST_BACKEND": "native"},
        kind="slopfast")
    add("slopfast fallback", [sf, "aggregate", tree, "-o", "{OUT}"], env={"SLOPFAST_BACKEND": "fallback"},
        kind="slopfast")
    add("slopfast auto", [sf, "aggregate", tree, "-o", "{OUT}"], env={"SLOPFAST_WISDOM": wisdom},
        kind="slopfast")
    if args.ftp:
        add("files-to-prompt -m", [args.ftp, tree, "-m", "-o", "{OUT}"], kind="ftp")
    want_repomix = args.repomix and (args.repomix_everywhere or c["name"] not in ("gen-100mb", "gen-1gb"))
    if want_repomix:
        add("repomix", [args.repomix, "--style", "markdown", "-o", "{OUT}", tree], kind="repomix")
    if c["git"]:
        add("floor", ["sh", "-c", "git ls-files -z | xargs -0 cat > {OUT}"], kind="floor", cwd=tree,
            shell=True)
    else:
        add("floor", ["sh", "-c", f"find {shlex.quote(tree)} -type f -print0 | sort -z | xargs -0 cat > {{OUT}}"],
            kind="floor", shell=True)
    if c["name"] in REPO_CORPORA and not args.no_condensed:
        add("slopfast summary", [sf, "aggregate", "--mode", "summary", tree, "-o", "{OUT}"],
            env={"SLOPFAST_WISDOM": wisdom}, kind="slopfast", group="condensed")
        add("slopfast skeleton", [sf, "aggregate", "--mode", "skeleton", tree, "-o", "{OUT}"],
            env={"SLOPFAST_WISDOM": wisdom}, kind="slopfast", group="condensed")
        if want_repomix:
            add("repomix --compress", [args.repomix, "--compress", "--style", "markdown", "-o", "{OUT}", tree],
                kind="repomix", group="condensed")
    for cmd in cmds:   # shell lines get the quoted output path
        if cmd["shell"]:
            cmd["argv"][2] = cmd["argv"][2].replace(str(cmd["out"]), shlex.quote(cmd["out"]))
    return cmds


TIME = "/usr/bin/time"


def run_once(cmd: dict, base_env: dict) -> dict:
    """One run: wall seconds, peak RSS (KiB), exit status.

    The peak RSS comes from GNU time (`/usr/bin/time -f %M`), which reports its
    child's ru_maxrss from wait4: for a shell pipeline, the largest process in it
    (a child's figure includes its reaped descendants). Not os.wait4 on our own
    child: Linux counts the RSS a process had before exec into its ru_maxrss, so a
    child forked from this script would never report less than the script itself
    (which grows when it reads a 1 GB output)."""
    out = Path(cmd["out"])
    if out.exists():
        out.unlink()
    env = {**base_env, **cmd["env"]}
    rss_file = out.with_suffix(".rss")
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M", "-o", str(rss_file), *cmd["argv"]], env=env, cwd=cmd["cwd"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        dt = time.perf_counter() - t0
        err.seek(0)
        tail = err.read()[-4000:].decode("utf-8", "replace")
    lines = rss_file.read_text().split() if rss_file.exists() else []
    rss_file.unlink(missing_ok=True)
    rss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return {"s": dt, "rss_kib": rss, "rc": p.returncode, "stderr": tail}


def included_files(out: Path, kind: str, c: dict) -> set[str]:
    """The tree's files whose section heading the output holds."""
    tree = c["path"]
    if kind == "slopfast":
        pat = re.compile(rb"\n### `([^\n]*)`\n")
        strip = (tree + "/").encode()
    elif kind == "ftp":
        pat = re.compile(rb"\n(" + re.escape(tree.encode()) + rb"/[^\n]*)\n`{3,}")
        strip = (tree + "/").encode()
    elif kind == "repomix":
        pat = re.compile(rb"\n## File: ([^\n]*)\n")
        strip = b""
    else:
        return set(c["files"])
    if out.stat().st_size == 0:
        return set()
    names = set(c["files"])
    found = set()
    with open(out, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        # a heading on the first line has no newline before it: look at a copy of the start
        heads = [pat.search(b"\n" + mm[:4096])] if not mm[:1] == b"\n" else []
        for m in [*heads, *pat.finditer(mm)]:
            if not m:
                continue
            p = m.group(1)
            if strip and p.startswith(strip):
                p = p[len(strip):]
            s = p.decode("utf-8", "surrogateescape")
            if s in names:
                found.add(s)
    return found


def version_of(argv: list[str], env=None) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else f"rc {p.returncode}"
    except Exception as e:   # noqa: BLE001 -- a missing tool is recorded, not fatal
        return f"unavailable ({e})"


def machine_info() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = next(l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    return {"nproc": version_of(["nproc"]), "cpu": cpu, "mem_total": mem,
            "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python": platform.python_version()}


# ---------------------------------------------------------------- report

def fmt_ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else ""


def corpus_markdown(c: dict, rows: list[dict]) -> str:
    la = ", ".join(f"{x:.2f}" for x in c["loadavg_before"])
    lines = [f"### {c['label']}: {c['n_files']:,} files, {c['bytes'] / 1e6:.1f} MB", "",
             f"{c['warmup']} warm-up + {c['rounds']} timed rounds; load average before: {la}; "
             f"{c['elapsed_s']:.0f} s for this corpus.", "",
             c["description"] + ".", "",
             "| command | best (s) | median (s) | peak RSS (MiB) | output MB | files in output | exit |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['label']} | failed |  |  |  |  | {r['rc']} |")
            continue
        lines.append(f"| {r['label']} | {r['best_s']:.3f} | {r['median_s']:.3f} | {r['peak_rss_mib']:.1f} | "
                     f"{r['out_bytes'] / 1e6:.2f} | {r['out_files']:,} / {c['n_files']:,} | {r['rc']} |")
    by = {r["label"]: r for r in rows if not r.get("failed")}
    others = [o for o in ("files-to-prompt -m", "floor", "repomix") if o in by]
    if others:
        lines += ["", "slopfast ÷ other, wall time, median (best):", "",
                  "| slopfast | " + " | ".join(f"÷ {o}" for o in others) + " |",
                  "|---|" + "---:|" * len(others)]
        for s in ("slopfast native", "slopfast fallback", "slopfast auto"):
            if s in by:
                lines.append(f"| {s.split()[1]} | " + " | ".join(
                    f"{fmt_ratio(by[s]['median_s'], by[o]['median_s'])} "
                    f"({fmt_ratio(by[s]['best_s'], by[o]['best_s'])})" for o in others) + " |")
    if "repomix --compress" in by:
        lines += ["", "condensed modes ÷ repomix --compress, median (best): " + ", ".join(
            f"{s} {fmt_ratio(by[s]['median_s'], by['repomix --compress']['median_s'])} "
            f"({fmt_ratio(by[s]['best_s'], by['repomix --compress']['best_s'])})"
            for s in ("slopfast summary", "slopfast skeleton") if s in by)]
    notes = []
    groups: dict[tuple, list[str]] = {}   # commands that leave out the same files, together
    for r in rows:
        if r.get("missing"):
            groups.setdefault((r["missing"], r["missing_hash"]), []).append(r["label"])
    for (n, _h), labels in groups.items():
        r = by[labels[0]]
        notes.append(f"- {', '.join(labels)}: {n:,} of the tree's files not in the output, e.g. "
                     + ", ".join(f"`{m}`" for m in r["missing_examples"][:6]))
    digests = {by[s]["out_sha256"] for s in ("slopfast native", "slopfast fallback", "slopfast auto") if s in by}
    if len(digests) > 1:
        notes.append("- the outputs of slopfast native, fallback and auto differ (sha256 in the JSON)")
    elif digests:
        notes.append("- slopfast native, fallback and auto wrote the same bytes")
    for r in rows:
        if r.get("rc") not in (0, None) or r.get("failed"):
            notes.append(f"- {r['label']}: exit {r['rc']}: `{r['stderr'].strip()[-300:]}`")
    if c.get("verbose_line"):
        notes.append(f"- `slopfast aggregate -v` says: `{c['verbose_line']}`")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def summary_markdown(results: list[dict]) -> str:
    """The issue's table: slopfast auto ÷ other per corpus, medians; and the targets."""
    cols = [r for r in results if r["rows"]]
    head = "| slopfast auto ÷ | " + " | ".join(r["corpus"]["label"] for r in cols) + " |"
    lines = ["### Summary: slopfast auto ÷ other, wall time, medians (below 1: slopfast faster)", "",
             head, "|---|" + "---:|" * len(cols)]
    def cell(r, a, b):
        by = {x["label"]: x for x in r["rows"] if not x.get("failed")}
        return fmt_ratio(by[a]["median_s"], by[b]["median_s"]) if a in by and b in by else ""
    def row(title, cells):
        if any(cells):   # a comparison no corpus has is left out
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for o in ("files-to-prompt -m", "floor", "repomix"):
        row(o, [cell(r, "slopfast auto", o) for r in cols])
    for s in ("slopfast summary", "slopfast skeleton"):
        row(f"({s.split()[1]}) ÷ repomix --compress", [cell(r, s, "repomix --compress") for r in cols])
    def rss(r):
        by = {x["label"]: x for x in r["rows"] if not x.get("failed")}
        return f"{by['slopfast auto']['peak_rss_mib']:.0f}" if "slopfast auto" in by else ""
    lines.append("| peak RSS of slopfast auto (MiB) | " + " | ".join(rss(r) for r in cols) + " |")

    # Targets of issue 11 (on this run's medians)
    tl = ["", "### Issue 11 targets (this run, slopfast auto, medians)", "",
          "| target | corpus | measured | met |", "|---|---|---:|---|"]
    for r in cols:
        c = r["corpus"]
        by = {x["label"]: x for x in r["rows"] if not x.get("failed")}
        if "slopfast auto" not in by:
            continue
        sa = by["slopfast auto"]
        if c["name"] in ("stdlib", "rust-book", "sympy", "gen-50k") and "files-to-prompt -m" in by:
            q = sa["median_s"] / by["files-to-prompt -m"]["median_s"]
            tl.append(f"| ≥ 2x faster than files-to-prompt -m (ratio ≤ 0.50) | {c['label']} | {q:.2f} | "
                      f"{'yes' if q <= 0.5 else 'no'} |")
        if "floor" in by:
            q = sa["median_s"] / by["floor"]["median_s"]
            if c["name"] in ("gen-100mb", "gen-1gb"):
                tl.append(f"| within 1.5x of the floor | {c['label']} | {q:.2f} | {'yes' if q <= 1.5 else 'no'} |")
            elif c["bytes"] >= 10_000_000:
                tl.append(f"| within 2x of the floor (repositories ≥ 10 MB) | {c['label']} | {q:.2f} | "
                          f"{'yes' if q <= 2 else 'no'} |")
        tl.append(f"| peak RSS ≤ 64 MiB | {c['label']} | {sa['peak_rss_mib']:.1f} MiB | "
                  f"{'yes' if sa['peak_rss_mib'] <= 64 else 'no'} |")
    return "\n".join(lines + tl) + "\n"


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--corpus", action="append", choices=CORPORA, help="repeatable; default all")
    ap.add_argument("--quick", action="store_true",
                    help="small variants of the corpora, 1 round, no warm-up run of repomix")
    ap.add_argument("--rounds", type=int, help="timed rounds per corpus (default per corpus: "
                    + ", ".join(f"{k} {v}" for k, v in DEFAULT_ROUNDS.items()) + "; --quick: 1)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up rounds, not timed (default 1)")
    ap.add_argument("--slopfast", default=DEFAULT_SLOPFAST, help=f"the slopfast command (default {DEFAULT_SLOPFAST})")
    ap.add_argument("--files-to-prompt", dest="ftp",
                    default=str(DEFAULT_DATA / "tools/ftp-venv/bin/files-to-prompt"),
                    help="files-to-prompt command ('' to leave it out)")
    ap.add_argument("--repomix", default=str(DEFAULT_DATA / "tools/repomix/node_modules/.bin/repomix"),
                    help="repomix command ('' to leave it out)")
    ap.add_argument("--repomix-everywhere", action="store_true", help="run repomix on gen-100mb and gen-1gb too")
    ap.add_argument("--no-condensed", action="store_true", help="leave out summary/skeleton/--compress")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="corpora and scratch (default /work/bench-data)")
    ap.add_argument("--sympy-mirror", default=DEFAULT_SYMPY_MIRROR, help="git dir to clone sympy from")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON here ('-': stdout)")
    ap.add_argument("--md", metavar="FILE", help="also write the markdown report here")
    ap.add_argument("--setup-tools", action="store_true",
                    help="install files-to-prompt (venv) and repomix (npm) under DATA/tools, then exit")
    args = ap.parse_args()

    if args.setup_tools:
        tools = args.data / "tools"
        tools.mkdir(parents=True, exist_ok=True)
        for line in (f"{sys.executable} -m venv {tools}/ftp-venv",
                     f"{tools}/ftp-venv/bin/pip install files-to-prompt",
                     f"mkdir -p {tools}/repomix && cd {tools}/repomix && npm install repomix"):
            log("+", line)
            subprocess.run(line, shell=True, check=True)
        return
    if args.ftp and not Path(args.ftp).exists():
        log(f"files-to-prompt not found at {args.ftp}: left out (--setup-tools installs it)")
        args.ftp = ""
    if args.repomix and not Path(args.repomix).exists():
        log(f"repomix not found at {args.repomix}: left out (--setup-tools installs it)")
        args.repomix = ""
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} (GNU time) is needed for the peak RSS figures")
    if not Path(args.slopfast).exists():
        raise SystemExit(f"no slopfast at {args.slopfast}")

    names = args.corpus or list(CORPORA)
    work = args.data / "work"
    work.mkdir(parents=True, exist_ok=True)
    wisdom = work / "wisdom.txt"
    if wisdom.exists():
        wisdom.unlink()     # auto starts cold; the warm-up round writes it
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SLOPFAST_")}
    doctor = {}
    try:
        doctor = json.loads(subprocess.run([args.slopfast, "doctor", "--json"], capture_output=True,
                                           text=True, env=base_env, timeout=120).stdout)
    except Exception as e:   # noqa: BLE001
        doctor = {"error": str(e)}
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "machine": machine_info(),
        "quick": args.quick,
        "slopfast": {"path": args.slopfast, "version": doctor.get("version"),
                     "native_version": doctor.get("native_version"), "build_id": doctor.get("build_id"),
                     "package": doctor.get("package"), "python": doctor.get("python"),
                     "native_available": doctor.get("native_available")},
        "files_to_prompt": {"path": args.ftp, "version": version_of([args.ftp, "--version"]) if args.ftp else None},
        "repomix": {"path": args.repomix, "version": version_of([args.repomix, "--version"]) if args.repomix else None,
                    "node": version_of(["node", "--version"])},
        "git": version_of(["git", "--version"]),
    }
    pkg = Path(doctor.get("package") or ".").parent
    g = subprocess.run(["git", "-C", str(pkg), "log", "-1", "--format=%H"], capture_output=True, text=True)
    if g.returncode == 0:   # an editable install: its checkout's commit, and whether it has changes
        dirty = subprocess.run(["git", "-C", str(pkg), "status", "--short", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.split("\n")
        meta["slopfast"]["checkout"] = {"path": str(pkg), "commit": g.stdout.strip(),
                                        "modified_files": [l[3:] for l in dirty if l.strip()]}
    log(json.dumps(meta))
    md_parts = [f"## Run {meta['date']}{' (--quick)' if args.quick else ''}\n\n"
                f"`python bench/bench_aggregate.py {' '.join(map(shlex.quote, sys.argv[1:]))}`; "
                f"{meta['machine']['nproc']} CPUs ({meta['machine']['cpu']}), {meta['machine']['mem_total']}, "
                f"{meta['machine']['kernel']}; slopfast {meta['slopfast']['version']} "
                f"({meta['slopfast']['native_version']}); "
                f"{meta['files_to_prompt']['version']}; repomix {meta['repomix']['version']} "
                f"(node {meta['repomix']['node']}); {meta['git']}; slopfast at {args.slopfast}"
                + (f" (checkout {co['path']} at {co['commit'][:7]}"
                   + (f" with {len(co['modified_files'])} modified files" if co["modified_files"] else "") + ")"
                   if (co := meta["slopfast"].get("checkout")) else "") + ".\n"]
    results = []
    t_start = time.perf_counter()
    for name in names:
        c = corpus(name, args)
        cmds = commands_for(c, args, work)
        rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS[name])
        c["loadavg_before"] = tuple(round(x, 2) for x in os.getloadavg())
        c["rounds"], c["warmup"] = rounds, args.warmup
        log(f"== {c['label']}: {c['n_files']} files, {c['bytes'] / 1e6:.1f} MB, {len(cmds)} commands, "
            f"{args.warmup} + {rounds} rounds, load {c['loadavg_before']}")
        runs: dict[str, list[dict]] = {cmd["label"]: [] for cmd in cmds}
        failed: dict[str, dict] = {}
        t0 = time.perf_counter()
        for rnd in range(args.warmup + rounds):
            k = rnd % len(cmds)
            for cmd in cmds[k:] + cmds[:k]:
                if cmd["label"] in failed:
                    continue
                if args.quick and rnd < args.warmup and cmd["kind"] == "repomix":
                    continue    # --quick is a smoke test: repomix (seconds a run) gets no warm-up
                r = run_once(cmd, base_env)
                # slopfast's exit 1 is "some files unreadable, output still written";
                # an uncaught exception exits 1 too, with a traceback and no document
                ok = Path(cmd["out"]).exists() and (r["rc"] == 0 or (
                    cmd["kind"] == "slopfast" and r["rc"] == 1 and "Traceback" not in r["stderr"]))
                if not ok:
                    log(f"  {cmd['label']} failed ({r['rc']}): {r['stderr'][-500:]}")
                    failed[cmd["label"]] = r
                    continue
                if rnd >= args.warmup:
                    runs[cmd["label"]].append(r)
            log(f"  round {rnd + 1}/{args.warmup + rounds} done, {time.perf_counter() - t0:.0f} s")
        rows = []
        for cmd in cmds:
            label = cmd["label"]
            if label in failed:
                f = failed[label]
                rows.append({"label": label, "argv": cmd["argv"], "env": cmd["env"], "failed": True,
                             "rc": f["rc"], "stderr": f["stderr"]})
                continue
            rs = runs[label]
            times = [r["s"] for r in rs]
            out = Path(cmd["out"])   # the last round's output
            inc = included_files(out, cmd["kind"], c) if out.exists() else set()
            missing = sorted(set(c["files"]) - inc)
            h = hashlib.sha256()
            if out.exists():
                with open(out, "rb") as f:
                    while chunk := f.read(1 << 22):
                        h.update(chunk)
            rows.append({
                "label": label, "group": cmd["group"], "kind": cmd["kind"],
                "command": " ".join([*(f"{k}={v}" for k, v in cmd["env"].items()),
                                     *map(shlex.quote, cmd["argv"])]) + (f"   (in {cmd['cwd']})" if cmd["kind"] == "floor" and c["git"] else ""),
                "env": cmd["env"], "times_s": [round(t, 4) for t in times],
                "best_s": min(times), "median_s": statistics.median(times),
                "peak_rss_mib": max(r["rss_kib"] for r in rs) / 1024,
                "rss_mib_runs": [round(r["rss_kib"] / 1024, 1) for r in rs],
                "rc": rs[-1]["rc"], "stderr": rs[-1]["stderr"][-1000:],
                "out_bytes": out.stat().st_size if out.exists() else 0,
                "out_files": len(inc), "missing": len(missing), "missing_examples": missing[:20],
                "missing_hash": hashlib.sha256("\0".join(missing).encode("utf-8", "surrogateescape")).hexdigest()[:16],
                "out_sha256": h.hexdigest(),
            })
            if out.exists():
                out.unlink()
            log(f"  {label:<20} best {min(times):7.3f} s  median {statistics.median(times):7.3f} s  "
                f"rss {rows[-1]['peak_rss_mib']:7.1f} MiB  {rows[-1]['out_files']:6} files  "
                f"{rows[-1]['out_bytes'] / 1e6:8.2f} MB  rc {rows[-1]['rc']}")
        # slopfast's own account of the run (skipped files and why), one extra run
        auto = next(cmd for cmd in cmds if cmd["label"] == "slopfast auto")
        v = run_once({**auto, "argv": [*auto["argv"], "-v"]}, base_env)
        c["verbose_line"] = v["stderr"].strip().splitlines()[-1] if v["stderr"].strip() else ""
        Path(auto["out"]).unlink(missing_ok=True)
        c["loadavg_after"] = tuple(round(x, 2) for x in os.getloadavg())
        c["elapsed_s"] = round(time.perf_counter() - t0, 1)
        files = c.pop("files")
        results.append({"corpus": c, "rows": rows})
        part = corpus_markdown({**c, "files": files}, rows)
        md_parts.append(part)
        print(part, flush=True) if args.json != "-" else log(part)
    md_parts.append(summary_markdown(results))
    meta["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    md_parts.append(f"Harness wall time: {meta['elapsed_s']:.0f} s.\n")
    report = "\n".join(md_parts)
    if args.json == "-":
        log(md_parts[-2])
        json.dump({"meta": meta, "results": results}, sys.stdout, indent=1)
        print()
    else:
        print(md_parts[-2], flush=True)
        print(md_parts[-1], flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    if args.md:
        Path(args.md).write_text(report)


if __name__ == "__main__":
    main()
