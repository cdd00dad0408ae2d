"""Warnings that name the user's line, however deep in the package they are raised."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_caller(message: str, category: type = UserWarning) -> None:
    """Warn at the first line on the call stack outside this package.

    A fixed ``stacklevel`` is right for one caller only: ``read_textgrid`` is called by the
    user and by ``LebelDataset.load_transcript``, one level apart.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
