"""Files of the cache directory, written whole: under a temporary name beside
them, then renamed over them, so a reader (another process, too) sees the old
file or the new one, never part of one. A cache that cannot be written is no
error: the next run makes it again."""
from __future__ import annotations

import os
import threading


def write_whole(path: str, *chunks: bytes | memoryview) -> bool:
    """Write the chunks, one after the other, as the file at path: False when
    that cannot be done (the temporary file is gone then too)."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
