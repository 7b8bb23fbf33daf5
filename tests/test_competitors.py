"""Competitors in motion: answers to our moves compound into a price war."""

from __future__ import annotations

import math

import pytest

from sim.competition import Competition, segment_month
from sim.price_game import Player, best_responses
from sim.scenario import Scenario, load_scenario
from sim.scenario.competition import BestResponse, Competitors, Offer, Reaction

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


# --- strategic rivals --------------------------------------------------------------------------------


def test_best_response_dynamics_reach_the_hand_computed_equilibrium() -> None:
    # Two rivals choose a cut of 0, 10% or 20%; payoffs of a price game with a unique pure equilibrium at
    # (10%, 10%), found by hand: against 10%, A earns 9 with 0, 10 with 10%, 7 with 20% (and B alike), so
    # neither moves. From (0, 0) the dynamics move A to 20% (its best answer to 0), B to 10%, A to 10%.
    table = {0.0: {0.0: 8.0, 0.1: 9.0, 0.2: 6.0},
             0.1: {0.0: 10.5, 0.1: 10.0, 0.2: 7.0},
             0.2: {0.0: 11.0, 0.1: 7.0, 0.2: 5.0}}  # table[own cut][other's cut]

    def payoff(cuts: dict[str, float], player: Player) -> float:
        other = cuts["b" if player.rule == "a" else "a"]
        return table[cuts[player.rule]][other]

    players = [Player("a", "U", (0.0, 0.1, 0.2)), Player("b", "T", (0.0, 0.1, 0.2))]
    found = best_responses(players, payoff, rounds=10)
    assert found.settled and found.cuts == {"a": 0.1, "b": 0.1}
    # The listing order does not matter: players answer in the order of their rules' names.
    assert best_responses(players[::-1], payoff, rounds=10) == found
    # Stopped after one round, the choices stand as they are (not an equilibrium yet).
    early = best_responses(players, payoff, rounds=1)
    assert not early.settled and early.cuts == {"a": 0.2, "b": 0.1}


def _without_campaigns(name: str) -> Scenario:
    scenario = load_scenario(SCENARIOS / name)
    return scenario.model_copy(update={"competitors": Competitors()})


def test_a_market_at_rest_forecasts_every_margin_by_hand() -> None:
    # At rest the segments hold still, so each operator's margin over a year is its lines times its margin
    # per line (ARPU times its price less its cost at list) summed over twelve discounted months.
    scenario = _without_campaigns("price_war.yaml")
    competition = Competition.start(scenario)
    margins = competition.forecast([], {"households"}, 1, 12)
    tier = scenario.tiers["households"]
    d = 1.0 / (1.0 + scenario.meta.monthly_discount_rate)
    annuity = sum(d ** t for t in range(12))
    for k, lines in competition.pools["households"].items():
        op = scenario.market.operators[k]
        by_hand = lines * tier.arpu * op.price_index * op.margin * annuity
        assert margins[k] == pytest.approx(by_hand, rel=1e-9)
    assert margins["M"] == pytest.approx(tier.lines * tier.arpu * tier.margin * annuity, rel=1e-9)


def _strategic_t(scenario: Scenario, destination: float, gap: float) -> Scenario:
    reaction = Reaction(name="t_best", operator="T", trigger="our_price_cut", threshold=0.05, tiers=("households",),
                        best_response=BestResponse(cuts=(0.0, 0.05, 0.10, 0.15, 0.20), horizon_months=24),
                        response=Offer(), lag_months=1, duration_months=12, max_times=1)
    tiers = dict(scenario.tiers)
    households = tiers["households"]
    tiers["households"] = households.model_copy(
        update={"sensitivity": households.sensitivity.model_copy(update={"price_gap": gap})})
    market = scenario.market.model_copy(update={"price_sensitivity_destination": destination})
    return scenario.model_copy(update={"competitors": Competitors(reactions=(reaction,)), "tiers": tiers,
                                       "market": market})


@pytest.mark.parametrize(("destination", "gap", "cuts"), [(3.0, 2.0, False), (25.0, 12.0, True)])
def test_a_strategic_rival_takes_the_cut_that_pays_it_best(destination: float, gap: float, cuts: bool) -> None:
    # After our 10% cut, T weighs each cut by its margin over two years. Where customers barely move for
    # price, a cut only gives away revenue on its whole base: it holds. Where they move readily, winning
    # and keeping lines pays for the cut.
    scenario = _strategic_t(_without_campaigns("price_war.yaml"), destination, gap)
    competition = Competition.start(scenario)
    before = [*competition.offers]
    competition.our_price_move(("households",), 5, -0.10)
    chosen = competition.offers[-1]
    # The choice is the best candidate of the forecast, each weighed alone (one strategic rival).
    rule = scenario.competitors.reactions[0]
    weighed = {cut: competition.forecast(before + [Competition._answer(rule, {"households"}, cut, 5)],
                                         {"households"}, 5, 24)["T"] for cut in rule.best_response.cuts}
    assert chosen.price_cut == max(weighed, key=lambda c: (weighed[c], -c))
    assert (chosen.price_cut > 0) == cuts
    assert "best response" in str(competition.log[-1]["why"])


def test_rivals_price_cuts_move_the_flows_between_them() -> None:
    # A rival that cuts its price keeps more of its lines and wins more of the others' switchers.
    scenario = _without_campaigns("price_war.yaml")
    rest = Competition.start(scenario)
    pool = dict(rest.pools["households"])
    terms = {k: (scenario.market.operators[k].price_index, 0.0) for k in scenario.market.competitors}
    calm, _ = segment_month(scenario, "households", pool, rest.switching["households"], terms, 1.0, {}, 0.0, 0.0)
    cheaper = {**terms, "U": (terms["U"][0] * 0.8, 0.0)}
    war, won = segment_month(scenario, "households", pool, rest.switching["households"], cheaper, 1.0, {}, 0.0, 0.0)
    _, won_calm = segment_month(scenario, "households", pool, rest.switching["households"], terms, 1.0, {}, 0.0,
                                0.0)
    assert war["U"] > calm["U"] and war["T"] < calm["T"] and won < won_calm


def test_a_switching_rate_moved_far_on_the_logit_scale_saturates_instead_of_overflowing() -> None:
    from sim.competition import _shifted

    # A hand-computed shift: 2% moved by +0.3 on the logit scale.
    odds = 0.02 / 0.98 * math.exp(0.3)
    assert _shifted(0.02, 0.3) == pytest.approx(odds / (1 + odds), rel=1e-12)
    # A steep sensitivity times a wide price gap: the odds would overflow; the rate goes to its ends.
    assert _shifted(0.02, 50.0 * 20.0) == 1.0
    assert _shifted(0.02, -50.0 * 20.0) == 0.0
    assert _shifted(0.0, 5.0) == 0.0 and _shifted(1.0, -5.0) == 1.0
