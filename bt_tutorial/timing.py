"""The TR grid of a story and the Huth-lab trimming conventions.

ds003020 gives, for each story, the number of scanner TRs in ``respdict.json``.
The story's sound starts ``SOUND_START`` seconds after the first TR. Following the
Huth lab's public code (``load_simulated_trfiles`` with ``pad=5`` and
``DataSequence.from_grid``), a story's stimulus is represented on a grid of
``respdict - 5`` simulated TRs whose times, relative to the sound onset, are the
middle of each TR::

    tr_times = arange(respdict - 5) * TR - SOUND_START + TR / 2

Features built on that grid are trimmed ``[10:-5]``; the released responses were
trimmed 10 TRs at the start and 10 at the end of the scan, so both end with
``respdict - 20`` rows and row ``i`` of each is scanner TR ``i + 10``.

The Huth-lab code simulates the grid with ``tr=2.0``; we use the scanner's
measured TR of 2.0045 s, which is the physical timing of the responses (the two
differ by 1.4 s at the end of a 15-minute story). Pass ``tr=2.0`` to reproduce
their grid exactly.
"""

from __future__ import annotations

import numpy as np

TR = 2.0045
SOUND_START = 10.0
GRID_PAD = 5
TRIM_START = 10
TRIM_END = 5
RESPONSE_TRIM = GRID_PAD + TRIM_START + TRIM_END  # = 20 rows fewer than respdict


def simulated_tr_times(n_scan_trs: int, tr: float = TR) -> np.ndarray:
    """Times of the untrimmed simulated TR grid of a story.

    Parameters
    ----------
    n_scan_trs : int
        Number of scanner TRs of the story (its value in ``respdict.json``).
    tr : float
        Repetition time in seconds.

    Returns
    -------
    tr_times : ndarray, shape (n_scan_trs - 5,)
        Middle of each simulated TR in seconds relative to the sound onset.
    """
    n_grid = int(n_scan_trs) - GRID_PAD
    if n_grid <= TRIM_START + TRIM_END:
        raise ValueError(
            f"A story needs more than {RESPONSE_TRIM} scanner TRs to keep any row "
            f"after trimming; got {n_scan_trs}."
        )
    return np.arange(n_grid) * tr - SOUND_START + tr / 2.0


def trim_grid(values: np.ndarray) -> np.ndarray:
    """Apply the Huth-lab trimming ``[10:-5]`` to an array on the simulated grid.

    Parameters
    ----------
    values : ndarray, shape (n_scan_trs - 5, ...)

    Returns
    -------
    trimmed : ndarray, shape (n_scan_trs - 20, ...)
    """
    return values[TRIM_START:-TRIM_END]


def response_tr_times(n_scan_trs: int, tr: float = TR) -> np.ndarray:
    """Times of the rows of a story's released responses.

    Parameters
    ----------
    n_scan_trs : int
        Number of scanner TRs of the story (``respdict.json``).
    tr : float
        Repetition time in seconds.

    Returns
    -------
    tr_times : ndarray, shape (n_scan_trs - 20,)
        Middle of each kept TR in seconds relative to the sound onset.
    """
    return trim_grid(simulated_tr_times(n_scan_trs, tr))


def scan_tr_times(n_scan_trs: int, tr: float = TR) -> np.ndarray:
    """Middle of every scanner TR relative to the sound onset (untrimmed scan).

    Parameters
    ----------
    n_scan_trs : int
    tr : float

    Returns
    -------
    tr_times : ndarray, shape (n_scan_trs,)
    """
    return np.arange(int(n_scan_trs)) * tr - SOUND_START + tr / 2.0
