"""Errors a user can fix, and how every ``python -m rl_app...`` command line reports them.

An expected user error -- missing or malformed data, an unknown preset, a bad setting, a
checkpoint that is not one, a directory that does not exist -- is a :class:`UserError` (the
project's own error types derive from it) or an ``OSError`` naming a path. A command line run
through :func:`run_command` prints it as one line on stderr::

    error: <what>, <where>; <how to fix>

and exits with status 2 (a bad flag too: argparse's usage text is left to ``--help``).
``--debug`` on the command line (or ``RL_APP_DEBUG=1``) shows the traceback instead.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Callable, Optional, Sequence

__all__ = ["UserError", "InputError", "USER_ERRORS", "run_command", "one_line", "EXIT_USER_ERROR"]

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error in what the user gave (a path, a file's contents, a flag, a preset)."""


class InputError(UserError, ValueError):
    """A bad value the user gave (a setting, a flag, a preset's contents, a file that is not the kind asked for)."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                                PermissionError)


def _cause(error: BaseException) -> BaseException:
    """The user's error inside a Ray task error (which repeats the remote traceback in its text)."""
    seen = 0
    while getattr(error, "cause", None) is not None and seen < 8:
        error, seen = error.cause, seen + 1
    return error


def one_line(error: BaseException) -> str:
    """The error's message on one line (an ``OSError`` without one: its reason and path)."""
    error = _cause(error)
    if isinstance(error, OSError) and error.strerror and error.filename and str(error).startswith("["):
        text = f"{error.filename}: {error.strerror.lower()}"
    else:
        text = str(error) or type(error).__name__
    if isinstance(error, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    return " ".join(text.split())


def _is_user_error(error: BaseException) -> bool:
    return isinstance(error, USER_ERRORS) or isinstance(_cause(error), USER_ERRORS)


@contextlib.contextmanager
def _patched(owner: type, name: str, value: Any):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def run_command(main: Callable[[Optional[Sequence[str]]], Optional[int]],
                argv: Optional[Sequence[str]] = None) -> int:
    """Run a command line's ``main(argv)``; a user error becomes one ``error: ...`` line and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("RL_APP_DEBUG", "").lower() not in ("", "0", "false", "no")
    if "--debug" in args:
        args.remove("--debug")
        debug = True

    def parse_error(parser: argparse.ArgumentParser, message: str):  # a bad flag: one line too
        raise InputError(f"{message}; see {parser.prog} --help")

    try:
        with _patched(argparse.ArgumentParser, "error", parse_error):
            return int(main(args) or 0)
    except Exception as error:  # noqa: BLE001 - sorted below: only user errors are shortened
        if debug or not _is_user_error(error):
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
