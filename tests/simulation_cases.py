"""Scenarios built for tests of the simulator, each switching on only what a test needs."""

from __future__ import annotations

from sim.scenario import Scenario, parse_yaml, validate_document

QUIET_MARKET = """
meta: {name: quiet, horizon_months: %(horizon)d, periods: [{name: P1, months: %(horizon)d}]}
market:
  us: M
  operators:
    M: {network_quality: 0.85}
    T: {price_index: 0.9, network_quality: 0.8, lines: 0, monthly_churn: 0.0}
tiers:
  mass:
    lines: %(lines)d
    arpu: 80
    margin: 0.4
    baseline_churn: %(churn)s
    risk_spread: 0
    sensitivity: {price_gap: 0, network_gap: 0, satisfaction: 0, complaints: 0, out_of_contract: 0,
                  tenure: 0, competitor_pressure: 0}
    call_rate: 0
network:
  regions:
    all: {share: 1.0, quality: 0.85, outages_per_month: 0}
contact_center:
  staffing: [{from_month: 1, agents: 1}]
channels:
  calls: {capacity_per_month: 100000}
levers:
  credit: {channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.5}
budget: {total: 0}
"""


def from_text(text: str, name: str = "test-scenario.yaml") -> Scenario:
    return validate_document(parse_yaml(text.encode("utf-8"), name))


def constant_hazard(churn: float, lines: int, horizon: int) -> Scenario:
    """One tier whose hazard has no driver at all: every line leaves with probability ``churn`` each month."""
    return from_text(QUIET_MARKET % {"churn": churn, "lines": lines, "horizon": horizon})
