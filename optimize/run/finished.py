"""Finished runs read back: ``retention compare`` puts their summaries side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sim.scenario import Problem, ScenarioError


class RunFolderError(ScenarioError):
    """A folder is not a finished run of ``retention run``."""


def read_run(folder: Path) -> tuple[str, pd.DataFrame]:
    """A run's label (scenario and folder name) and its summary table."""
    summary, info = folder / "summary.csv", folder / "manifest.json"
    missing = [p.name for p in (summary, info) if not p.is_file()]
    if missing:
        raise RunFolderError([Problem(str(folder), None, None, (), f"not a finished run: no {' or '.join(missing)}",
                                      "give folders written by 'retention run' (results/<scenario>/run-...)")])
    try:
        scenario = json.loads(info.read_text(encoding="utf-8")).get("scenario", "?")
        table = pd.read_csv(summary)
    except (ValueError, OSError) as exc:
        raise RunFolderError([Problem(str(folder), None, None, (), f"cannot be read ({exc})",
                                      "rerun 'retention run' to write it again")]) from None
    needed = {"strategy", "metric", "mean", "ci_low", "ci_high"}
    if not needed <= set(table.columns):
        raise RunFolderError([Problem(str(summary), 1, None, (), "not a strategy summary of 'retention run'",
                                      f"it needs the columns {', '.join(sorted(needed))}")])
    return f"{scenario}/{folder.name}", table


def compare_runs(folders: list[Path]) -> pd.DataFrame:
    """Per strategy and metric: each run's mean and 95% interval side by side; with two runs, the
    difference of the means (second minus first)."""
    labels, tables = [], []
    for folder in folders:
        label, table = read_run(folder)
        while label in labels:
            label += "'"
        labels.append(label)
        tables.append(table.set_index(["strategy", "metric"]))
    wide = pd.DataFrame(index=pd.MultiIndex.from_tuples(
        list(dict.fromkeys(key for t in tables for key in t.index)), names=["strategy", "metric"]))
    for label, table in zip(labels, tables):
        wide[f"{label} mean"] = table["mean"]
        wide[f"{label} 95% interval"] = [
            f"[{lo:.6g}, {hi:.6g}]" if pd.notna(lo) else "" for lo, hi in
            zip(table["ci_low"].reindex(wide.index), table["ci_high"].reindex(wide.index))]
    if len(tables) == 2:
        wide["difference of means"] = wide[f"{labels[1]} mean"] - wide[f"{labels[0]} mean"]
    return wide.reset_index()
