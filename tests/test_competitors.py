"""Competitors in motion: answers to our moves compound into a price war."""

from __future__ import annotations

import pytest

from sim.competition import Competition
from sim.scenario import load_scenario

from .conftest import SCENARIOS


def test_answers_to_two_cuts_compound_on_the_rivals_price() -> None:
    # We cut households' price by 10% twice; U matches each cut two months later. Its price, 0.85 of
    # ours at list, is then 0.85 * 0.9 * 0.9 = 0.6885 while both answers run (hand-computed), not
    # 0.765 (the deeper of the two cuts alone).
    scenario = load_scenario(SCENARIOS / "price_war.yaml")
    scenario = scenario.model_copy(update={"competitors": scenario.competitors.model_copy(update={"campaigns": ()})})
    competition = Competition.start(scenario)
    competition.our_price_move(("households",), 5, -0.10)
    competition.our_price_move(("households",), 6, -0.10)
    assert competition.offer_terms("households", 7)["U"][0] == pytest.approx(0.85 * 0.9)
    assert competition.offer_terms("households", 8)["U"][0] == pytest.approx(0.85 * 0.9 * 0.9)
    # Our own price: 0.81 of list; the gap the hazard sees is ours less the best rival's.
    view = competition.view("households", 8)
    assert view.price_gap == pytest.approx(0.9 * 0.9 - min(0.85 * 0.9 * 0.9, 0.92))
    # When the first answer ends (nine months after month 7), only the second runs.
    assert competition.offer_terms("households", 16)["U"][0] == pytest.approx(0.85 * 0.9)
