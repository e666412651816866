"""Cross builds from this machine: build.zig's, and the published wheels
(tools/build_wheels.py): each wheel's tag, its binaries' format, architecture,
exports and lack of debug info (parsed with lief, not loaded), pip choosing
it for its platform, auditwheel's verdict on the Linux ones, and the aarch64
Linux and Windows pipeline binaries run under qemu-user and wine against the
host's on every wire vector and on a file with a non-ASCII name."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

lief = pytest.importorskip("lief", reason="lief is part of the [test] extra")

import packaging_builds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WIRE = ROOT / "tests" / "data" / "wire"
EXPORTS = {"pipeline_run", "pipeline_free", "pipeline_version", "pipeline_run_opts",
           "pipeline_context_new", "pipeline_run_in", "pipeline_context_free"}
ARCH = lief.Header.ARCHITECTURES
# wheel platform tag -> (binary format, architecture, library, pipeline binary, a platform pip installs it on)
WHEELS = {
    "manylinux_2_17_x86_64.manylinux2014_x86_64":
        (lief.Binary.FORMATS.ELF, ARCH.X86_64, "libchunks.so", "slopfast-pipeline", "manylinux2014_x86_64"),
    "manylinux_2_17_aarch64.manylinux2014_aarch64":
        (lief.Binary.FORMATS.ELF, ARCH.ARM64, "libchunks.so", "slopfast-pipeline", "manylinux2014_aarch64"),
    "macosx_11_0_x86_64":
        (lief.Binary.FORMATS.MACHO, ARCH.X86_64, "libchunks.dylib", "slopfast-pipeline", "macosx_13_0_x86_64"),
    "macosx_11_0_arm64":
        (lief.Binary.FORMATS.MACHO, ARCH.ARM64, "libchunks.dylib", "slopfast-pipeline", "macosx_11_0_arm64"),
    "win_amd64":
        (lief.Binary.FORMATS.PE, ARCH.X86_64, "libchunks.dll", "slopfast-pipeline.exe", "win_amd64"),
}
packaging_mark = pytest.mark.packaging


def missing(what: str) -> None:
    """A tool a test runs is not here: CI installs it, so there it is a failure."""
    (pytest.fail if os.environ.get("CI") else pytest.skip)(f"needs {what} (.ci/run installs it)")


def zig_build(target: str, prefix: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ziglang", "build", f"-Dtarget={target}", "--prefix", str(prefix)],
        cwd=ROOT, check=True, capture_output=True, timeout=900,
    )


def exported_names(path: Path) -> set[str]:
    binary = lief.parse(str(path))
    assert binary is not None, f"lief cannot parse {path}"
    return {getattr(f, "name", str(f)).lstrip("_") for f in binary.exported_functions}


@pytest.mark.parametrize(
    "target, library, fmt",
    [
        ("x86_64-windows-gnu", "bin/libchunks.dll", lief.Binary.FORMATS.PE),
        ("aarch64-macos", "lib/libchunks.dylib", lief.Binary.FORMATS.MACHO),
        ("x86_64-linux-gnu", "lib/libchunks.so", lief.Binary.FORMATS.ELF),
    ],
)
def test_cross_target_exports_pipeline_run(tmp_path, target, library, fmt):
    zig_build(target, tmp_path)
    path = tmp_path / library
    assert path.exists(), sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert lief.parse(str(path)).format == fmt
    assert EXPORTS <= exported_names(path)


# ---- the published wheels ------------------------------------------------------

@pytest.fixture(scope="module")
def wheels() -> dict[str, Path]:
    return packaging_builds.wheels()


def unpacked(wheel: Path, dest: Path) -> Path:
    """The wheel's slopfast/, its files' modes as an installer sets them."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, dest))
            if info.external_attr >> 16:
                path.chmod(info.external_attr >> 16 & 0o777)
    return dest / "slopfast"


def debug_info(binary) -> list[str]:
    """What of a debug build is left in a parsed binary."""
    left = [s.name for s in binary.sections if s.name.startswith((".debug", "__debug", ".zdebug"))]
    if binary.format == lief.Binary.FORMATS.ELF:
        left += [s.name for s in binary.sections if s.name == ".symtab"]
    elif binary.format == lief.Binary.FORMATS.MACHO:
        left += [seg.name for seg in binary.segments if seg.name == "__DWARF"]
        left += [f"stab {s.name}" for s in binary.symbols if s.raw_type & 0xE0][:3]
    else:
        left += [str(d.type) for d in binary.debug if d.type == lief.PE.Debug.TYPES.CODEVIEW]
    return left


@packaging_mark
def test_the_command_builds_one_wheel_per_platform(wheels):
    assert set(wheels) == set(WHEELS)


@packaging_mark
@pytest.mark.parametrize("tag", list(WHEELS))
def test_wheel_tag_and_binaries(wheels, tag, tmp_path):
    from packaging.tags import Tag
    from packaging.utils import parse_wheel_filename

    fmt, arch, library, exe, _ = WHEELS[tag]
    wheel = wheels[tag]
    assert parse_wheel_filename(wheel.name)[3] == {Tag("py3", "none", plat) for plat in tag.split(".")}
    wheel_file = zipfile.ZipFile(wheel).read("slopfast-0.1.0.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false" in wheel_file
    assert sorted(line for line in wheel_file.splitlines() if line.startswith("Tag:")) == \
        sorted(f"Tag: py3-none-{plat}" for plat in tag.split("."))

    package = unpacked(wheel, tmp_path)
    built = sorted(p.name for p in package.iterdir() if p.name.startswith(("libchunks", "slopfast-pipeline")))
    assert built == sorted([library, exe])
    assert (package / "fallbacks" / "aggregate.py").exists()
    for name in (library, exe):
        binary = lief.parse(str(package / name))
        assert binary is not None and binary.format == fmt, name
        assert binary.abstract.header.architecture == arch, name
        assert debug_info(binary) == [], f"{name} ships debug info"
        assert b"build/temp" not in (package / name).read_bytes(), f"{name} names the build directory"
        if fmt == lief.Binary.FORMATS.MACHO:   # the tag's macOS version is the binary's minimum
            assert binary.build_version.minos[:2] == [int(v) for v in tag.split("_")[1:3]], name
    assert EXPORTS <= exported_names(package / library)
    if fmt != lief.Binary.FORMATS.PE:   # the subprocess transport runs it
        assert (package / exe).stat().st_mode & 0o111, f"{exe} is not executable"


@packaging_mark
@pytest.mark.parametrize("tag", list(WHEELS))
@pytest.mark.parametrize("python", ["3.10", "3.13"])
def test_pip_picks_the_wheel_for_its_platform(wheels, tag, python, tmp_path):
    """pip, told the target platform and Python, chooses this wheel among all five."""
    report = tmp_path / "report.json"
    proc = subprocess.run(
        # --target: pip 23.2 (the one Python 3.11.7 brings) takes --platform only with it; --dry-run installs nothing
        [sys.executable, "-m", "pip", "install", "--dry-run", "--target", str(tmp_path / "target"), "--ignore-installed",
         "--quiet", "--no-deps", "--no-index",
         "--find-links", str(next(iter(wheels.values())).parent), "--only-binary=:all:",
         "--platform", WHEELS[tag][4], "--python-version", python, "--implementation", "cp",
         "--report", str(report), "slopfast"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (chosen,) = json.loads(report.read_text())["install"]
    assert chosen["download_info"]["url"].rsplit("/", 1)[-1] == wheels[tag].name


@packaging_mark
@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_auditwheel_says_manylinux2014(wheels, arch):
    pytest.importorskip("auditwheel", reason="auditwheel is part of the [test] extra")
    wheel = wheels[f"manylinux_2_17_{arch}.manylinux2014_{arch}"]
    proc = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert f'is consistent with the following platform tag: "manylinux_2_17_{arch}"' in text, proc.stdout


# ---- cross-built pipeline binaries run ---------------------------------------------

NON_ASCII = "ünïcødé-名前.txt"


def requests(tmp: Path) -> list[tuple[str, bytes, Path]]:
    """(name, request, working directory): every wire vector (text and
    binary, whatever the binary version), and requests
    naming a file with a non-ASCII name (created in `tmp`)."""
    vectors = [p for p in [*WIRE.glob("*.v1.txt"), *WIRE.glob("*.v[0-9]*.bin")] if ".response." not in p.name]
    assert len(vectors) > 20, "the wire vectors are missing"
    out = [(p.name, p.read_bytes(), WIRE) for p in sorted(vectors)]
    (tmp / "files").mkdir()
    (tmp / "files" / NON_ASCII).write_text("# Ünïcødé\n\nnon-ASCII name, read by path\n", encoding="utf-8")
    for op in ("echo", "aggregate"):
        request = f"slopfast-request 1\nop {op}\ninput file files/{NON_ASCII}\nend\n".encode()
        out.append((f"{op} {NON_ASCII}", request, tmp))
    return out


def run_all(command: list[str], reqs, env=None) -> dict[str, tuple[int, bytes]]:
    """{name: (exit status, stdout)}. Files, not pipes, for stdin and stdout:
    the helper processes wine starts inherit them and outlive the call."""
    out = {}
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout:
        for name, request, cwd in reqs:
            for f in (stdin, stdout):
                f.seek(0)
                f.truncate()
            stdin.write(request)
            stdin.seek(0)
            proc = subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL,
                                  cwd=cwd, env=env, timeout=120)
            stdout.seek(0)
            out[name] = (proc.returncode, stdout.read())
    return out


@pytest.fixture(scope="module")
def host_binary(wheels, tmp_path_factory) -> Path:
    """The pipeline binary of the x86_64 Linux wheel: the same sources and
    flags as the cross builds, run natively."""
    if not (sys.platform.startswith("linux") and platform.machine() == "x86_64"):
        pytest.skip("the host comparison runs on x86_64 Linux")
    package = unpacked(wheels["manylinux_2_17_x86_64.manylinux2014_x86_64"], tmp_path_factory.mktemp("host"))
    return package / "slopfast-pipeline"


def assert_same_as_host(host: Path, command: list[str], tmp: Path, env=None) -> None:
    reqs = requests(tmp)
    want = run_all([str(host)], reqs)
    got = run_all(command, reqs, env)
    echo = want[f"echo {NON_ASCII}"]
    assert echo[0] == 0 and b"non-ASCII name, read by path" in echo[1], echo   # the host read it
    differ = {name: (want[name], got[name]) for name in want if got[name] != want[name]}
    assert not differ, f"{len(differ)} of {len(want)} requests answered differently: " + \
        "; ".join(f"{name}: host {w!r:.200} vs cross {g!r:.200}" for name, (w, g) in list(differ.items())[:3])


@packaging_mark
def test_aarch64_linux_binary_under_qemu(wheels, host_binary, tmp_path):
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    sysroot = Path("/usr/aarch64-linux-gnu")   # Debian's libc6-arm64-cross
    if not qemu or not (sysroot / "lib" / "ld-linux-aarch64.so.1").exists():
        missing("qemu-user-static and libc6-arm64-cross")
    package = unpacked(wheels["manylinux_2_17_aarch64.manylinux2014_aarch64"], tmp_path / "wheel")
    assert_same_as_host(host_binary, [qemu, "-L", str(sysroot), str(package / "slopfast-pipeline")], tmp_path)


@pytest.fixture
def wine(tmp_path_factory):
    """wine with a prefix of its own, its server kept up for the test's runs."""
    wine = shutil.which("wine64") or shutil.which("wine") or shutil.which("/usr/lib/wine/wine64")
    if not wine:
        missing("wine64")
    env = {**os.environ, "WINEPREFIX": str(tmp_path_factory.mktemp("wine")), "WINEDEBUG": "-all",
           "WINEDLLOVERRIDES": "mscoree,mshtml="}   # no Mono or Gecko prompts
    server = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
    subprocess.run([wine, "wineboot", "--init"], env=env, check=True, capture_output=True, timeout=600)
    subprocess.run([server, "-w"], env=env, timeout=600)   # the new prefix is set up
    subprocess.run([server, "-p"], env=env, check=True, timeout=60)   # then one server for every run
    try:
        yield wine, env
    finally:
        subprocess.run([server, "-k"], env=env, timeout=60)


@packaging_mark
def test_windows_binary_under_wine(wheels, host_binary, wine, tmp_path):
    command, env = wine
    package = unpacked(wheels["win_amd64"], tmp_path / "wheel")
    assert_same_as_host(host_binary, [command, str(package / "slopfast-pipeline.exe")], tmp_path, env)


# ---- the Windows walk (lib/walk.c's Win32 calls) under wine ----------------------

def walk_tree(root: Path) -> None:
    """A work tree with what the walk decides on: git's rules (nested, negated,
    directory-only, CRLF), a tracked file they match, the tool's own rules,
    hidden names, non-ASCII names, names whose order depends on the '/' of a
    directory, an empty directory and deep nesting."""
    files = {
        ".gitignore": "*.log\r\nbuild/\n!keep.log\n",
        ".slopfastignore": "*.snap\n",
        "a.py": "", "a-b": "", "a/b": "", "a.b/c": "", "b.log": "", "keep.log": "", "tracked.log": "",
        "build/x.c": "", "x.snap": "", ".env": "", "src/.hidden/h.txt": "",
        "src/.gitignore": "*.tmp\n/only-here\n", "src/t.tmp": "", "src/only-here": "", "src/deep/only-here": "",
        f"src/ünï/{NON_ASCII}": "", "src/ünï/Ärger.md": "", "src/ünï/zz.md": "",
        "/".join(f"d{i}" for i in range(12)) + "/leaf.txt": "",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "empty").mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-f", "tracked.log", "a.py"], check=True)


def walk_requests(tmp: Path) -> list[tuple[str, bytes]]:
    """The walk op's requests as slopfast makes them, for the tree `tmp/tree`
    (relative: wine and the host read the same path)."""
    from slopfast import walk as walk_module, walk_native, wire
    from slopfast.walk import WalkOptions
    out = []
    cases = {
        "git": WalkOptions(),
        "hidden": WalkOptions(hidden=True),
        "no git rules": WalkOptions(gitignore=False, default_ignores=False),
        "include and exclude": WalkOptions(include=["*.py", "src/", "*.md"], exclude=["src/deep/", "zz*"]),
    }
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        for name, opts in cases.items():
            inc = walk_module._patterns(opts.include, "--include")
            exc = walk_module._patterns(opts.exclude, "--exclude")
            for path in ("tree", "tree/src"):
                setup = walk_module._setup(path, opts)
                ops, inputs = walk_native.request(path, walk_module.display_prefix(path), opts, inc, exc, setup)
                out.append((f"{name}: {path}", wire.encode_request(ops, inputs)))
        ops, inputs = walk_native.request("missing", "missing/", WalkOptions(gitignore=False), None, None,
                                          walk_module._setup(".", WalkOptions(gitignore=False)))
        out.append(("missing", wire.encode_request(ops, inputs)))
    finally:
        os.chdir(cwd)
    return out


def walk_rows(blob: bytes) -> tuple[list, bytes]:
    from slopfast import wire
    response = wire.decode_response(blob)
    assert response.code == 0, response.message
    return wire.decode_records(response.parts[0]), response.parts[1]


@packaging_mark
def test_windows_walk_under_wine_answers_as_the_host(wheels, host_binary, wine, tmp_path):
    """The Win32 walk (by handle listings, UTF-16 names) gives the POSIX walk's
    rows and files, but for the ignore files' names, joined as os.path.join
    joins them on Windows (a backslash)."""
    command, env = wine
    package = unpacked(wheels["win_amd64"], tmp_path / "wheel")
    walk_tree(tmp_path / "tree")
    reqs = [(name, request, tmp_path) for name, request in walk_requests(tmp_path)]
    want = run_all([str(host_binary)], reqs)
    got = run_all([command, str(package / "slopfast-pipeline.exe")], reqs, env)
    for name, _, _ in reqs:
        assert want[name][0] == 0 and got[name][0] == 0, name
        host_rows, host_files = walk_rows(want[name][1])
        win_rows, win_files = walk_rows(got[name][1])
        assert win_files == host_files, name
        arg = name.split(": ")[-1].encode()     # as given, then joined below it with ntpath.join's separator
        assert win_rows == [(*row[:5], arg + row[5][len(arg):].replace(b"/", b"\\"), row[6])
                            if row[5].startswith(arg + b"/") else row for row in host_rows], name
    files = walk_rows(want["git: tree"][1])[1].split(b"\0")
    assert f"tree/src/ünï/{NON_ASCII}".encode() in files and b"tree/tracked.log" in files and b"tree/b.log" not in files
    assert [f for f in files if f.startswith(b"tree/a")] == [b"tree/a-b", b"tree/a.b/c", b"tree/a.py", b"tree/a/b"]
    assert walk_rows(want["missing"][1])[0][0][1:4] == (3, b"missing", 2)      # unreadable: ENOENT


@packaging_mark
def test_windows_walk_leaves_a_directory_reparse_point_to_the_python_walk(wheels, wine, tmp_path):
    """wine shows a symlink to a directory as a reparse point with neither
    the symlink's nor a junction's tag, as Windows shows a cloud placeholder:
    the op answers "bail", and the Python walk, which enters such a
    directory as os.scandir says, walks it."""
    command, env = wine
    package = unpacked(wheels["win_amd64"], tmp_path / "wheel")
    walk_tree(tmp_path / "tree")
    (tmp_path / "tree" / "src" / "junction").symlink_to("../a.b")
    reqs = [(name, request, tmp_path) for name, request in walk_requests(tmp_path) if name == "git: tree"]
    (status, blob), = run_all([command, str(package / "slopfast-pipeline.exe")], reqs, env).values()
    assert status == 0
    from slopfast import walk_native
    rows, _ = walk_rows(blob)
    assert rows[-1][1:3] == (7, b"a directory reparse point other than a junction") and walk_native.bailed(rows)
