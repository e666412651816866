"""The exceptions slopfast raises."""


class SlopfastError(Exception):
    """Base class of every slopfast error."""


class PipelineError(SlopfastError):
    """The native pipeline answered with an error: `code` and the C message."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class BackendUnavailable(SlopfastError):
    """A forced backend cannot run (SLOPFAST_BACKEND=native without the library)."""


class InputError(SlopfastError, OSError):
    """An input file is missing or unreadable; `errno` and `filename` as in OSError."""

    def __init__(self, errno: int, strerror: str, filename):
        OSError.__init__(self, errno, strerror, filename)
