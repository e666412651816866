"""The binding to libchunks: ctypes in-process, or the standalone binary.

The library is found inside the package (or at SLOPFAST_LIB) and loaded on
first use, never at import. SLOPFAST_TRANSPORT=subprocess runs the
standalone pipeline binary per request instead (same wire format; a crash
in native code then becomes an error here, not a dead interpreter).
"""
from __future__ import annotations

import functools
import os
import struct
import sys
import threading

from . import _env, wire
from ._cache_file import write_whole
from .errors import BackendUnavailable, PipelineError

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Sequence

# ctypes, subprocess and pathlib load on first use (their import costs more
# than the command's whole start-up budget allows)
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def library_filename() -> str:
    if sys.platform == "win32":
        return "libchunks.dll"
    if sys.platform == "darwin":
        return "libchunks.dylib"
    return "libchunks.so"


def _library_file() -> str:
    return os.environ.get("SLOPFAST_LIB") or os.path.join(PACKAGE_DIR, library_filename())


def _binary_file() -> str:
    exe = "slopfast-pipeline.exe" if sys.platform == "win32" else "slopfast-pipeline"
    return os.environ.get("SLOPFAST_PIPELINE") or os.path.join(PACKAGE_DIR, exe)


def library_path() -> Path:
    from pathlib import Path
    return Path(_library_file())


def binary_path() -> Path:
    from pathlib import Path
    return Path(_binary_file())


_transport_env = _env.reader("SLOPFAST_TRANSPORT")


def transport() -> str:
    raw = _transport_env()
    if raw is None:
        return "inprocess"
    value = raw.strip().lower() or "inprocess"
    if value not in ("inprocess", "subprocess"):
        raise BackendUnavailable(f"SLOPFAST_TRANSPORT={value!r}: expected 'inprocess' or 'subprocess'")
    return value


ctypes = None   # bound by the first _Library


@functools.lru_cache(maxsize=None)
def _abi_types():
    """The ctypes structures of lib/pipeline.h: `Response`'s ABI prefix, and
    `PipelineOpts`, passed by value to pipeline_run_opts."""
    import ctypes

    class Response(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_uint64), ("code", ctypes.c_int32),
                    ("message", ctypes.c_void_p), ("message_len", ctypes.c_uint64)]

    class PipelineOpts(ctypes.Structure):
        _fields_ = [("memory_limit", ctypes.c_uint64), ("fail_after", ctypes.c_uint64)]

    return ctypes, Response, PipelineOpts


class _Library:
    def __init__(self, path):
        global ctypes
        ctypes, _Response, self.Opts = _abi_types()
        lib = ctypes.CDLL(str(path))
        self.path = path
        self.run = lib.pipeline_run
        self.run.argtypes = [ctypes.c_char_p, ctypes.c_uint64]
        self.run.restype = ctypes.POINTER(_Response)
        self.run_opts = lib.pipeline_run_opts
        self.run_opts.argtypes = [ctypes.c_char_p, ctypes.c_uint64, self.Opts]
        self.run_opts.restype = ctypes.POINTER(_Response)
        self.free = lib.pipeline_free
        self.free.argtypes = [ctypes.POINTER(_Response)]
        self.free.restype = None
        # The hot path: per-thread contexts that keep their memory between
        # calls, on plain addresses (the Response header is read in one copy).
        self.context_new = lib.pipeline_context_new
        self.context_new.argtypes = []
        self.context_new.restype = ctypes.c_void_p
        self.context_free = lib.pipeline_context_free
        self.context_free.argtypes = [ctypes.c_void_p]
        self.context_free.restype = None
        self.run_in = lib.pipeline_run_in
        self.run_in.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64]
        self.run_in.restype = ctypes.c_void_p
        self.context_buffer = lib.pipeline_context_buffer
        self.context_buffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
        self.context_buffer.restype = None
        self.context_trim = lib.pipeline_context_trim
        self.context_trim.argtypes = [ctypes.c_void_p]
        self.context_trim.restype = None
        # the tokens op's vocabularies, built once, attached to each thread's context
        self.vocab_new = lib.tokens_vocab_new
        self.vocab_new.argtypes = [ctypes.c_char_p, ctypes.c_uint64]
        self.vocab_new.restype = ctypes.c_void_p
        self.vocab_free = lib.tokens_vocab_free
        self.vocab_free.argtypes = [ctypes.c_void_p]
        self.vocab_free.restype = None
        self.vocab_image = lib.tokens_vocab_image
        self.vocab_image.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
        self.vocab_image.restype = ctypes.c_uint64
        self.vocab_adopt = lib.tokens_vocab_adopt
        self.vocab_adopt.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        self.vocab_adopt.restype = ctypes.c_void_p
        self.context_attach = lib.pipeline_context_attach
        self.context_attach.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.context_attach.restype = ctypes.c_int32
        self.vocabs: dict[str, int] = {}
        self.images: list = []   # the mapped images adopted vocabularies read: for the life of the library
        lib.pipeline_version.argtypes = []
        lib.pipeline_version.restype = ctypes.c_char_p
        self.version = lib.pipeline_version().decode()


_lock = threading.Lock()
_library: _Library | None = None
_load_error: str | None = None


def _load() -> _Library | None:
    global _library, _load_error
    if _library is not None or _load_error is not None:
        return _library
    with _lock:
        if _library is None and _load_error is None:
            path = _library_file()
            if not os.path.exists(path):
                _load_error = f"native library not found at {path} (installed with SLOPFAST_NO_NATIVE=1, or not built)"
            else:
                try:
                    _library = _Library(path)
                except (OSError, AttributeError) as exc:
                    _load_error = f"cannot load native library {path}: {exc}"
    return _library


def available() -> bool:
    """True when the native path can run (library loaded, or binary present for subprocess)."""
    if transport() == "subprocess":
        return os.path.exists(_binary_file())
    return _load() is not None


def load_error() -> str | None:
    """Why the native path cannot run, or None."""
    if transport() == "subprocess":
        return None if os.path.exists(_binary_file()) else f"pipeline binary not found at {_binary_file()}"
    _load()
    return _load_error


def version() -> str | None:
    """`pipeline_version()`: "slopfast-libchunks VERSION build ID", or None."""
    lib = _load()
    return lib.version if lib else None


def build_id() -> str | None:
    v = version()
    return v.rsplit(" ", 1)[-1] if v else None


def run_blob(request: bytes) -> wire.Response:
    """Send one encoded request (v1 or v3), return the decoded response."""
    if transport() == "subprocess":
        return _run_subprocess(request)
    lib = _load()
    if lib is None:
        raise BackendUnavailable(_load_error or "native library unavailable")
    context = _thread.context
    if context is None or context.lib is not lib:
        context = _thread.context = _Context(lib)
    addr = lib.run_in(context.address, request, len(request))
    data, length, code, message, message_len = _HEADER.unpack_from(context.buffer)
    if data == context.inline:   # the answer is in our buffer: no call to read it
        return wire.decode_response(context.view[_HEADER.size : _HEADER.size + length])
    response = _read_response(addr)
    if length + len(request) > _TRIM_AFTER:
        lib.context_trim(context.address)
    return response


# Answers up to this size come back in the context's buffer; after a call
# larger than _TRIM_AFTER the context lets its memory go down to the 64 MiB
# it keeps between calls (lib/pipeline.h).
_BUFFER_BYTES = 1 << 16
_TRIM_AFTER = 8 << 20


class _Context:
    """A `PipelineContext` for one thread: its memory stays mapped between
    calls, so a call the size of the last one takes no fresh pages (page
    faults were most of a large call's time), and it answers small calls
    into a buffer of ours. Freed with its thread."""

    __slots__ = ("lib", "address", "buffer", "view", "inline", "attached")

    def __init__(self, lib: _Library):
        self.lib = lib
        self.address = lib.context_new()
        if not self.address:
            raise MemoryError("libchunks: cannot allocate a pipeline context")
        self.buffer = ctypes.create_string_buffer(_BUFFER_BYTES)
        self.view = memoryview(self.buffer).cast("B")
        self.inline = ctypes.addressof(self.buffer) + _HEADER.size
        self.attached: dict[str, int] = {}
        lib.context_buffer(self.address, self.buffer, _BUFFER_BYTES)

    def __del__(self):
        self.lib.context_free(self.address)


class _ThreadState(threading.local):
    context: _Context | None = None


_thread = _ThreadState()


def vocab_index(key: str, ranks: Callable[[], bytes], image: str | None = None) -> int | None:
    """The index by which this thread's requests name the tokens op's
    vocabulary `key` (its `vocab` parameter): made once per process and
    attached to this thread's context on first use. Made from the file
    `image` when it holds one (tokens_vocab_adopt: about 1 ms), else built
    from `ranks()` (the `ranks` parameter's value; tokens_vocab_new: about
    15 ms) and, with `image`, kept there for the next process. None when the
    transport is not in-process or the vocabulary cannot be made or
    attached: then send the ranks in the request."""
    if transport() == "subprocess":
        return None
    lib = _load()
    if lib is None:
        return None
    context = _thread.context
    if context is None or context.lib is not lib:
        context = _thread.context = _Context(lib)
    index = context.attached.get(key)
    if index is not None:
        return index
    with _lock:
        vocab = lib.vocabs.get(key)
        if vocab is None:
            vocab = _adopt_image(lib, image) if image else None
            if not vocab:
                blob = ranks()
                vocab = lib.vocab_new(blob, len(blob))
                if not vocab:
                    return None
                if image:
                    _write_image(lib, vocab, image)
            lib.vocabs[key] = vocab   # kept for the life of the library: contexts of any thread may use it
    index = lib.context_attach(context.address, vocab)
    if index < 0:
        return None
    context.attached[key] = index
    return index


def _adopt_image(lib: _Library, path: str) -> int | None:
    """The vocabulary of the image at path, mapped (its pages come from the
    page cache, where reading them into fresh memory costs a fault each),
    or None. Images are replaced whole (_write_image), never written in
    place, so a mapping keeps the file it was made from."""
    import mmap
    try:
        with open(path, "rb") as f:
            image = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)   # private: writable for ctypes, never written
    except (OSError, ValueError):   # ValueError: an empty file
        return None
    view = (ctypes.c_char * len(image)).from_buffer(image)
    vocab = lib.vocab_adopt(ctypes.addressof(view), len(image))
    if not vocab:
        del view
        image.close()
        return None
    lib.images.append((image, view))
    return vocab


def _write_image(lib: _Library, vocab: int, path: str) -> None:
    """Keep vocab's image at path (whole, by a rename); a cache that cannot
    be written is no error."""
    size = lib.vocab_image(vocab, None, 0)
    buffer = ctypes.create_string_buffer(size)
    if lib.vocab_image(vocab, buffer, size) != size:
        return
    write_whole(path, memoryview(buffer).cast("B"))


def run_blob_opts(request: bytes, memory_limit: int = 0, fail_after: int = 0, lib: _Library | None = None) -> wire.Response:
    """Test hook: `pipeline_run_opts` in-process, with a cap on the bytes the
    call may take and (in SLOPFAST_TEST_HOOKS builds) a forced allocation
    failure; `lib` defaults to the package's library."""
    lib = lib or _load()
    if lib is None:
        raise BackendUnavailable(_load_error or "native library unavailable")
    resp = lib.run_opts(request, len(request), lib.Opts(memory_limit, fail_after))
    try:
        return _read_response(ctypes.addressof(resp.contents))
    finally:
        lib.free(resp)


_HEADER = struct.Struct("<QQi4xQQ")   # Response: data, len, code, message, message_len
# Below this size one copy of the whole response and slices of it cost less
# than copying each part straight out of C memory through a memoryview.
_SMALL_RESPONSE = 1 << 16


def _read_response(addr: int) -> wire.Response:
    """Decode the `Response *` at addr with the one reader (not freed here).
    Only `len` 0 has no blob: the static out-of-memory response."""
    data, length, code, message, message_len = _HEADER.unpack(ctypes.string_at(addr, _HEADER.size))
    if not length:
        return wire.Response(code, ctypes.string_at(message, message_len).decode("utf-8", "replace"), [])
    if length <= _SMALL_RESPONSE:
        return wire.decode_response(ctypes.string_at(data, length))
    return wire.decode_response(memoryview((ctypes.c_char * length).from_address(data)).cast("B"))


def _died(returncode: int, stderr: bytes) -> str:
    """The message for a pipeline process that ended without a response."""
    import signal

    if returncode < 0:
        try:
            name = f", {signal.Signals(-returncode).name}"
        except ValueError:
            name = ""
        how = f"signal {-returncode}{name}"
    else:
        how = f"exit status {returncode}"
    detail = stderr.decode("utf-8", "replace").strip()
    return f"native pipeline process died ({how})" + (f": {detail[-2000:]}" if detail else "")


def _run_subprocess(request: bytes) -> wire.Response:
    import subprocess

    exe = _binary_file()
    if not os.path.exists(exe):
        raise BackendUnavailable(f"pipeline binary not found at {exe}")
    proc = subprocess.run([exe], input=request, capture_output=True)
    if proc.returncode < 0 or proc.returncode > 1:
        raise PipelineError(_died(proc.returncode, proc.stderr), code=-1)
    if not proc.stdout:
        # no response to decode (out of memory before one could be encoded)
        message = proc.stderr.decode("utf-8", "replace").strip().removeprefix("slopfast-pipeline: ")
        return wire.Response(wire.CODE_NO_MEMORY, message or "out of memory", [])
    return wire.decode_response(proc.stdout)


def release() -> None:
    """Let this thread's context give back the memory of its last call
    (which keeps up to 64 MiB for the next one): for a call made once, such
    as the walk, whose memory is several times its answer."""
    context = _thread.context
    if context is not None:
        context.lib.context_trim(context.address)


def run(ops: Sequence[wire.Op], inputs: Sequence[wire.Input]) -> list[bytes]:
    """Run ops over inputs natively; the response parts, or PipelineError."""
    response = run_blob(wire.encode_request(ops, inputs))
    if response.code:
        wire.raise_for(response)
    return response.parts
