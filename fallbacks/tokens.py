"""Token counts with tiktoken: the reference lib/tokens.c follows, and its oracle.

tiktoken's `Encoding` is built here from rank files slopfast finds itself
(slopfast.tokens.load_ranks), never by tiktoken.get_encoding, which would
download them. The patterns and special tokens are tiktoken's own
(tiktoken_ext/openai_public.py); tests/test_tokens.py checks these copies
against that module. tiktoken is imported on first use, never at import.
"""
from __future__ import annotations

import threading

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Callable, Sequence

# tiktoken_ext/openai_public.py, cl100k_base() and o200k_base()
PATTERNS = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]),
}
SPECIAL_TOKENS = {
    "cl100k_base": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}

_lock = threading.Lock()
_encodings: dict[str, object] = {}


def encoding(name: str, ranks: Callable[[], dict[bytes, int]]):
    """tiktoken's Encoding `name` over the ranks `ranks()` returns (called once)."""
    enc = _encodings.get(name)
    if enc is None:
        with _lock:
            enc = _encodings.get(name)
            if enc is None:
                import tiktoken
                enc = tiktoken.Encoding(name, pat_str=PATTERNS[name], mergeable_ranks=ranks(),
                                        special_tokens=SPECIAL_TOKENS[name])
                _encodings[name] = enc
    return enc


def count(texts: Sequence[str], name: str, ranks: Callable[[], dict[bytes, int]]) -> list[int]:
    """The length of tiktoken's encode_ordinary of each text."""
    enc = encoding(name, ranks)
    return [len(enc.encode_ordinary(text)) for text in texts]
