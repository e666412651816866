"""What the command pays on every run: `import slopfast.cli` (and `import
slopfast`) load no module that only some calls need. Figures with
`python -X importtime` are in docs/benchmarks.md; this checks the rule."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import subprocess_env

# each is imported where it is used: ctypes when the library loads, subprocess
# for the subprocess transport, json/hashlib/platform/tempfile for wisdom,
# msgspec, markdown-it-py and tiktoken by their ops (pathlib, loaded only for paths shown
# to people, is not checked: an editable install's import hook loads it first)
LATER = ["ctypes", "subprocess", "json", "hashlib", "platform", "tempfile", "msgspec", "markdown_it", "tiktoken"]


@pytest.mark.parametrize("module", ["slopfast", "slopfast.cli"])
def test_import_loads_nothing_it_does_not_need(module):
    code = f"import sys; import {module}; print(' '.join(m for m in {LATER!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


def test_import_from_the_repository_root_finds_the_fallbacks():
    """The checkout's slopfast/ shadows an install when Python starts in the
    repository root; its fallbacks/ (beside it) must still be found."""
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    code = "import slopfast, slopfast.fallbacks.md_outline as m; print(slopfast.__file__, m.__file__)"
    env = {k: v for k, v in subprocess_env().items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert out.returncode == 0, out.stderr
    package, fallback = out.stdout.split()
    assert package == str(root / "slopfast" / "__init__.py") and fallback == str(root / "fallbacks" / "md_outline.py")
