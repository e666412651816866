"""The exceptions slopfast raises."""


class SlopfastError(Exception):
    """Base class of every slopfast error."""


class PipelineError(SlopfastError):
    """The native pipeline answered with an error: `code`, the C message, and
    what its error record names: `op`, `input` (the index of the input it is
    about, or None) and `detail` (the message without the op and path)."""

    def __init__(self, message: str, code: int = 0, *, op: str = "", input: int | None = None,
                 detail: str | None = None):
        super().__init__(message)
        self.code = code
        self.op = op
        self.input = input
        self.detail = message if detail is None else detail


class BackendUnavailable(SlopfastError):
    """A forced backend cannot run (SLOPFAST_BACKEND=native without the library)."""


class InputError(SlopfastError, OSError):
    """An input file is missing or unreadable; `errno` and `filename` as in OSError."""

    def __init__(self, errno: int, strerror: str, filename):
        OSError.__init__(self, errno, strerror, filename)
