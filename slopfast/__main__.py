"""`python -m slopfast` runs the `slopfast` command (slopfast.cli)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
