"""How every command of the project ends: a result, or one line that says what to fix.

A user's mistake (a misspelt task id or param, a missing file, a bad input file) raises :class:`UserError`
(``ParamError``, ``DatasetError`` and the other error types of the library derive from it). The entry points
of ``stages/`` run their ``main`` through :func:`run`, which prints such an error as one line,
``error: <message>``, on stderr and exits with status 2, never with a traceback. Anything else is a bug of
ours and keeps its traceback.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence


class UserError(Exception):
    """A mistake the user can fix: the message names the file, key or value and what is accepted."""


class MissingOutputError(UserError, FileNotFoundError):
    """A file a command reads has not been written yet; the message names the stage that writes it."""


EXIT_USER_ERROR = 2


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; a :class:`UserError` becomes one line on stderr and exit status 2."""
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    """``message`` with its line breaks folded into spaces (an error is one line)."""
    return " ".join(message.split())


class OneLineWarning(UserWarning):
    """A warning for the user, printed as one line, ``warning: <message>``, never with a source line."""


_format_warning = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None):
    if issubclass(category, OneLineWarning):
        return f"warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


warnings.formatwarning = _one_line_warning
