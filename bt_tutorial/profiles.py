"""What each profile plugs into the pipeline: the dataset, its ROI masks, the downstream tasks.

``demo`` uses the synthetic twin (:mod:`bt_tutorial.synthetic`), generated on first use;
``full`` uses ds003020, the Glasser-atlas masks built by ``python -m bt_tutorial.dataset.roi_build``
and the real downstream datasets. This is the only module outside ``synthetic/`` that
imports it, so the rest of the package reads real and synthetic data the same way.
"""

from __future__ import annotations

import os

from bt_tutorial.config import get_config
from bt_tutorial.dataset.atlas import default_roi_path, load_roi_masks
from bt_tutorial.dataset.reader import LebelDataset
from bt_tutorial.synthetic.truth import twin_roi_masks


def open_dataset(config=None, ensure: bool = True) -> LebelDataset:
    """The dataset of the current profile.

    Parameters
    ----------
    config : Config, optional
        Default: :func:`bt_tutorial.config.get_config`.
    ensure : bool
        In the demo profile, generate the synthetic twin if it is missing.

    Returns
    -------
    dataset : LebelDataset
        Strict in the full profile: a story whose stimulus is present but whose response
        file is missing is an error (the demo warns). Full profile: NaN responses are
        zeroed with a warning that counts them (``config.nan_policy``), and
        ``split`` trains on the paper's 24 stories (``config.train_story_setting``),
        naming those missing.
    """
    config = config or get_config()
    if config.profile == "demo" and ensure:
        from bt_tutorial.synthetic.twin import ensure_twin

        ensure_twin(config.dataset_root, progress=config.progress)
    return LebelDataset(config.dataset_root, strict=config.profile == "full", nan_policy=config.nan_policy,
                        train_stories=config.train_story_setting)


def profile_roi_masks(dataset: LebelDataset, subject: str, n_voxels: int, hemispheres: bool = True,
                      config=None) -> dict:
    """ROI masks of a subject: the twin's ground truth (demo) or the atlas file (full).

    Parameters
    ----------
    dataset : LebelDataset
    subject : str
    n_voxels : int
        Response columns; the atlas file is checked against it.
    hemispheres : bool
        Add ``_L`` / ``_R`` masks (the atlas file always has them).
    config : Config, optional

    Returns
    -------
    masks : dict of str -> ndarray of bool, shape (n_voxels,)
        The paper's three ROI groups, the ROIs themselves and ``outside_rois``.
    """
    config = config or get_config()
    if config.profile == "demo":
        masks = twin_roi_masks(dataset.root, subject, hemispheres)
        n_labelled = len(next(iter(masks.values())))
        if n_labelled != n_voxels:
            raise ValueError(f"The twin's ROI labels cover {n_labelled} voxels, the responses "
                             f"{n_voxels}: regenerate the twin (delete {dataset.root}).")
        return masks
    return load_roi_masks(default_roi_path(dataset.root, subject), n_voxels=n_voxels)


FULL_TASK_SIZES = {"speech_commands": 300, "slurp": 100, "crema_d": None, "timit": 3000}
"""Clips kept in the full profile: per class and split (Speech Commands, SLURP, CREMA-D) or in all
(TIMIT); None keeps every clip, as the authors do. Subsampled so that features of the three
models fit a Colab session: ``profile_downstream_tasks(sizes=None)`` keeps them all."""


def profile_downstream_tasks(config=None, timit_root=None, sizes: dict | None = FULL_TASK_SIZES) -> dict:
    """The downstream tasks of chapter 7 for the profile, each a :class:`~bt_tutorial.downstream.tasks.Task`.

    ``demo``: the four tasks spoken by eSpeak NG (generated once into the data home).
    ``full``: Speech Commands v2, SLURP (its ``action`` label, as the authors) and CREMA-D
    (downloaded on first use), and TIMIT's phonemes and sentence type when ``timit_root``
    (default ``$TIMIT_ROOT``) points to a licensed copy, subsampled as ``sizes`` says.

    Parameters
    ----------
    config : Config, optional
    timit_root : str or Path, optional
    sizes : dict of str -> int or None, or None
        Clips kept per task in the full profile (:data:`FULL_TASK_SIZES`); None: all.

    Returns
    -------
    tasks : dict of str -> Task
    """
    config = config or get_config()
    if config.profile == "demo":
        from bt_tutorial.synthetic.tasks import SYNTHETIC_TASKS, ensure_task

        return {name: ensure_task(name, data_home=config.data_home, progress=config.progress)
                for name in SYNTHETIC_TASKS}
    from bt_tutorial.downstream.real import default_root, load_crema_d, load_slurp, load_speech_commands
    from bt_tutorial.downstream.timit import load_timit

    size = (sizes or {}).get
    progress, home = config.progress, config.data_home
    tasks = {"speech_commands": load_speech_commands(default_root("speech_commands", home), download=True,
                                                     max_per_class=size("speech_commands"), progress=progress),
             "slurp": load_slurp(default_root("slurp", home), label="action", download=True,
                                 max_per_class=size("slurp"), progress=progress),
             "crema_d": load_crema_d(default_root("crema_d", home), download=True, max_per_class=size("crema_d"),
                                     progress=progress)}
    timit_root = timit_root or os.environ.get("TIMIT_ROOT")
    if timit_root:
        for kind in ("phonemes", "sentence_type"):
            task = load_timit(timit_root, kind, max_clips=size("timit"))
            tasks[task.name] = task
    return tasks
