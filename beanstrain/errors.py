"""The two kinds of failure a user can meet, and the exit code of each.

`UsageError` is a mistake in what the user asked for (an unknown name, a bad
value, a malformed recipe file): the CLI prints its one-line message and
exits 2 before any work starts.  `RunError` is a run that could not be done
or did not pass (missing or corrupt data, no trained run, a failed gate): one
line, exit 1.  `Interrupted` is a run stopped by Ctrl-C or SIGTERM: exit 130,
as shells report a program ended by Ctrl-C.  None ever shows a traceback.

    >>> raise UsageError("--epochs must be a positive integer, got 0")
    Traceback (most recent call last):
    beanstrain.errors.UsageError: --epochs must be a positive integer, got 0
    >>> UsageError.exit_code, RunError.exit_code, Interrupted.exit_code
    (2, 1, 130)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """Bad input from the user; exit code 2."""

    exit_code = 2


class RunError(RuntimeError):
    """A run that could not be carried out or did not pass; exit code 1."""

    exit_code = 1


class Interrupted(RunError):
    """A run stopped by Ctrl-C or SIGTERM; exit code 130 (128 + SIGINT)."""

    exit_code = 130


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """"; did you mean 'X'?" for the valid name closest to `name`, or "" when none is close.

    >>> did_you_mean("epoch", ["epochs", "seed"])
    "; did you mean 'epochs'?"
    >>> did_you_mean("zzz", ["epochs", "seed"])
    ''
    """
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> UsageError:
    """An error for `name` not being one of `valid`, naming the closest match.

    >>> unknown_name("dataset", "bean4", ["beans4", "spiral"])
    UsageError("unknown dataset 'bean4'; did you mean 'beans4'? (valid: beans4, spiral)")
    """
    valid = sorted(valid)
    return UsageError(f"unknown {kind} '{name}'{did_you_mean(name, valid)} (valid: {', '.join(valid)})")


def lookup(kind: str, name: str, table: dict):
    """`table[name]`, or a `UsageError` listing the valid names and the closest one."""
    try:
        return table[name]
    except KeyError:
        raise unknown_name(kind, name, table) from None


def first_line(error: BaseException, limit: int | None = 200) -> str:
    """The first line of an error's message (its type's name when it has none), cut at `limit` characters.

    Libraries' errors become one line of beanstrain's own message with this.

    >>> first_line(OSError("image file is truncated\\n(5 bytes not processed)"))
    'image file is truncated'
    >>> first_line(KeyError("weight_0 is not a file in the archive"))   # without the quotes KeyError adds
    'weight_0 is not a file in the archive'
    >>> first_line(EOFError())
    'EOFError'
    """
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    lines = str(message).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:limit]
