"""The closing page: the three effects of this build side by side, with the paper's.

Chapters 5, 6 and 7 keep their effect tables with :func:`save_effect` in
``<data home>/effects/<model>_<subject>.json``; the closing page reads them back with
:func:`load_effects` and :func:`verdict_table` lays them out next to what the paper
reports on real brains. A chapter that has not run leaves its row empty, saying so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bt_tutorial.comparison.effects import downstream_summary, effect_holds

EFFECTS = ("alignment", "lowlevel", "downstream")
TITLES = {"alignment": "(a) late-language alignment (chapter 5)",
          "lowlevel": "(b) low-level share of alignment (chapter 6)",
          "downstream": "(c) semantic downstream tasks (chapter 7)"}


def effects_path(data_home, model_name: str, subject: str) -> Path:
    """Where chapters 5-7 keep their effects for one model and subject."""
    safe = model_name.replace("/", "--")
    return Path(data_home) / "effects" / f"{safe}_{subject}.json"


def save_effect(table, effect: str, data_home, model_name: str, subject: str, **info) -> Path:
    """Keep one effect's table for the closing page (replacing the one of an earlier run).

    Parameters
    ----------
    table : pandas DataFrame
        :func:`~bt_tutorial.comparison.effects.alignment_effects` or
        :func:`~bt_tutorial.comparison.effects.lowlevel_effects` (indexed by comparison), or
        :func:`~bt_tutorial.comparison.effects.downstream_effects`.
    effect : {"alignment", "lowlevel", "downstream"}
    data_home : path
    model_name, subject : str
    **info
        Kept beside the rows (e.g. ``layer=3``, ``sets="all"``); JSON values.

    Returns
    -------
    path : Path
    """
    if effect not in EFFECTS:
        raise ValueError(f"effect must be one of {EFFECTS}, got {effect!r}.")
    path = effects_path(data_home, model_name, subject)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    rows = table.reset_index() if "comparison" not in table.columns else table
    saved[effect] = {"rows": json.loads(rows.to_json(orient="records")), **info}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(saved, indent=1))
    tmp.replace(path)
    return path


def load_effects(data_home, model_name: str, subject: str) -> dict:
    """The effects kept by chapters 5-7: effect name -> DataFrame of rows (missing effects absent)."""
    import pandas as pd

    path = effects_path(data_home, model_name, subject)
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    return {name: pd.DataFrame(saved[name]["rows"]).assign(**{k: v for k, v in saved[name].items() if k != "rows"})
            for name in EFFECTS if name in saved}


def _holds(effect: str, table) -> bool:
    brain = table[table["comparison"].str.startswith("brain-tuned - ")]
    if effect == "downstream":
        return downstream_summary(brain)["holds"]
    return effect_holds(effect, brain["verdict"])


def _verdicts(table, comparison: str) -> str:
    rows = table[table["comparison"] == comparison]
    if "task" in rows:
        return "; ".join(f"{r['task']}: {r['verdict']}" for _, r in rows.iterrows())
    return "; ".join(rows["verdict"])


def verdict_table(effects: dict, paper: dict | None = None):
    """One row per effect: this build's verdicts against the pretrained model and the control.

    Parameters
    ----------
    effects : dict
        From :func:`load_effects`.
    paper : dict of str -> str, optional
        What the paper reports for each effect, shown in a column of its own.

    Returns
    -------
    table : pandas DataFrame
        Indexed by effect: ``vs pretrained``, ``vs control``, ``holds in this build``
        (``"not run"`` where a chapter has not saved its effect), and ``paper``.
    """
    import pandas as pd

    rows = {}
    for effect in EFFECTS:
        table = effects.get(effect)
        if table is None:
            rows[TITLES[effect]] = {"vs pretrained": "not run", "vs control": "not run",
                                    "holds in this build": "not run"}
            continue
        rows[TITLES[effect]] = {"vs pretrained": _verdicts(table, "brain-tuned - pretrained"),
                                "vs control": _verdicts(table, "brain-tuned - control"),
                                "holds in this build": "yes" if _holds(effect, table) else "no"}
    out = pd.DataFrame(rows).T
    if paper:
        out["paper"] = [paper.get(e, "") for e in EFFECTS]
    return out
