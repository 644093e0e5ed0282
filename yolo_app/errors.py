"""The two kinds of failure a user can see, and the exit codes they map to."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class YoloAppError(Exception):
    """Base of every error the app reports as one line (no traceback)."""

    exit_code = EXIT_FAILURE


def describe(exc: BaseException) -> str:
    """One line for any exception: our own errors as they are, others as ``Type: first line``."""
    if isinstance(exc, YoloAppError):
        return str(exc)
    detail = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class UserError(YoloAppError):
    """Bad input: a path, a value or a file the user gave. Exit code 2."""

    exit_code = EXIT_USAGE


class RuntimeFailure(YoloAppError):
    """Something failed while running on good input (a device, a disk, a codec). Exit code 1."""

    exit_code = EXIT_FAILURE
