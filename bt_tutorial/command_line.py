"""What every ``python -m bt_tutorial.<command>`` does with an expected error.

Bad settings, bad data, a missing file or a failed download print one line,
``error: <message>``, on stderr and exit with code 2; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import sys

EXPECTED_ERRORS = (OSError, ValueError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def run_command(body, expected=EXPECTED_ERRORS, interrupted: str | None = None) -> int:
    """Run ``body()`` and return its exit code.

    Parameters
    ----------
    body : callable () -> int
        The command; returns its exit code.
    expected : tuple of exception types
        Errors of the user's input or environment: one line on stderr, exit code 2.
    interrupted : str, optional
        Printed on Ctrl-C, exit code 130 (e.g. how to resume); without it the
        ``KeyboardInterrupt`` propagates.

    Returns
    -------
    code : int
    """
    try:
        return body()
    except expected as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(interrupted, file=sys.stderr)
        return 130
