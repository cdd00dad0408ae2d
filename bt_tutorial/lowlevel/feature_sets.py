"""Low-level features of a story on its response rows.

Six sets, after Oota et al. (ACL 2024):

``spectrum``
    Log power in ``N_SPECTRUM_BANDS`` mel-spaced bands: a torchaudio power
    spectrogram of the 16 kHz audio (32 ms windows, 10 ms hop) pooled by a
    triangular mel filterbank, power averaged in 0.1 s bins, then log10.
``phonemes``
    One column per ARPAbet phone (39).
``diphones``, ``triphones``
    One column per within-word phone pair or triple of a vocabulary, the most
    frequent ones of the training stories (:func:`~bt_tutorial.lowlevel.phones.phone_ngram_vocabulary`);
    by default ``TOP_DIPHONES`` and ``TOP_TRIPHONES``.
``articulation``
    The 22 articulatory features of :mod:`bt_tutorial.lowlevel.phones`.
``rates``
    Phone rate and word rate.

Every set takes the path of the model features (:func:`~bt_tutorial.dataset.timing.to_response_rows`):
values at their times, Lanczos-downsampled to the simulated TR grid, trimmed
and z-scored per story. The event sets put one impulse per event at its
centre (a phone, an n-gram, a word) carrying a one-hot or articulatory row;
the Lanczos filter turns impulses into smooth counts per TR, the band-limited
version of binning them, so the features have the same temporal smoothing as
the model features they are regressed out of. Labels that are not ARPAbet
phones (noise, ``sp`` left in some real TextGrids) are left out of every set.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from bt_tutorial.dataset.timing import to_response_rows
from bt_tutorial.lowlevel.phones import (
    ARTICULATION,
    ARTICULATORY_FEATURES,
    PHONES,
    ngram_name,
    phone_indices,
    phone_ngram_vocabulary,
    phone_ngrams,
)

LOWLEVEL_SETS = ("spectrum", "phonemes", "diphones", "triphones", "articulation", "rates")
NGRAM_SETS = {"diphones": 2, "triphones": 3}
N_SPECTRUM_BANDS = 32
TOP_DIPHONES = 200
TOP_TRIPHONES = 200
SPECTRUM_BIN = 0.1  # seconds
_HOP = 160  # samples at 16 kHz: 10 ms
_N_FFT = 512


def check_sets(sets) -> tuple:
    """Validate feature-set names; ``"a+b"`` names the concatenation of sets a and b.

    Returns
    -------
    sets : tuple of str
    """
    if isinstance(sets, str):
        sets = (sets,)
    sets = tuple(sets)
    if not sets:
        raise ValueError(f"Give at least one low-level feature set of {LOWLEVEL_SETS}.")
    for name in sets:
        unknown = [p for p in name.split("+") if p not in LOWLEVEL_SETS]
        if unknown:
            raise ValueError(f"Unknown low-level feature set {unknown[0]!r} in {name!r}; "
                             f"known sets: {LOWLEVEL_SETS} (join with '+' to combine).")
    return sets


def base_sets(sets) -> tuple:
    """The single sets that ``sets`` (which may hold ``"a+b"`` names) need, in canonical order."""
    parts = {p for name in check_sets(sets) for p in name.split("+")}
    return tuple(s for s in LOWLEVEL_SETS if s in parts)


def spectrum_course(waveform: np.ndarray, sample_rate: int = 16000,
                    n_bands: int = N_SPECTRUM_BANDS) -> tuple:
    """Log power spectrum in mel-spaced bands, one row per 0.1 s.

    Parameters
    ----------
    waveform : ndarray, shape (n_samples,)
        Mono audio at 16 kHz.
    sample_rate : int
        Must be 16000 (the window and hop are set for it).
    n_bands : int

    Returns
    -------
    times : ndarray, shape (n_bins,)
        Centre of each 0.1 s bin, seconds from the sound onset.
    log_power : ndarray, shape (n_bins, n_bands), float32
    """
    import torch
    import torchaudio.transforms as T

    if sample_rate != 16000:
        raise ValueError(f"spectrum_course expects 16 kHz audio, got {sample_rate} Hz; "
                         "load it with dataset.load_audio(story, 16000).")
    mel = T.MelSpectrogram(sample_rate, n_fft=_N_FFT, hop_length=_HOP, n_mels=n_bands,
                           power=2.0)(torch.as_tensor(np.asarray(waveform, np.float32)))
    frames = mel.T.numpy()  # (n_frames, n_bands); frame k is centred at k * hop
    per_bin = int(round(SPECTRUM_BIN * sample_rate / _HOP))
    n_bins = len(frames) // per_bin
    if n_bins < 2:
        raise ValueError(f"Audio of {len(waveform) / sample_rate:.2f} s is too short for a spectrum.")
    power = frames[: n_bins * per_bin].reshape(n_bins, per_bin, n_bands).mean(1)
    times = (np.arange(n_bins) * per_bin + (per_bin - 1) / 2) * _HOP / sample_rate
    return times, np.log10(power + 1e-10).astype(np.float32)


def spectrum_band_centers(n_bands: int = N_SPECTRUM_BANDS, sample_rate: int = 16000) -> np.ndarray:
    """Centre frequency (Hz) of each band of :func:`spectrum_course` (HTK mel scale, 0 to Nyquist).

    Returns
    -------
    centers : ndarray, shape (n_bands,)
    """
    top = 2595.0 * np.log10(1.0 + sample_rate / 2 / 700.0)
    return 700.0 * (10 ** (np.linspace(0.0, top, n_bands + 2)[1:-1] / 2595.0) - 1.0)


def _event_rows(values: np.ndarray, times: np.ndarray, n_scan_trs: int, story: str, n_rows, tr):
    """Impulses at ``times`` carrying ``values`` -> response rows (zeros if under 2 events)."""
    if len(times) < 2:  # constant features z-score to zeros
        return to_response_rows(np.zeros((2, values.shape[1])), np.array([0.0, 1.0]),
                                n_scan_trs, story, n_rows, tr)
    order = np.argsort(times, kind="stable")
    return to_response_rows(values[order], times[order], n_scan_trs, story, n_rows, tr)


def _ngram_values(ngrams, vocabulary) -> np.ndarray:
    """One-hot rows of each run over the vocabulary (zero rows for runs outside it)."""
    column = {tuple(g): j for j, g in enumerate(vocabulary)}
    values = np.zeros((len(ngrams), len(vocabulary)), np.float32)
    for i, g in enumerate(ngrams):
        if g in column:
            values[i, column[g]] = 1.0
    return values


def lowlevel_features(dataset, story: str, sets=LOWLEVEL_SETS, vocabularies: dict | None = None,
                      n_rows: int | None = None, n_bands: int = N_SPECTRUM_BANDS) -> dict:
    """Low-level feature sets of one story on its response rows, z-scored per story.

    Parameters
    ----------
    dataset : LebelDataset
    story : str
    sets : sequence of str
        Names from ``LOWLEVEL_SETS``.
    vocabularies : dict of str -> list of tuple of str, optional
        ``"diphones"`` and ``"triphones"`` vocabularies, required for those
        sets; make them from the training stories with
        :func:`~bt_tutorial.lowlevel.phones.phone_ngram_vocabulary` (or :func:`~bt_tutorial.lowlevel.feature_sets.lowlevel_rows` does it).
    n_rows : int, optional
        Rows of the story's responses; a mismatch is an error naming the story.
    n_bands : int
        Bands of the ``spectrum`` set.

    Returns
    -------
    features : dict of str -> ndarray, shape (n_scan_trs - 20, n_features), float32
        Widths: spectrum ``n_bands``, phonemes 39, diphones and triphones the
        vocabulary sizes, articulation 22, rates 2 (phone rate, word rate).
    """
    sets = base_sets(sets)
    vocabularies = vocabularies or {}
    missing = [s for s in sets if s in NGRAM_SETS and s not in vocabularies]
    if missing:
        raise ValueError(f"Set {missing[0]!r} needs vocabularies[{missing[0]!r}]: compute it from "
                         f"the training stories with phone_ngram_vocabulary(dataset, train, "
                         f"{NGRAM_SETS[missing[0]]}, top_k), or use lowlevel_rows().")
    n_scan, tr = dataset.n_scan_trs(story), dataset.tr
    out = {}
    if "spectrum" in sets:
        times, power = spectrum_course(dataset.load_audio(story, 16000).waveform, 16000, n_bands)
        out["spectrum"] = to_response_rows(power, times, n_scan, story, n_rows, tr)
    if set(sets) - {"spectrum"}:
        words, phones = dataset.load_transcript(story)
        index = phone_indices(phones.labels)
        known = index >= 0
        one_hot = np.eye(len(PHONES), dtype=np.float32)[index[known]]
        phone_times = phones.centers[known]
        if "phonemes" in sets:
            out["phonemes"] = _event_rows(one_hot, phone_times, n_scan, story, n_rows, tr)
        for name, n in NGRAM_SETS.items():
            if name in sets:
                ngrams, times = phone_ngrams(words, phones, n)
                values = _ngram_values(ngrams, vocabularies[name])
                out[name] = _event_rows(values, times, n_scan, story, n_rows, tr)
        if "articulation" in sets:
            out["articulation"] = _event_rows(one_hot @ ARTICULATION, phone_times, n_scan, story,
                                              n_rows, tr)
        if "rates" in sets:
            out["rates"] = np.column_stack([
                _event_rows(np.ones((len(phone_times), 1)), phone_times, n_scan, story, n_rows, tr),
                _event_rows(np.ones((len(words), 1)), words.centers, n_scan, story, n_rows, tr),
            ])
    return {s: out[s] for s in sets}


def ngram_vocabularies(dataset, train_stories, sets=LOWLEVEL_SETS, top_diphones: int = TOP_DIPHONES,
                       top_triphones: int = TOP_TRIPHONES) -> dict:
    """Diphone and triphone vocabularies of the training stories, for the sets that need them.

    Returns
    -------
    vocabularies : dict of str -> list of tuple of str
        Keys among ``"diphones"``, ``"triphones"``.
    """
    top = {"diphones": top_diphones, "triphones": top_triphones}
    return {name: phone_ngram_vocabulary(dataset, train_stories, n, top[name])
            for name, n in NGRAM_SETS.items() if name in base_sets(sets)}


def lowlevel_rows(dataset, stories, train_stories, sets=LOWLEVEL_SETS, n_rows: dict | None = None,
                  top_diphones: int = TOP_DIPHONES, top_triphones: int = TOP_TRIPHONES,
                  n_bands: int = N_SPECTRUM_BANDS, progress: bool = False, vocabularies: dict | None = None) -> dict:
    """Low-level features of several stories, n-gram vocabularies from the training stories.

    Parameters
    ----------
    dataset : LebelDataset
    stories : sequence of str
        Stories to compute (usually training and test).
    train_stories : sequence of str
        Stories that define the diphone and triphone vocabularies.
    sets : sequence of str
    n_rows : dict of str -> int, optional
        Response rows of each story, checked against the features.
    top_diphones, top_triphones : int
        Vocabulary sizes.
    n_bands : int
    progress : bool
    vocabularies : dict, optional
        From :func:`ngram_vocabularies`, when already computed (then ``train_stories``
        and the sizes are not used).

    Returns
    -------
    rows : dict of str -> dict of str -> ndarray, shape (n_rows, n_features)
        ``rows[story][set]``.
    """
    if vocabularies is None:
        vocabularies = ngram_vocabularies(dataset, train_stories, sets, top_diphones, top_triphones)
    return {story: lowlevel_features(dataset, story, sets, vocabularies,
                                     None if n_rows is None else n_rows[story], n_bands)
            for story in tqdm(stories, desc="low-level features", disable=not progress)}


def feature_names(set_name: str, vocabularies: dict | None = None,
                  n_bands: int = N_SPECTRUM_BANDS) -> list:
    """Column names of a feature set (``"a+b"`` gives those of a then b).

    Returns
    -------
    names : list of str
    """
    names = []
    for part in check_sets(set_name)[0].split("+"):
        if part == "spectrum":
            names += [f"{hz:.0f}Hz" for hz in spectrum_band_centers(n_bands)]
        elif part == "phonemes":
            names += list(PHONES)
        elif part in NGRAM_SETS:
            if not vocabularies or part not in vocabularies:
                raise ValueError(f"Names of {part!r} need its vocabulary (vocabularies[{part!r}]).")
            names += [ngram_name(g) for g in vocabularies[part]]
        elif part == "articulation":
            names += list(ARTICULATORY_FEATURES)
        else:
            names += ["phone_rate", "word_rate"]
    return names


def stack_sets(features: dict, set_name: str) -> np.ndarray:
    """Columns of the sets named by ``set_name`` (``"a+b"``) side by side.

    Parameters
    ----------
    features : dict of str -> ndarray, shape (n_rows, n_features_set)
        One story's sets, as :func:`lowlevel_features` returns them.

    Returns
    -------
    stacked : ndarray, shape (n_rows, sum of widths)
    """
    parts = check_sets(set_name)[0].split("+")
    missing = [p for p in parts if p not in features]
    if missing:
        raise ValueError(f"Set {missing[0]!r} was not computed; have {sorted(features)}.")
    return np.hstack([features[p] for p in parts])


def describe_sets(rows: dict, vocabularies: dict | None = None, n_first: int = 5):
    """The feature sets of one story: how many columns each has, and the first column names.

    Parameters
    ----------
    rows : dict of str -> ndarray, shape (n_rows, n_features)
        One story's sets, ``lowlevel_rows(...)[story]``.
    vocabularies : dict, optional
        The n-gram vocabularies the rows were built with.

    Returns
    -------
    table : pandas DataFrame
        Index the set names; columns ``features`` and ``first columns``.
    """
    import pandas as pd

    return pd.DataFrame({"features": [rows[s].shape[1] for s in rows],
                         "first columns": [", ".join(map(str, feature_names(s, vocabularies)[:n_first]))
                                           for s in rows]}, index=list(rows))
