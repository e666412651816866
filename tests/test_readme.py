"""The README's Python example runs as written (in a directory holding the
files it names), and the outline it shows is what markdown_outline returns."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import subprocess_env

README = Path(__file__).resolve().parent.parent / "README.md"


def example() -> str:
    use = README.read_text(encoding="utf-8").split("\n## Use\n", 1)[1]
    return re.search(r"```python\n(.*?)```", use, re.S).group(1)


def test_the_python_example_runs(tmp_path):
    (tmp_path / "app.py").write_text("def main():\n    return helper()\n\n\ndef helper():\n    return 1\n")
    (tmp_path / "README.md").write_text("# Demo\n\n## Install\n\ntext\n")
    proc = subprocess.run([sys.executable, "-c", example()], capture_output=True, text=True,
                          cwd=tmp_path, env=subprocess_env(SLOPFAST_WISDOM="off"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "- Demo\n  - Install" in proc.stdout and "def main():\n    return helper()" in proc.stdout


def test_the_outline_shown_is_the_repr():
    import slopfast

    (line,) = [line for line in example().splitlines() if line.startswith("slopfast.markdown_outline(")]
    call, shown = line.rsplit("#", 1)   # the comment after the call
    assert repr(eval(call, {"slopfast": slopfast})) == shown.strip()
