"""Pure-Python implementations of every slopfast op (installed as slopfast.fallbacks).

Each module gives byte-for-byte the output of the matching C op in lib/."""
