"""The benchmark's workload: the baseline market scaled to a size, and one retention allocation for it.

Scaling keeps the load per line comparable: every tier's lines (consumer) or accounts
(enterprise, lines per account unchanged), the competitors' lines, the hotline's agents,
the channels' and levers' monthly capacities and the retention budget all move by the
same factor. Only counts change; every rate, price, sensitivity and quality stays as
in ``scenarios/baseline.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from sim.allocation import Allocation
from sim.scenario import Scenario, read_yaml, validate_document

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.yaml"


def _baseline_lines(data: dict) -> int:
    def per_account(t: dict) -> float:
        return float(t["lines_per_account"]) if "lines_per_account" in t else float(t["account_size"]["mean"])

    return sum(int(t["lines"]) if "lines" in t else round(int(t["accounts"]) * per_account(t))
               for t in data["tiers"].values())


def scaled_baseline(lines: float, path: Path = BASELINE) -> tuple[Scenario, float]:
    """The baseline scenario scaled to about ``lines`` lines; returns it with the factor used.

    The YAML data is edited before validation, so the scaled scenario passes the same checks
    as a planner's file (tier sizes round to whole lines and accounts; at least one of each).
    """
    doc = read_yaml(path)
    data = copy.deepcopy(doc.data)
    factor = float(lines) / _baseline_lines(data)

    def whole(x: float) -> int:
        return max(1, int(round(x * factor)))

    for tier in data["tiers"].values():
        if "lines" in tier:
            tier["lines"] = whole(tier["lines"])
        else:
            tier["accounts"] = whole(tier["accounts"])
    for operator in data["market"]["operators"].values():
        if "lines" in operator:
            operator["lines"] = float(operator["lines"]) * factor
    for shift in data["contact_center"]["staffing"]:
        shift["agents"] = whole(shift["agents"])
    for channel in data.get("channels", {}).values():
        if "capacity_per_month" in channel:
            channel["capacity_per_month"] = float(channel["capacity_per_month"]) * factor
    budget = data["budget"]
    budget["total"] = float(budget["total"]) * factor
    if "per_period" in budget:
        budget["per_period"] = {p: float(v) * factor for p, v in budget["per_period"].items()}
    for bounds in budget.get("tiers", {}).values():
        for key in ("min", "max"):
            if key in bounds:
                bounds[key] = float(bounds[key]) * factor
    if "lever_capacity" in budget:
        budget["lever_capacity"] = {k: float(v) * factor for k, v in budget["lever_capacity"].items()}
    scenario = validate_document(dataclasses.replace(doc, data=data, file=f"{path.name} x{factor:.4g}"))
    return scenario, factor


def revenue_allocation(scenario: Scenario) -> Allocation:
    """Every valid tier x lever x period cell funded: each period's budget split across tiers in
    proportion to their monthly revenue (lines x ARPU), then evenly across the levers offered to
    the tier (the save desk included). Built through :meth:`Allocation.from_rows`, so every cell
    is checked against the scenario."""
    meta, budget = scenario.meta, scenario.budget
    revenue = {name: tier.line_count * tier.arpu for name, tier in scenario.tiers.items()}
    total_revenue = sum(revenue.values())
    # Each period gets its stated budget (or its share of the months), scaled down together
    # when the periods' budgets add up to more than the total.
    stated = {p.name: budget.per_period.get(p.name, budget.total * p.months / meta.horizon_months)
              for p in meta.periods}
    squeeze = min(1.0, budget.total / sum(stated.values())) if sum(stated.values()) > 0 else 0.0
    rows = []
    for period in meta.periods:
        money = stated[period.name] * squeeze
        for name in scenario.tiers:
            levers = [lv for lv, lever in scenario.levers.items() if not lever.tiers or name in lever.tiers]
            for lever in levers:
                rows.append({"tier": name, "lever": lever, "period": period.name,
                             "amount": money * revenue[name] / total_revenue / len(levers)})
    return Allocation.from_rows(rows, scenario, source="revenue-proportional allocation")


def allocation_summary(scenario: Scenario, allocation: Allocation) -> dict:
    """The allocation's size and whether it keeps the scenario's per-tier budget bounds."""
    by_tier: dict[str, float] = {}
    for (tier, _lever, _period), amount in allocation.amounts.items():
        by_tier[tier] = by_tier.get(tier, 0.0) + amount
    total = allocation.total
    bounds_kept = []
    for name, bounds in scenario.budget.tiers.items():
        got = by_tier.get(name, 0.0)
        ok = True
        for key, test in (("min", lambda b: got >= b), ("max", lambda b: got <= b),
                          ("min_share", lambda b: got >= b * total), ("max_share", lambda b: got <= b * total)):
            value = getattr(bounds, key, None)
            if value is not None and not test(value):
                ok = False
        bounds_kept.append({"tier": name, "allocated": got, "within_bounds": ok})
    return {"cells": len(allocation.amounts), "total": total, "tier_bounds": bounds_kept}
