"""Response curves measured once and reused.

Measuring curves is the one expensive step of ``optimize``, ``frontier``, ``goal`` and ``run``; a what-if
question (another budget, a goal, a frontier) needs the same curves again. They are kept, with the
*measurement key*: a digest of exactly what their measurement depends on, so curves are reused only
where measuring again would give the same numbers.

What a measurement depends on (:func:`measurement_key`):

* the scenario's market, tiers, reference, network, contact center, competitors (their campaigns and
  reactions, not the variants a robust plan weighs: a variant is measured as a scenario of its own),
  pricing, channels (not their capacities), levers, targeting and customer table (its files' contents
  too);
* of the budget, the contact policy only, plus the *design*: each measured cell and its ceiling, the
  spend beyond the contact policy (:func:`optimize.run.measure.measured_cells`). The budget's total,
  per-period and per-tier figures cap the ceilings, so a changed budget reuses the curves unless it
  moves a cell's ceiling (a cap below what the cell's offers could spend); lever capacities and channel
  capacities enter the same way. Stated curves are not measured: they are taken from the scenario as
  it is now;
* of ``run``: the scale, the queue's sampled calls and the estimation settings (levels, replications,
  simulated lines); not the comparison's replications, the closed loop or the baseline strategy;
* the seed, and the engine: its version and the digest of its source (another engine measures
  otherwise).

Not reused: the closed loop of ``optimize`` and ``run`` (its rounds simulate the plan, which depends
on the budget) and the comparison. The calibration is kept apart (:mod:`sim.calibration_cache`).

Curves are kept in two places, in the same format (``response_curves.json``, floats written exactly,
so reused curves give the same allocation bytes as measured ones):

* a finished folder of ``run``, ``optimize``, ``frontier`` or ``goal`` holds the curves it used; give it
  with ``--curves RUN_DIR``: its curves must have the scenario's key, or the command stops naming what
  differs;
* an implicit cache, ``.curves/<key>.json`` beside the output folder (``results/<scenario>/.curves``),
  written whole or not at all and used without asking, with a line saying so (``--remeasure`` ignores
  it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.allocation import Cell
from sim.files import source_digest, table_digests, write_file
from sim.scenario import Problem, Scenario, ScenarioError

from ..allocation.curves import ResponseCurve, TierChurn, stated_curves
from .measure import POINT_COLUMNS, CurveEstimate, measured_cells

CURVES_FILE = "response_curves.json"
"""The curves a command used, in its output folder (and, one key per file, in the cache)."""
CACHE_FOLDER = ".curves"
"""The implicit cache's folder, beside the output folders of a scenario."""
FORMAT = 1
"""The file format's version: a file of another format is not read."""
ENGINE_SOURCES = ("sim", "optimize/run/measure.py", "optimize/run/parallel.py", "optimize/allocation/curves.py")
"""The source whose digest is part of the key: the simulator, and how curves are measured and fitted."""
RUN_SETTINGS = ("scale", "queue_sample_calls", "estimation")
"""The ``run`` settings a measurement depends on."""


class CurveReuseError(ScenarioError):
    """Curves given with ``--curves`` cannot be used for this scenario and seed."""


@dataclass(frozen=True)
class MeasurementKey:
    """What a measurement depends on, part by part (each a digest), and the digest of them all."""

    parts: dict[str, str]
    digest: str


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def engine_digest() -> str:
    """The engine's version and a digest of its source files (computed once per process)."""
    return source_digest(ENGINE_SOURCES)


def measurement_key(scenario: Scenario, seed: int) -> MeasurementKey:
    """The key of ``scenario``'s curves measured on ``seed`` (see the module's description)."""
    data = scenario.model_dump(mode="json")
    for unused in ("strategies", "solver", "budget", "run"):
        data.pop(unused)
    data["meta"].pop("description", None)
    data["competitors"].pop("variants", None)
    for channel in data["channels"].values():
        channel.pop("capacity_per_month", None)
        channel.pop("description", None)
    parts: dict[str, str] = {}
    for section, value in data.items():
        if isinstance(value, dict) and section in ("tiers", "levers", "channels"):
            parts.update({f"{section}.{name}": _digest(item) for name, item in value.items()})
        else:
            parts[section] = _digest(value)
    if scenario.population is not None:
        parts["population files"] = _digest(table_digests(scenario))
    parts["budget.contact_policy"] = _digest(scenario.budget.contact_policy.model_dump(mode="json"))
    for setting in RUN_SETTINGS:
        parts[f"run.{setting}"] = _digest(getattr(scenario.run, setting) if setting != "estimation"
                                          else scenario.run.estimation.model_dump(mode="json"))
    design = sorted([*cell, top, beyond] for cell, (top, beyond) in measured_cells(scenario).items())
    parts["cells measured and their ceilings (budget, capacities)"] = _digest(design)
    parts["seed"] = str(seed)
    parts["engine"] = engine_digest()
    return MeasurementKey(parts, _digest(parts))


# --- the file ---------------------------------------------------------------------------------------

def estimate_record(label: str, key: MeasurementKey, estimate: CurveEstimate, scenario: Scenario) -> dict[str, Any]:
    """One estimate as it is written: its key and parts, its measured curves (stated ones are the
    scenario's), points, churn without retention and runs."""
    stated = stated_curves(scenario)
    curves = [{"cell": list(cell), "spends": list(c.spends), "values": list(c.values), "source": c.source,
               "fit_error": c.fit_error, "retained": list(c.retained) if c.retained is not None else None,
               "cost": c.cost} for cell, c in estimate.curves.items() if cell not in stated]
    points = estimate.points.to_dict(orient="records")
    return {"variant": label, "key": key.digest, "parts": key.parts, "runs": estimate.runs, "curves": curves,
            "points": points, "points_columns": list(estimate.points.columns),
            "churn": [[c.tier, c.churned_lines, c.line_months] for c in estimate.churn.values()]}


def estimate_from_record(record: dict[str, Any], scenario: Scenario, origin: str) -> CurveEstimate:
    """The estimate a record holds, with ``scenario``'s stated curves, marked as read from ``origin``."""
    curves: dict[Cell, ResponseCurve] = dict(stated_curves(scenario))
    for c in record["curves"]:
        cell = tuple(c["cell"])
        fit_error = None if c["fit_error"] is None else float(c["fit_error"])
        curves[cell] = ResponseCurve(*cell, tuple(c["spends"]), tuple(c["values"]), c["source"], fit_error=fit_error,
                                     retained=tuple(c["retained"]) if c["retained"] is not None else None,
                                     cost=c["cost"])
    columns = record.get("points_columns") or POINT_COLUMNS
    points = pd.DataFrame(record["points"], columns=columns)
    for column in columns:
        if column not in ("tier", "lever", "period"):
            points[column] = points[column].astype(float)
    churn = {tier: TierChurn(tier, float(lines), float(months)) for tier, lines, months in record["churn"]}
    return CurveEstimate(curves, points, churn, int(record["runs"]), reused_from=origin)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The estimates a curves file holds (raises ``ValueError`` or ``OSError`` when it cannot be read)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("estimates"), list):
        raise ValueError(f"not a curves file of format {FORMAT}")
    return data["estimates"]


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write a curves file whole or not at all."""
    # Floats are written as Python writes them (shortest exact form; NaN for an error not measured), so
    # curves read back are the very numbers measured.
    text = json.dumps({"format": FORMAT, "estimates": records}, indent=1, sort_keys=True) + "\n"
    return write_file(path, lambda stream: stream.write(text))


# --- what a command used, and where it looks ---------------------------------------------------------

@dataclass
class CurveUse:
    """One estimate a command used: its scenario's key and where it came from (``None``: measured now)."""

    label: str
    key: MeasurementKey
    estimate: CurveEstimate
    scenario: Scenario


@dataclass
class CurveStore:
    """Where a command finds curves measured before, and what it used.

    ``given``: a finished folder (``--curves``), checked strictly for the scenario itself; ``cache``: the
    implicit cache's folder (``None``: no cache); ``remeasure``: ignore the cache (and measure anew).
    ``say``: where to tell the planner that curves were reused.
    """

    given: Path | None = None
    cache: Path | None = None
    remeasure: bool = False
    say: Callable[[str], None] | None = None
    used: dict[str, CurveUse] = field(default_factory=dict)

    def find(self, scenario: Scenario, seed: int, label: str = "") -> CurveEstimate | None:
        """Curves measured before for ``scenario`` (``label``: '' or a competitor variant's name) on
        ``seed``, or ``None`` when they must be measured."""
        key = measurement_key(scenario, seed)
        what = f"variant '{label}'" if label else scenario.meta.name
        if self.given is not None:
            found = self._from_given(key, label)
            if found is not None:
                estimate = estimate_from_record(found, scenario, str(self.given / CURVES_FILE))
                self._tell(f"response curves of {what}: reused from {self.given} ({estimate.runs} runs not repeated)")
                return self._use(label, key, estimate, scenario)
        if self.cache is not None and not self.remeasure:
            path = self.cache / f"{key.digest}.json"
            if path.is_file():
                try:
                    records = [r for r in read_records(path) if r.get("key") == key.digest]
                except (ValueError, OSError):
                    records = []  # a damaged cache file is measured again, and replaced
                if records:
                    estimate = estimate_from_record(records[0], scenario, str(path))
                    self._tell(f"response curves of {what}: reused from the cache {path} ({estimate.runs} runs "
                               "not repeated; --remeasure measures them again)")
                    return self._use(label, key, estimate, scenario)
        return None

    def check(self, scenario: Scenario, seed: int) -> None:
        """Stop early, naming what differs, when the given folder holds no curves of ``scenario``."""
        if self.given is not None:
            self._from_given(measurement_key(scenario, seed), "")

    def keep(self, scenario: Scenario, seed: int, estimate: CurveEstimate, label: str = "", *,
             cache: bool = True) -> CurveEstimate:
        """Record curves just measured, and put them in the cache (unless ``cache`` is false)."""
        key = measurement_key(scenario, seed)
        self._use(label, key, estimate, scenario)
        if cache and self.cache is not None and estimate.runs > 0:
            write_records(self.cache / f"{key.digest}.json", [estimate_record(label, key, estimate, scenario)])
        return estimate

    def _use(self, label: str, key: MeasurementKey, estimate: CurveEstimate, scenario: Scenario) -> CurveEstimate:
        self.used[label] = CurveUse(label, key, estimate, scenario)
        return estimate

    def _tell(self, text: str) -> None:
        if self.say is not None:
            self.say(text)

    def _from_given(self, key: MeasurementKey, label: str) -> dict[str, Any] | None:
        """The record of the given folder with ``key``. For the scenario itself (label ''), none is an error
        naming what differs; a variant the folder lacks is measured."""
        assert self.given is not None
        path = self.given / CURVES_FILE
        if not path.is_file():
            raise CurveReuseError([Problem(str(self.given), None, None, (),
                                           f"holds no response curves (no {CURVES_FILE})",
                                           "give a folder written by 'retention run', 'optimize', 'frontier' or "
                                           "'goal', or leave out --curves to measure them")])
        try:
            records = read_records(path)
        except (ValueError, OSError) as exc:
            raise CurveReuseError([Problem(str(path), None, None, (), f"cannot be read ({exc})",
                                           "leave out --curves to measure the curves again")]) from None
        for record in records:
            if record.get("key") == key.digest:
                return record
        if label:
            return None
        mine = next((r for r in records if r.get("variant") == ""), records[0] if records else None)
        theirs = mine.get("parts", {}) if mine else {}
        differ = [name for name in dict.fromkeys([*key.parts, *theirs]) if key.parts.get(name) != theirs.get(name)]
        seed_note = ""
        if "seed" in differ:
            seed_note = f" (seed {theirs.get('seed', '?')} there, {key.parts['seed']} here)"
        raise CurveReuseError([Problem(str(path), None, None, (),
                                       "its curves were measured for another scenario or seed: they differ in "
                                       f"{', '.join(differ) or 'their key'}{seed_note}",
                                       "give the folder of a run of this scenario with this seed (--seed), or leave "
                                       "out --curves to measure the curves again")])

    # --- what the output folder and its manifest say ------------------------------------------------

    @property
    def runs_done(self) -> int:
        """Curve-measuring runs made now, for every estimate used (reused ones made none)."""
        return sum(use.estimate.runs_done for use in self.used.values())

    def manifest(self) -> dict[str, Any]:
        """The manifest's account of the curves: runs made now, and per estimate its key and origin."""
        return {"response_curve_runs": self.runs_done,
                "response_curves": {use.label or "scenario": {"key": use.key.digest, "runs_measured": use.estimate.runs,
                                                              "reused_from": use.estimate.reused_from}
                                    for use in self.used.values()}}

    def write(self, folder: Path) -> None:
        """Write the curves used into an output folder (for ``--curves`` later)."""
        records = [estimate_record(use.label, use.key, use.estimate, use.scenario) for use in self.used.values()
                   if use.estimate.runs > 0]
        if records:
            write_records(folder / CURVES_FILE, records)
