"""Warnings that name the user's line, however deep in the package they are raised."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
# mutation testing (``make mutation``) calls the package's functions through mutmut's trampoline,
# whose frames belong to the package's call as much as the package's own do
_WRAPPERS = os.sep + "mutmut" + os.sep


def _inside(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE) or _WRAPPERS in path


def warn_at_caller(message: str, category: type = UserWarning) -> None:
    """Warn at the first line on the call stack outside this package.

    A fixed ``stacklevel`` is right for one caller only: ``read_textgrid`` is called by the
    user and by ``LebelDataset.load_transcript``, one level apart.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and _inside(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
