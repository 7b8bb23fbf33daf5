"""Checks that read the whole scenario: what sections say to each other.

Each section validates itself; some mistakes only show when two sections are read together. A
budget's stated response curve may name a lever that ``levers`` does not offer to that tier: the
optimizer would fund the cell, and the simulator would then refuse the optimizer's own plan. Those
are errors. Other things load but will not happen as written -- period budgets that add up to less
than the total, a key the engine ignores where it is written -- and are warnings: the scenario
runs, and the planner is told what it will do instead.

A :class:`Finding` carries its key path from the top of the scenario, so the loader can give it
the line of the file it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import KeyPath

if TYPE_CHECKING:
    from .model import Scenario


@dataclass(frozen=True)
class Finding:
    """One thing the sections of a scenario say to each other that is wrong or will not happen."""

    at: KeyPath
    """Key path from the top of the scenario."""
    message: str
    hint: str


def _offered(scenario: Scenario, tier: str, lever: str) -> bool:
    # The rule the simulator applies to an allocation's rows (sim.allocation).
    return scenario.levers[lever].reaches(tier)


def _offered_to(scenario: Scenario, lever: str) -> str:
    return ", ".join(scenario.levers[lever].tiers) or "every tier"


def errors(scenario: Scenario) -> list[Finding]:
    """Budget cells the levers do not allow, and stated curves that overlap."""
    found = []
    budget = scenario.budget
    for i, curve in enumerate(budget.response_curves):
        if not _offered(scenario, curve.tier, curve.lever):
            found.append(Finding(
                ("budget", "response_curves", i, "lever"),
                f"a response curve for lever '{curve.lever}' in tier '{curve.tier}', which the lever is not "
                f"offered to (levers.{curve.lever}.tiers: {_offered_to(scenario, curve.lever)}); the optimizer "
                "would fund the cell and the simulator refuse the plan",
                f"add '{curve.tier}' to levers.{curve.lever}.tiers, or remove the curve"))
    for i, cell in enumerate(budget.locked):
        if not _offered(scenario, cell.tier, cell.lever):
            found.append(Finding(
                ("budget", "locked", i, "lever"),
                f"a locked amount for lever '{cell.lever}' in tier '{cell.tier}', which the lever is not offered "
                f"to (levers.{cell.lever}.tiers: {_offered_to(scenario, cell.lever)})",
                f"add '{cell.tier}' to levers.{cell.lever}.tiers, or remove the locked cell"))
    first: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
    for i, curve in enumerate(budget.response_curves):
        earlier = first.setdefault((curve.tier, curve.lever), [])
        for j, period in earlier:
            if period is None or curve.period is None or period == curve.period:
                where = f"period {curve.period or period}" if (curve.period or period) else "every period"
                found.append(Finding(
                    ("budget", "response_curves", i),
                    f"the curve of tier '{curve.tier}' x lever '{curve.lever}' in {where} is stated twice: here "
                    f"and in budget.response_curves[{j}]",
                    "keep one of them (a curve without 'period' applies to every period; give each curve its own "
                    "period to state them period by period)"))
                break
        earlier.append((i, curve.period))
    return found


_COMPETITORS_ONLY = {
    "lines": "our lines are the tiers' lines",
    "monthly_churn": "our churn is each tier's baseline_churn",
    "margin": "our margin is each tier's margin",
}
"""Keys of an operator that only a competitor's entry uses, and what counts for us instead."""


def warnings(scenario: Scenario) -> list[Finding]:
    """What the scenario says that will not happen as written."""
    found = []
    budget = scenario.budget
    periods = [p.name for p in scenario.meta.periods]
    if periods and all(p in budget.per_period for p in periods):
        reachable = sum(budget.per_period[p] for p in periods)
        if reachable < budget.total * (1 - 1e-12):
            found.append(Finding(
                ("budget", "per_period"),
                f"the period budgets add up to {reachable:,.0f}, less than budget.total ({budget.total:,.0f}): "
                f"{budget.total - reachable:,.0f} can never be spent",
                f"raise the period budgets to add up to the total, or lower budget.total to {reachable:,.0f}"))
    us = scenario.market.us
    ours = scenario.market.operators[us]
    defaults = type(ours).model_fields
    for key, instead in _COMPETITORS_ONLY.items():
        if key in ours.model_fields_set and getattr(ours, key) != defaults[key].default:
            found.append(Finding(
                ("market", "operators", us, key),
                f"'{key}' is ignored on our own operator ({us}): {instead}",
                "remove it here (it is read for competitors only)"))
    return found
