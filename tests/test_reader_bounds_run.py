"""A scenario that validates runs: drawn across the ranges the schema states, every one simulates.

Hypothesis draws scenarios whose every figure lies anywhere in its stated range -- ARPU and costs up
to the money bound, churn sensitivities of +-50, outages up to two a day and a month of outage-hours,
rivals of ten billion lines, a hotline of no agents or open for a minute a month, outages lasting all
month, up to 60 outages and 10 calls a line a month -- with tiny tiers over two or three months, and
runs each on one replication with the budget spread over every cell (the ``uniform`` rule). The
reader's bounds are right if no such run fails and no monthly figure is NaN or infinite.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from optimize.run.strategies import rule_allocation
from sim import engine
from sim.hotline import MAX_BURST_WINDOWS, MIN_BURST_CALLS, burst_groups
from sim.runner import simulate
from sim.scenario import ScenarioError, YamlDocument, validate_document
from sim.scenario.capacity import (
    HOURS_PER_MONTH,
    MAX_MONEY,
    MAX_OPERATOR_LINES,
    MAX_WAITING_CALLERS,
    hotline_waiting,
)
from sim.scenario.levers import DRIVERS

EXAMPLES = 20
SMALL_PILOT = {"PILOT_UNITS": 1_000, "PILOT_MINIMUM_UNITS": 200, "PILOT_MONTHS": 3, "PILOT_WARM_UP": 1,
               "PILOT_MAX_REPLICATIONS": 3, "PILOT_ROUNDS": 2}
"""The calibration's pilot runs, made small as the runs are: its 5,000 units of every tier over 27 months
are what make a run of a tiny tier take seconds; what it computes is the same."""
PROBABILITY = st.floats(0.0, 1.0)
SHARE_DRAWN = 0.05
"""Least share of its segment a tier holds: the rivals' lines in it can all join us in a run."""
CALLS_DRAWN = 10.0
"""Calls per line a month drawn: the schema's whole range (an account's calls follow from its lines)."""
OUTAGES_DRAWN = 60.0
"""Outages a month drawn per region: the schema's whole range, the hours per outage up to the month's
limit of outage-hours."""


def _spread(low: float, high: float) -> st.SearchStrategy[float]:
    """Anywhere in [low, high], the ends included, on a log scale where the range spans magnitudes."""
    if low > 0 and high / low > 1e3:
        return st.one_of(st.just(low), st.just(high), st.floats(math.log10(low), math.log10(high)).map(
            lambda e: min(high, max(low, 10.0**e))))
    return st.one_of(st.just(low), st.just(high), st.floats(low, high))


MONEY = st.one_of(st.just(0.0), _spread(1e-2, MAX_MONEY))


@st.composite
def _tier(draw: st.DrawFn, regions: list[str]) -> dict[str, Any]:
    churn = draw(_spread(1e-4, 0.5))
    tier: dict[str, Any] = {
        "arpu": draw(MONEY), "margin": draw(PROBABILITY), "baseline_churn": churn,
        "sensitivity": {k: draw(_spread(-50.0, 50.0)) for k in
                        ("price_gap", "network_gap", "satisfaction", "complaints", "out_of_contract", "tenure",
                         "competitor_pressure")},
        "risk_spread": draw(_spread(0.0, 4.0)), "risk_renewal": draw(PROBABILITY),
        "satisfaction": draw(PROBABILITY), "call_rate": draw(_spread(0.0, CALLS_DRAWN)),
        "contract": {"share": draw(PROBABILITY), "term_months": draw(st.integers(1, 60))},
        # Our share of the segment stated: by default it is our share against rivals of up to 10^10 lines,
        # and a tiny tier's segment (every line of which can switch to us) would outgrow a run.
        "market": {"leaving": draw(st.floats(0.0, churn)), "growth": draw(_spread(-0.5, 1.0)),
                   "share": draw(_spread(SHARE_DRAWN, 1.0))},
    }
    if draw(st.booleans()):
        tier["market"]["gross_adds"] = draw(st.one_of(
            st.builds(lambda s: {"share_of_new_lines": s}, PROBABILITY),
            st.builds(lambda n: {"lines": n}, st.floats(0.0, 200.0))))
    if len(regions) > 1 and draw(st.booleans()):
        tier["regions"] = {regions[0]: 0.5, regions[1]: 0.5}
    if draw(st.booleans()):
        tier["lines"] = draw(st.integers(1, 300))
    else:
        tier |= {"kind": "enterprise", "segment": "key_account", "accounts": draw(st.integers(1, 12)),
                 "partial_churn": draw(st.floats(0.0, 0.2))}
        if draw(st.booleans()):
            tier["lines_per_account"] = draw(st.integers(1, 40))
        else:
            low = draw(st.integers(1, 20))
            tier["account_size"] = {"min": low, "mean": low + draw(st.floats(0.5, 30.0)),
                                    "spread": draw(_spread(0.01, 3.0))}
    return tier


@st.composite
def _hotline(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """A hotline anywhere in its ranges, open long enough for the callers arriving within a caller's
    patience to stay within what the queue holds (the bound spans sections: the most lines the tiers
    may come to hold, their calls, the hotline's hours): drawn once the rest of the scenario is."""
    patience = draw(st.one_of(st.none(), _spread(0.01, 600.0)))
    hotline = {"staffing": [{"from_month": 1, "agents": draw(st.integers(0, 1000))}],
               "handling_minutes": draw(_spread(0.01, 600.0)), "patience_minutes": patience,
               "open_hours_per_month": HOURS_PER_MONTH}
    low = 0.01
    if patience is not None:
        # Waiting callers fall as the hours open grow: the fewest hours within the bound, from the most.
        widest = validate_document(YamlDocument("drawn.yaml", data | {"contact_center": hotline}, {}, {}))
        low = hotline_waiting(widest) * HOURS_PER_MONTH / MAX_WAITING_CALLERS * 1.01
        if low > HOURS_PER_MONTH:
            hotline["patience_minutes"], low = None, 0.01
    return hotline | {"open_hours_per_month": draw(_spread(low, HOURS_PER_MONTH))}


@st.composite
def _region(draw: st.DrawFn, share: float) -> dict[str, Any]:
    rate = draw(_spread(0.0, OUTAGES_DRAWN))
    hours = draw(_spread(0.01, min(720.0, HOURS_PER_MONTH / rate) if rate > 0 else 720.0))
    return {"share": share, "quality": draw(PROBABILITY), "outages_per_month": rate, "outage_hours": hours,
            "outage_severity": draw(PROBABILITY), "outage_quality_drop": draw(PROBABILITY),
            "outage_satisfaction_drop": draw(PROBABILITY), "outage_call_share": draw(PROBABILITY)}


def _cost(amount: float, share: float | None) -> Any:
    return {"share_of_arpu": share, "per": "line"} if share is not None else {"amount": amount, "per": "line"}


@st.composite
def _lever(draw: st.DrawFn, channels: list[str]) -> dict[str, Any]:
    lever: dict[str, Any] = {
        "channel": draw(st.sampled_from(channels)), "mode": draw(st.sampled_from(["proactive", "save_desk", "both"])),
        "acceptance": draw(PROBABILITY), "hazard_reduction": draw(PROBABILITY),
        "satisfaction_gain": draw(_spread(-1.0, 1.0)), "duration_months": draw(st.integers(1, 600)),
        "contract_extension_months": draw(st.integers(0, 60)), "backfire": draw(_spread(0.0, 10.0)),
    }
    for key in ("cost_per_contact", "cost_per_acceptance", "cost_per_line_month"):
        lever[key] = _cost(draw(MONEY), draw(st.one_of(st.none(), _spread(0.0, 10.0))))
    if draw(st.booleans()):
        lever["response"] = {"spread": draw(_spread(0.0, 3.0)), "risk_correlation": draw(_spread(-1.0, 1.0)),
                             "acceptance_by_risk": draw(_spread(-3.0, 3.0))}
    if draw(st.booleans()):
        lever["acts_on"] = draw(st.lists(st.sampled_from(DRIVERS), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        lever["policy"] = draw(st.sampled_from(["risk", "uplift", "value"]))
    return lever


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    horizon = draw(st.integers(2, 3))
    regions = [f"r{i}" for i in range(draw(st.integers(1, 3)))]
    shares = [1.0 / len(regions)] * len(regions)
    channels = ["calls", "sms"]
    tiers = {f"t{i}": draw(_tier(regions)) for i in range(draw(st.integers(1, 3)))}
    data: dict[str, Any] = {
        "meta": {"name": "drawn", "horizon_months": horizon, "discount_rate_annual": draw(PROBABILITY),
                 "terminal_value_months": draw(st.integers(0, 240))},
        "market": {"us": "M", "operators": {
            "M": {"network_quality": draw(PROBABILITY), "service_quality": draw(PROBABILITY)},
            "T": {"price_index": draw(_spread(0.01, 10.0)), "lines": draw(st.one_of(
                st.just(0.0), _spread(1.0, MAX_OPERATOR_LINES))), "brand": draw(_spread(-10.0, 10.0)),
                  "network_quality": draw(PROBABILITY), "service_quality": draw(PROBABILITY)}},
            "price_sensitivity_destination": draw(_spread(0.0, 50.0)),
            "quality_sensitivity_destination": draw(_spread(0.0, 50.0))},
        "tiers": tiers,
        "network": {"regions": {name: draw(_region(share)) for name, share in zip(regions, shares)}},
        "competitors": {"campaigns": [{"name": "cut", "operator": "T", "start_month": 1,
                                       "price_cut": draw(st.floats(0.0, 0.99)), "intensity": draw(PROBABILITY),
                                       "handset_subsidy": draw(MONEY)}]},
        "pricing": [{"month": horizon, "change": draw(st.floats(-0.99, 5.0).filter(lambda c: c != 0))}],
        "channels": {name: {"capacity_per_month": draw(st.one_of(st.just(0.0), _spread(1.0, 1e12)))}
                     for name in channels},
        "levers": {f"l{i}": draw(_lever(channels)) for i in range(draw(st.integers(1, 3)))},
        "targeting": {"model_auc": draw(_spread(0.5, 1.0)), "save_desk_reach": draw(PROBABILITY)},
        "budget": {"total": draw(MONEY)},
        "run": {"seed": draw(st.integers(0, 2**63 - 1)), "replications": 1, "queue_sample_calls": 100},
    }
    return data | {"contact_center": draw(_hotline(data))}


def _not_finite(frame: pd.DataFrame) -> list[str]:
    numbers = frame.select_dtypes(include="number")
    return [c for c in numbers if not np.isfinite(numbers[c].to_numpy(dtype=float)).all()]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_a_scenario_drawn_across_the_schemas_ranges_validates_and_runs_with_finite_results(data: dict[str, Any]) -> None:
    with warnings.catch_warnings(), patch.multiple(engine, **SMALL_PILOT):
        warnings.simplefilter("ignore")
        scenario = validate_document(YamlDocument("drawn.yaml", data, {}, {}))
        result = simulate(scenario, rule_allocation(scenario, "uniform"), replications=1)
    # Every figure is finite: an emptied tier keeps its last lines' satisfaction, a hotline of a few calls
    # still has a standard error of its mean wait.
    for name in ("monthly", "levers", "market", "contact_center", "cells"):
        frame = getattr(result, name)
        assert not _not_finite(frame), f"{name}: not finite in {_not_finite(frame)}"
    assert len(result.monthly) == scenario.meta.horizon_months * len(scenario.tiers)


def _at_the_limits(open_hours: float | None = None) -> dict[str, Any]:
    """Three regions of 60 outages a month, 10 calls a line a month, patient callers of an overloaded
    hotline: the schema's limits together, with tiers whose segments are twenty times their lines."""
    tier = {"arpu": 100.0, "margin": 0.5, "baseline_churn": 0.5, "sensitivity": {}, "satisfaction": 0.5,
            "call_rate": 10.0, "market": {"leaving": 0.0, "growth": 1.0, "share": 0.05}, "lines": 300}
    region = {"share": 1 / 3, "quality": 0.8, "outages_per_month": 60.0, "outage_hours": 12.4,
              "outage_severity": 1.0, "outage_call_share": 1.0}
    return {
        "meta": {"name": "limits", "horizon_months": 3},
        "market": {"us": "M", "operators": {"M": {}, "T": {"lines": 1e10}}},
        "tiers": {f"t{i}": tier for i in range(3)},
        "network": {"regions": {f"r{i}": region for i in range(3)}},
        "contact_center": {"staffing": [{"from_month": 1, "agents": 151}], "handling_minutes": 112.9,
                           "patience_minutes": 600.0, "open_hours_per_month": open_hours or HOURS_PER_MONTH},
        "channels": {"calls": {"capacity_per_month": 1e6}},
        "levers": {"l0": {"channel": "calls", "acceptance": 0.5, "hazard_reduction": 0.5, "cost_per_contact": 1.0}},
        "budget": {"total": 1e5},
        "run": {"seed": 1, "replications": 1, "queue_sample_calls": 100},
    }


def test_a_hotline_whose_segments_may_all_join_us_is_bounded_by_the_lines_it_may_come_to_hold() -> None:
    # 900 lines of 10 calls a month, in segments of 18,000 lines growing 100% a year: the queue's bound
    # counts the 18,000 (a price war can bring them all), not the 900 the run opens with.
    widest = validate_document(YamlDocument("limits.yaml", _at_the_limits(), {}, {}))
    by_lines_now = 900 * 10.0 / (HOURS_PER_MONTH * 60.0) * 600.0
    assert hotline_waiting(widest) > 18 * by_lines_now
    hours = hotline_waiting(widest) * HOURS_PER_MONTH / MAX_WAITING_CALLERS
    with pytest.raises(ScenarioError, match="callers could reach the hotline"):
        validate_document(YamlDocument("limits.yaml", _at_the_limits(hours * 0.99), {}, {}))


def test_a_month_of_outages_at_the_schemas_limits_simulates_a_bounded_sample_of_calls() -> None:
    # 180 outages a month: each burst alone would simulate at least MIN_BURST_CALLS (45,000 calls a
    # month); sharing MAX_BURST_WINDOWS windows, a month simulates its sample and at most 24 bursts' worth.
    hours = hotline_waiting(validate_document(YamlDocument("limits.yaml", _at_the_limits(), {}, {}))) \
        * HOURS_PER_MONTH / MAX_WAITING_CALLERS * 1.01
    with warnings.catch_warnings(), patch.multiple(engine, **SMALL_PILOT):
        warnings.simplefilter("ignore")
        scenario = validate_document(YamlDocument("limits.yaml", _at_the_limits(hours), {}, {}))
        result = simulate(scenario, rule_allocation(scenario, "uniform"), replications=1)
    bound = scenario.run.queue_sample_calls + MAX_BURST_WINDOWS * MIN_BURST_CALLS
    simulated = result.contact_center["simulated_calls"]
    # Each window's calls are Poisson about their mean: five standard deviations of the bound.
    assert (simulated <= bound + 5 * math.sqrt(bound)).all(), simulated.tolist()
    assert (result.contact_center["calls"] > 5 * bound).all()
    assert not _not_finite(result.contact_center)


def test_bursts_share_windows_by_load_whatever_their_order() -> None:
    rng = np.random.default_rng(5)
    few = burst_groups([3.0, 0.0, 5.0], [60.0, 60.0, 90.0], base_rate=0.0)
    assert few == [(1, [0]), (3, [2])]  # a burst of no calls at no normal load has no window
    calls, minutes = rng.poisson(20.0, 200).astype(float).tolist(), rng.uniform(60.0, 900.0, 200).tolist()
    groups = burst_groups(calls, minutes, base_rate=1.0)
    assert len(groups) == MAX_BURST_WINDOWS
    assert sorted(b for _, members in groups for b in members) == list(range(200))
    loads = [[calls[b] / minutes[b] for b in members] for _, members in groups]
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(loads))  # neighbouring loads share a window
    order = rng.permutation(200)
    shuffled = burst_groups([calls[i] for i in order], [minutes[i] for i in order], base_rate=1.0)
    assert [sorted(order[b] for b in members) for _, members in shuffled] == \
        [sorted(members) for _, members in groups]
