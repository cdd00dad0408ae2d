"""Tables and figures of probe results for several models.

Results are nested dicts ``{model label: {task name: {layer: ProbeResult}}}``, as
a chapter collects them with :func:`~bt_tutorial.downstream.probes.probe_layers`.
A summary picks, per model and task, the layer that did best on *validation*.
"""

from __future__ import annotations

import numpy as np

from .probes import ProbeResult, best_layer


def summary_rows(results: dict, metric: str | None = None) -> list:
    """One row per (task, model) at the layer chosen on validation.

    Parameters
    ----------
    results : dict
        ``{model label: {task: {layer: ProbeResult}}}``.
    metric : str, optional
        Default: each result's primary metric (macro-F1, or micro-F1 for multi-label).

    Returns
    -------
    rows : list of dict
        Keys ``task, model, layer, metric, mean, low, high, validation``.
    """
    rows = []
    for label, tasks in results.items():
        for task, by_layer in tasks.items():
            k = best_layer(by_layer)
            r = by_layer[k]
            name = metric or r.primary
            low, high = r.interval(name)
            rows.append(dict(task=task, model=label, layer=k, metric=name, mean=r.mean(name),
                             low=low, high=high, validation=float(np.mean(r.validation))))
    return rows


def summary_table(results: dict, metric: str | None = None):
    """Tasks x models: ``mean [95% interval] (layer)`` at the layer chosen on validation.

    Returns
    -------
    table : pandas DataFrame of str
    """
    import pandas as pd

    rows = summary_rows(results, metric)
    cells = {(r["task"], r["model"]): f"{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}] (L{r['layer']})"
             for r in rows}
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    metrics = {r["task"]: r["metric"] for r in rows}
    table = pd.DataFrame({m: [cells.get((t, m), "") for t in tasks] for m in results},
                         index=[f"{t} ({metrics[t]})" for t in tasks])
    table.index.name = "task (metric)"
    return table


def paired_difference(a: ProbeResult, b: ProbeResult, metric: str | None = None,
                      level: float = 0.95) -> tuple:
    """Mean and t-interval of ``a - b`` over seeds (the same validation speakers per seed).

    Returns
    -------
    mean, low, high : float
    """
    from scipy import stats

    name = metric or a.primary
    if len(a.scores[name]) != len(b.scores[name]):
        raise ValueError("The two results were run with different numbers of seeds.")
    d = np.asarray(a.scores[name]) - np.asarray(b.scores[name])
    if len(d) < 2:
        return float(d.mean()), float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def largest_difference_at_layer(results: dict, layer: int = 0, reference: str = "pretrained",
                                metric: str | None = None) -> float:
    """Largest absolute difference from the reference's mean score, over models and tasks, at one layer.

    Whisper's hidden state 0 comes from parts that brain-tuning leaves frozen, so there every
    model should score as the pretrained one: a check of the pipeline.

    Parameters
    ----------
    results : dict of str -> dict of str -> dict of int -> ProbeResult
        ``results[model][task][layer]``, as chapter 7 builds it.
    layer : int
    reference : str
        The model the others are compared with.
    metric : str, optional
        Default: each probe's primary metric.

    Returns
    -------
    difference : float
    """
    if reference not in results:
        raise KeyError(f"No model {reference!r} in the results; they hold {sorted(results)}.")
    ref = results[reference]
    return max(abs(by_task[task][layer].mean(metric) - ref[task][layer].mean(metric))
               for by_task in results.values() for task in ref)


def plot_probe_scores(results: dict, metric: str | None = None, chance: dict | None = None,
                      title: str | None = None, ncols: int | None = None):
    """Test score per layer, one panel per task, one line (mean and 95% band) per model.

    The layer each model would be reported at (best on validation) is circled. Panels
    share the hidden-state axis; each keeps its own score axis (tasks differ in level).

    Parameters
    ----------
    results : dict
        ``{model label: {task: {layer: ProbeResult}}}``.
    metric : str, optional
        Default: each result's primary metric.
    chance : dict of str -> float, optional
        A dashed reference line per task (e.g. ``1 / n_classes``).
    title : str, optional
    ncols : int, optional
        Panels per row at most; default :data:`~bt_tutorial.plotting_models.MAX_COLUMNS` (2).

    Returns
    -------
    fig : matplotlib Figure
    """
    from matplotlib.lines import Line2D

    from ..plotting import MODEL_COLORS
    from ..plotting_models import MAX_COLUMNS, TITLE_SIZE, panel_grid, panel_legend

    tasks = list(dict.fromkeys(t for by_task in results.values() for t in by_task))
    fig, axes, spare = panel_grid(len(tasks), ncols or MAX_COLUMNS, sharex=True, title=title or "",
                                  xlabel="hidden state", ylabel=f"test {metric or 'score'}")
    for ax, task in zip(axes, tasks):
        for i, (label, by_task) in enumerate(results.items()):
            if task in by_task:  # a small shift per model keeps equal lines from hiding each other
                _draw_model(ax, by_task[task], label, MODEL_COLORS.get(label, f"C{i}"), metric,
                            shift=0.08 * (i - (len(results) - 1) / 2), marker="osD^v"[i % 5])
        if chance and task in chance:
            ax.axhline(chance[task], color="0.5", ls="--", lw=0.8, label="chance")
        first = next(r for by_task in results.values() if task in by_task
                     for r in by_task[task].values())
        name = (metric or first.primary).replace("_f1", "-F1")
        ax.set_title(f"{task.replace('_', ' ')} ({name})", fontsize=TITLE_SIZE)
    best = Line2D([], [], ls="none", marker="o", ms=10, mfc="none", color="0.3", label="best on validation")
    panel_legend(fig, axes, spare, extra=[best], ncols=3)
    return fig


def _draw_model(ax, by_layer: dict, label: str, color: str, metric: str | None, shift: float = 0.0,
                marker: str = "o") -> None:
    layers = sorted(by_layer)
    x = np.array(layers) + shift
    means = np.array([by_layer[k].mean(metric) for k in layers])
    bands = np.array([by_layer[k].interval(metric) for k in layers])
    ax.plot(x, means, "-", marker=marker, color=color, ms=4, label=label)
    ax.fill_between(x, bands[:, 0], bands[:, 1], color=color, alpha=0.15, lw=0)
    k = best_layer(by_layer)
    ax.plot([k + shift], [by_layer[k].mean(metric)], "o", ms=10, mfc="none", color=color)
    ax.set_xticks(layers)
