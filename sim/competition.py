"""Competitors in motion: scheduled campaigns, reactive rules, and where churners go.

Each month every competitor puts an offer in front of each of our tiers: its
list price (relative to ours) cut by any active campaign or reaction, a handset
subsidy, and marketing intensity. From these the tier sees the best competitor
offer (the price gap in the hazard) and the combined pressure; churners choose
their new operator by a multinomial logit over the competitors' offers.

Reactive rules watch our moves: when we cut a tier's price by at least the
rule's threshold, the rival answers after its lag (a price war when both keep
answering); a rival that loses market share can answer too.

The market is held per tier: each tier of ours faces its own slice of every rival's base (a
rival's lines split over our tiers in proportion to their lines). Our churners from a tier join
the rivals' slices of that tier; the rivals' churners of a tier's slice who choose us come back to
that tier (``win_back_share`` of them; the others stay where they are). Retaining lines in one tier therefore never moves another tier's
inflow, and flows between rivals are their expected values (no draw, no noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .hazard import MarketView
from .scenario import Scenario
from .scenario.competition import Offer

SUBSIDY_MONTHS = 24
"""A handset subsidy is valued as a monthly price cut over a typical contract."""


@dataclass
class ActiveOffer:
    """A campaign or a fired reaction, as it applies month by month."""

    name: str
    operator: str
    tiers: frozenset[str]
    price_cut: float
    handset_subsidy: float
    intensity: float
    start: int
    end: int
    """Last month it runs."""

    def applies(self, tier: str, month: int) -> bool:
        return self.start <= month <= self.end and (not self.tiers or tier in self.tiers)


@dataclass
class Competition:
    """The competitors' state over a run: their offers, reactions fired and their bases."""

    scenario: Scenario
    offers: list[ActiveOffer] = field(default_factory=list)
    fired: dict[str, int] = field(default_factory=dict)
    our_price: dict[str, float] = field(default_factory=dict)
    """Our price per tier relative to the list price at the start (1 = unchanged)."""
    pools: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per tier of ours, each competitor's lines in that tier's slice of the market."""
    initial_share: dict[str, float] = field(default_factory=dict)
    log: list[dict[str, object]] = field(default_factory=list)
    """What happened: campaigns and reactions with their months, for the report."""

    @classmethod
    def start(cls, scenario: Scenario) -> "Competition":
        comp = cls(scenario)
        for c in scenario.competitors.campaigns:
            comp.offers.append(ActiveOffer(c.name, c.operator, frozenset(c.tiers), c.price_cut, c.handset_subsidy,
                                           c.intensity, c.start_month, c.start_month + c.duration_months - 1))
        comp.our_price = {name: 1.0 for name in scenario.tiers}
        weights = {name: float(t.line_count) for name, t in scenario.tiers.items()}
        total = sum(weights.values())
        comp.pools = {tier: {k: scenario.market.operators[k].lines * w / total for k in scenario.market.competitors}
                      for tier, w in weights.items()}
        return comp

    @property
    def lines(self) -> dict[str, float]:
        """Each competitor's lines in the market (over every tier's slice)."""
        return {k: sum(pool[k] for pool in self.pools.values()) for k in self.scenario.market.competitors}

    def set_initial_shares(self, our_lines: float) -> None:
        lines = self.lines
        total = our_lines + sum(lines.values())
        self.initial_share = {k: v / total for k, v in lines.items()} if total else {}

    def flows(self, tier: str, month: int, our_churners: dict[str, float]) -> float:
        """One month of the market in ``tier``'s slice: each competitor loses its churners, to us (the
        lines returned, expected) or to the other competitors, and gains ``our_churners``."""
        market = self.scenario.market
        pool = self.pools[tier]
        win_back = self.scenario.tiers[tier].win_back_share
        moves = {k: our_churners.get(k, 0.0) for k in pool}
        won = 0.0
        for k, lines in pool.items():
            out = lines * market.operators[k].monthly_churn
            if out <= 0:
                continue
            moves[k] -= out
            for dest, share in self.switching_shares(k, self.our_price[tier], month).items():
                if dest == market.us:
                    won += out * share * win_back
                    moves[k] += out * share * (1.0 - win_back)  # those the tier does not take stay put
                else:
                    moves[dest] += out * share
        for k in pool:
            pool[k] = max(0.0, pool[k] + moves[k])
        return won

    def our_price_move(self, tiers: tuple[str, ...], month: int, change: float) -> None:
        """Apply a tariff move of ours and let the rivals' rules answer it."""
        moved = tiers or tuple(self.scenario.tiers)
        for tier in moved:
            self.our_price[tier] *= 1.0 + change
        if change >= 0:
            return
        for rule in self.scenario.competitors.reactions:
            if rule.trigger != "our_price_cut" or -change < rule.threshold:
                continue
            watched = set(rule.tiers) & set(moved) if rule.tiers else set(moved)
            if watched:
                cut = -change if rule.match_our_cut else rule.response.price_cut
                self._fire(rule.name, rule.operator, watched, rule.response, cut, month + rule.lag_months,
                           rule.duration_months, rule.max_times, f"answers our {-change:.0%} cut")

    def watch_shares(self, our_lines: float, month: int) -> None:
        lines = self.lines
        total = our_lines + sum(lines.values())
        for rule in self.scenario.competitors.reactions:
            if rule.trigger != "share_loss" or total <= 0:
                continue
            share = lines[rule.operator] / total
            busy = any(o.name == rule.name and o.end >= month for o in self.offers)
            if not busy and self.initial_share.get(rule.operator, 0.0) - share >= rule.threshold:
                tiers = set(rule.tiers) if rule.tiers else set(self.scenario.tiers)
                self._fire(rule.name, rule.operator, tiers, rule.response, rule.response.price_cut,
                           month + rule.lag_months, rule.duration_months, rule.max_times,
                           f"share fell {self.initial_share[rule.operator] - share:.1%} points")

    def _fire(self, name: str, operator: str, tiers: set[str], response: Offer, cut: float, start: int,
              duration: int, max_times: int, why: str) -> None:
        if self.fired.get(name, 0) >= max_times:
            return
        self.fired[name] = self.fired.get(name, 0) + 1
        self.offers.append(ActiveOffer(name, operator, frozenset(tiers), min(cut, 0.95), response.handset_subsidy,
                                       response.intensity, start, start + duration - 1))
        self.log.append({"month": start, "operator": operator, "rule": name, "tiers": ",".join(sorted(tiers)),
                         "price_cut": cut, "why": why})

    def offer_terms(self, tier: str, month: int) -> dict[str, tuple[float, float]]:
        """Per competitor: (effective relative price, intensity) that ``tier`` sees in ``month``."""
        arpu = self.scenario.tiers[tier].arpu
        terms = {}
        for k in self.scenario.market.competitors:
            cut, subsidy, intensity = 0.0, 0.0, 0.0
            for offer in self.offers:
                if offer.operator == k and offer.applies(tier, month):
                    cut = max(cut, offer.price_cut)
                    subsidy = max(subsidy, offer.handset_subsidy)
                    intensity = 1.0 - (1.0 - intensity) * (1.0 - offer.intensity)
            price = self.scenario.market.operators[k].price_index * (1.0 - cut)
            if arpu > 0:
                price -= subsidy / (SUBSIDY_MONTHS * arpu)
            terms[k] = (price, intensity)
        return terms

    def view(self, tier: str, month: int) -> MarketView:
        terms = self.offer_terms(tier, month)
        best_price = min(price for price, _ in terms.values())
        pressure = 1.0 - float(np.prod([1.0 - intensity for _, intensity in terms.values()]))
        best_quality = max(self.scenario.market.operators[k].network_quality for k in terms)
        return MarketView(price_gap=self.our_price[tier] - best_price, best_quality=best_quality, pressure=pressure)

    def destination_shares(self, tier: str, month: int) -> np.ndarray:
        """Where this tier's churners go: multinomial-logit shares over the competitors."""
        market = self.scenario.market
        terms = self.offer_terms(tier, month)
        utility = np.array([market.operators[k].brand - market.price_sensitivity_destination * price
                            + market.quality_sensitivity_destination * market.operators[k].network_quality
                            + intensity for k, (price, intensity) in terms.items()])
        weights = np.exp(utility - utility.max())
        return weights / weights.sum()

    def switching_shares(self, source: str, our_price: float, month: int) -> dict[str, float]:
        """Where a competitor's churners go (us included): the same logit, at its list terms."""
        market = self.scenario.market
        options = [k for k in market.operators if k != source]
        utility = []
        for k in options:
            op = market.operators[k]
            price = our_price if k == market.us else op.price_index
            utility.append(op.brand - market.price_sensitivity_destination * price
                           + market.quality_sensitivity_destination * op.network_quality)
        u = np.array(utility)
        w = np.exp(u - u.max())
        return dict(zip(options, w / w.sum()))
