"""The brain-tuned model: a speech model with a linear head, and the ridge start of that head."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from bt_tutorial.alignment.encoding import pearson_r
from bt_tutorial.alignment.models import SpeechModel

if TYPE_CHECKING:  # samples imports this module's neighbours; only the annotation needs it
    from bt_tutorial.brain_tuning.samples import TuningData


class BrainTunedModel(torch.nn.Module):
    """A speech model with a linear head on its time-averaged last hidden state.

    Parameters
    ----------
    speech_model : SpeechModel
    n_voxels : int
    window_samples : int, optional
        Length of the audio windows (16 kHz). The average runs over the frames that lie
        on the audio (:meth:`~bt_tutorial.alignment.models.SpeechModel.n_audio_frames`): all of them,
        except for Whisper padded to 30 s, whose padding frames are left out, as the
        authors' ``WhisperLinear`` does. Default: all frames.
    """

    def __init__(self, speech_model: SpeechModel, n_voxels: int, window_samples: int | None = None):
        super().__init__()
        self.speech_model = speech_model
        self.backbone = speech_model.backbone
        self.head = torch.nn.Linear(speech_model.hidden_size, n_voxels)
        self.n_frames = None if window_samples is None else speech_model.n_audio_frames(window_samples)

    def pool(self, inputs: torch.Tensor) -> torch.Tensor:
        """The last hidden state averaged over the audio's frames, shape (batch, hidden_size)."""
        return self.speech_model.last_hidden_state(inputs)[:, :self.n_frames].mean(dim=1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Predicted responses, shape (batch, n_voxels), from prepared inputs."""
        return self.head(self.pool(inputs))


RIDGE_HEAD_ALPHAS = np.logspace(-2, 6, 17)


def pooled_outputs(model: BrainTunedModel, data: TuningData, batch_size: int, autocast=nullcontext,
                   progress: bool = False) -> np.ndarray:
    """The backbone's time-averaged last hidden state of every sample, without gradients.

    Returns
    -------
    pooled : ndarray, shape (n_samples, hidden_size), float32
    """
    model.eval()
    out = []
    with torch.no_grad(), autocast():
        for start in tqdm(range(0, len(data), batch_size), disable=not progress, desc="pooled outputs"):
            x, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
            out.append(model.pool(model.speech_model.prepare(x)).float().cpu().numpy())
    return np.concatenate(out)


def fit_ridge_head(x_train: np.ndarray, targets: list, x_val: np.ndarray, y_val: np.ndarray,
                   alphas=RIDGE_HEAD_ALPHAS) -> dict:
    """Ridge regression of the targets on pooled outputs: the head's starting point.

    One penalty for all voxels, the one with the lowest validation MSE (the
    training loss). Features are centred, so the bias absorbs the means.

    Parameters
    ----------
    x_train : ndarray, shape (n_samples, hidden_size)
    targets : list of ndarray, each (n_rows_i, n_voxels)
        Training targets in the order of ``x_train``'s rows (per story).
    x_val : ndarray, shape (n_val, hidden_size)
    y_val : ndarray, shape (n_val, n_voxels)
    alphas : array_like, shape (n_alphas,)

    Returns
    -------
    head : dict
        ``weight`` (n_voxels, hidden_size), ``bias`` (n_voxels,), ``alpha``,
        ``val_loss`` and ``val_r`` (mean Pearson r over voxels) of the chosen penalty.
    """
    x_train = np.asarray(x_train, np.float64)
    if len(x_train) != sum(len(t) for t in targets):
        raise ValueError(f"x_train has {len(x_train)} rows but the targets have "
                         f"{sum(len(t) for t in targets)}.")
    mean_x = x_train.mean(axis=0)
    u, s, vt = np.linalg.svd(x_train - mean_x, full_matrices=False)
    mean_y = sum(t.sum(axis=0, dtype=np.float64) for t in targets) / len(x_train)
    bounds = np.cumsum([0] + [len(t) for t in targets])
    uty = sum(u[a:b].T @ t for a, b, t in zip(bounds[:-1], bounds[1:], targets))  # mean_y drops out: u is centred
    x_val = np.asarray(x_val, np.float64) - mean_x
    best = None
    for alpha in alphas:
        weight = vt.T @ ((s / (s ** 2 + alpha))[:, None] * uty)
        pred = x_val @ weight + mean_y
        loss = float(np.mean((pred - y_val) ** 2))
        if best is None or loss < best["val_loss"]:
            best = {"weight": weight.T, "alpha": float(alpha), "val_loss": loss, "val_r": mean_correlation(pred, y_val)}
    best["bias"] = mean_y - best["weight"] @ mean_x
    return best


def mean_correlation(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over columns of the Pearson r between two arrays of shape (n_rows, n_columns).

    A constant column has no correlation (NaN from :func:`~bt_tutorial.alignment.encoding.pearson_r`)
    and counts as r = 0, as in :func:`~bt_tutorial.brain_tuning.loop.evaluate`.
    """
    r = np.asarray(pearson_r(pred, target), float)
    return float(np.mean(np.where(np.isfinite(r), r, 0.0)))
