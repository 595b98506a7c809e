"""What every ``returnflow`` subcommand shares: one-line usage errors, range-checked numbers,
import progress with a total and an estimate of the time left, and running a command so that
every error is one line on stderr with its exit code.

Exit codes: ``0`` done; ``1`` the command ran and failed (a store that cannot be opened, read
or written, a port or source that failed, returns that could not be imported); ``2`` the
command line cannot be used as given (an unknown flag, a bad value, a missing ``--app``, a
``MODULE:CALLABLE`` that cannot be loaded, a database, return or shop that does not exist).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from returnflow.errors import ReturnflowError
from returnflow.importing import ImportProgress

__all__ = [
    "BadArgument",
    "OneLineParser",
    "Progress",
    "at_least",
    "loaded",
    "one_line",
    "run_command",
    "seconds",
]

OK, FAILED, USAGE = 0, 1, 2


class BadArgument(Exception):
    """A command-line argument that cannot be used; the message names the flag and value
    (exit code 2)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    """``text`` on one line: a message from a port or a driver may hold line breaks."""
    return " ".join(str(text).split())


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {minimum}")
        return number

    return parse


def seconds(*, zero: bool) -> Callable[[str], float]:
    """An argparse ``type``: a finite number of seconds, above 0 (or 0 too, with ``zero``)."""

    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not a number of seconds") from None
        if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
            wanted = "0 or more" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"{text!r}: must be a number of seconds, {wanted}")
        return number

    return parse


class Progress:
    """Prints a progress line to ``out`` (stderr) every ``every`` returns or ``seconds``
    seconds: the counts so far, the rate and, when the source said how many returns the
    range holds (``total``), the total and an estimate of the time left."""

    def __init__(self, out: TextIO, every: int, seconds: float, total: int | None) -> None:
        self.out = out
        self.every = every
        self.seconds = seconds
        self.total = total
        self.count = 0
        self.at = 0.0

    def __call__(self, progress: ImportProgress) -> None:
        if progress.count - self.count < self.every and progress.elapsed - self.at < self.seconds:
            return
        self.count, self.at = progress.count, progress.elapsed
        of = "" if self.total is None else f" of {self.total}"
        left = ""
        if self.total is not None and progress.rate > 0:
            eta = max(0, self.total - progress.count) / progress.rate
            left = f", about {eta:.0f} s left"
        print(
            f"progress: {progress.count}{of} returns, {progress.imported} imported, "
            f"{progress.unchanged} unchanged, {progress.cancelled} cancelled, "
            f"{progress.skipped} skipped, {progress.errors} errors, {progress.rate:.1f}/s"
            f"{left}",
            file=self.out,
            flush=True,
        )


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Parse ``argv`` and run the chosen command's ``run(args, out)`` (``args.err`` is
    ``err``); turn every error into one line on ``err`` and its exit code. Output cut short
    by its reader (``returnflow inspect ... | head``) ends quietly, with 0."""
    try:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err  # --help and --version to out, usage errors to err
        try:
            args = parser.parse_args(argv)
        finally:
            sys.stdout, sys.stderr = saved
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else USAGE
    prog = f"{parser.prog} {args.command}"
    args.err = err
    try:
        code: int = args.run(args, out)
        out.flush()
        return code
    except BadArgument as error:
        print(f"{prog}: {one_line(str(error))}", file=err)
        return USAGE
    except ReturnflowError as error:
        print(f"{prog}: {type(error).__name__}: {one_line(str(error))}", file=err)
        return FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=err)
        return 130
    except BrokenPipeError:
        _quiet(out)
        return OK


def _quiet(out: TextIO) -> None:
    """The reader of ``out`` went away: send what is left to /dev/null, so that flushing at
    exit does not fail again (Python's advice for SIGPIPE)."""
    try:
        descriptor = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def loaded(flag: str, spec: str, build: Callable[..., Any], *args: Any) -> Any:
    """``build(*args)`` for the ``MODULE:CALLABLE`` a flag named; host code that fails to
    build is a :class:`BadArgument` naming the flag (one line, exit code 2), unless it
    failed with a returnflow error (exit code 1)."""
    try:
        return build(*args)
    except ReturnflowError:
        raise
    except Exception as error:
        raise BadArgument(
            f"{flag} {spec!r}: calling it failed: {type(error).__name__}: {error}"
        ) from error
