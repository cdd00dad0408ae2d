"""Tables and figures of probe results for several models.

Results are nested dicts ``{model label: {task name: {layer: ProbeResult}}}``, as
a chapter collects them with :func:`~bt_tutorial.downstream.probes.probe_layers`.
A summary picks, per model and task, the layer that did best on *validation*.
"""

from __future__ import annotations

import numpy as np

from bt_tutorial.downstream.probes import ProbeResult, best_layer
from bt_tutorial.stats import t_interval


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
    name = metric or a.primary
    if len(a.scores[name]) != len(b.scores[name]):
        raise ValueError("The two results were run with different numbers of seeds.")
    return t_interval(np.asarray(a.scores[name]) - np.asarray(b.scores[name]), level)


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
