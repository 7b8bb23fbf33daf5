"""Competitors in motion: scheduled campaigns, reactive rules, and where churners go.

Each month every competitor puts an offer in front of each of our tiers: its
list price (relative to ours) cut by any active campaign or reaction, a handset
subsidy, and marketing intensity. From these the tier sees the best competitor
offer (the price gap in the hazard) and the combined pressure; churners choose
their new operator by a multinomial logit over the competitors' offers.

Reactive rules watch our moves: when we cut a tier's price by at least the
rule's threshold, the rival answers after its lag, cutting the price it already
charges (answers compound: a price war escalates when both keep answering); a
rival that loses market share can answer too. A strategic rival chooses its cut
as a best response for its own margin (:mod:`sim.price_game`), projecting the
segments with :meth:`Competition.forecast`; every operator's revenue and margin
are recorded month by month with one formula (:func:`line_margin`).

The market is held per segment: each tier of ours faces its own segment of the market, with our
share of it (``tiers.*.market.share``, by default our share of the whole market) and the rivals
holding the rest in proportion to their lines. A segment's lines move within it: our switchers join
its rivals, its rivals' switchers who choose us join that tier (enterprise lines stay enterprise
lines). Each month a share of every operator's lines leaves the market (``leaving``) and the market
replaces them with new lines, plus its growth; our share of the new lines is our gross adds (the
business plan, ``gross_adds``), the rivals take the rest in proportion to their lines.

Unless a rival's churn is stated, it is solved per segment so that the segment is at rest under
reference conditions (list prices, no campaign, our stated churn): its switchers to us replace ours
to the rivals, and every operator's lines and share stay where they are (:func:`rest_switching`).
Anything that moves our churn (a crisis, a campaign, retention) then moves the flows, and the
shares with them. Prices move them too: a rival's switchers choose among the others at the month's
prices (the same logit as ours), and a rival priced further above its cheapest alternative than at
rest loses more of its lines, with the segment's ``price_gap`` sensitivity. Retaining lines in one
tier never moves another tier's inflow, and flows between rivals are their expected values (no draw,
no noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .hazard import MarketView
from .price_game import Player, best_responses
from .scenario import Scenario
from .scenario.competition import Reaction

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
    answer: bool = False
    """A reaction's answer to a move (it cuts the running price), not a scheduled campaign."""

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
    """Per tier of ours, each competitor's lines in that tier's segment of the market."""
    switching: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per tier of ours, each competitor's monthly switchers as a share of its lines in the segment
    (its churn less the lines leaving the market)."""
    initial_share: dict[str, float] = field(default_factory=dict)
    ours: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per tier, our lines and monthly churn as last seen (what a strategic rival reads of us)."""
    log: list[dict[str, object]] = field(default_factory=list)
    """What happened: campaigns and reactions with their months, for the report."""

    @classmethod
    def start(cls, scenario: Scenario) -> Competition:
        comp = cls(scenario)
        for c in scenario.competitors.campaigns:
            comp.offers.append(ActiveOffer(c.name, c.operator, frozenset(c.tiers), c.price_cut, c.handset_subsidy,
                                           c.intensity, c.start_month, c.start_month + c.duration_months - 1))
        comp.our_price = {name: 1.0 for name in scenario.tiers}
        comp.pools = segment_pools(scenario)
        comp.switching = {tier: rest_switching(scenario, tier, comp.pools[tier]) for tier in scenario.tiers}
        comp.ours = {name: (float(t.line_count), t.baseline_churn) for name, t in scenario.tiers.items()}
        return comp

    def observe(self, tier: str, lines: float, churn: float) -> None:
        """Our lines and churn in ``tier`` this month, as the rivals see them."""
        self.ours[tier] = (lines, churn)

    @property
    def lines(self) -> dict[str, float]:
        """Each competitor's lines in the market (over every tier's slice)."""
        return {k: sum(pool[k] for pool in self.pools.values()) for k in self.scenario.market.competitors}

    def set_initial_shares(self, our_lines: float) -> None:
        lines = self.lines
        total = our_lines + sum(lines.values())
        self.initial_share = {k: v / total for k, v in lines.items()} if total else {}

    def new_lines(self, tier: str, month: int, our_lines: float) -> tuple[float, float]:
        """The segment's new lines this month and ours among them (the plan's, or our share of them)."""
        return new_lines(self.scenario, tier, month, our_lines, self.pools[tier])

    def flows(self, tier: str, month: int, our_switchers: dict[str, float], our_new: float, new: float) -> float:
        """One month of the market in ``tier``'s segment (:func:`segment_month`); returns the lines we win."""
        self.pools[tier], won = segment_month(self.scenario, tier, self.pools[tier], self.switching[tier],
                                              self.offer_terms(tier, month), self.our_price[tier],
                                              our_switchers, new, our_new)
        return won

    def margins(self, tier: str, month: int) -> dict[str, tuple[float, float]]:
        """Each rival's revenue and margin this month from its lines in ``tier``'s segment."""
        arpu = self.scenario.tiers[tier].arpu
        operators = self.scenario.market.operators
        running = self.running_prices(tier, month)
        return {k: (lines * arpu * running[k],
                    lines * line_margin(arpu, running[k], operators[k].price_index, operators[k].margin))
                for k, lines in self.pools[tier].items()}

    def our_price_move(self, tiers: tuple[str, ...], month: int, change: float) -> None:
        """Apply a tariff move of ours and let the rivals' rules answer it."""
        moved = tiers or tuple(self.scenario.tiers)
        for tier in moved:
            self.our_price[tier] *= 1.0 + change
        if change >= 0:
            return
        strategic: list[tuple[Reaction, set[str], str]] = []
        for rule in self.scenario.competitors.reactions:
            if rule.trigger != "our_price_cut" or -change < rule.threshold:
                continue
            watched = set(rule.tiers) & set(moved) if rule.tiers else set(moved)
            if not watched:
                continue
            why = f"answers our {-change:.0%} cut"
            if rule.best_response is not None:
                strategic.append((rule, watched, why))
            else:
                cut = -change if rule.match_our_cut else rule.response.price_cut
                self._fire(rule, watched, cut, month, why)
        self._answer_strategically(strategic, month)

    def watch_shares(self, our_lines: float, month: int) -> None:
        lines = self.lines
        total = our_lines + sum(lines.values())
        strategic: list[tuple[Reaction, set[str], str]] = []
        for rule in self.scenario.competitors.reactions:
            if rule.trigger != "share_loss" or total <= 0:
                continue
            share = lines[rule.operator] / total
            busy = any(o.name == rule.name and o.end >= month for o in self.offers)
            if not busy and self.initial_share.get(rule.operator, 0.0) - share >= rule.threshold:
                tiers = set(rule.tiers) if rule.tiers else set(self.scenario.tiers)
                why = f"share fell {self.initial_share[rule.operator] - share:.1%} points"
                if rule.best_response is not None:
                    strategic.append((rule, tiers, why))
                else:
                    self._fire(rule, tiers, rule.response.price_cut, month, why)
        self._answer_strategically(strategic, month)

    def _answer_strategically(self, strategic: list[tuple[Reaction, set[str], str]], month: int) -> None:
        """The rules that fired this month with a best response choose their cuts together (an equilibrium
        among them, given our moves and every other running offer), then fire."""
        live = [(rule, tiers, why) for rule, tiers, why in strategic if self.fired.get(rule.name, 0) < rule.max_times]
        if not live:
            return
        rules = {rule.name: (rule, tiers) for rule, tiers, _ in live}
        players = [Player(rule.name, rule.operator, tuple(rule.best_response.cuts))  # type: ignore[union-attr]
                   for rule, _, _ in live]

        def payoff(cuts: dict[str, float], player: Player) -> float:
            rule, tiers = rules[player.rule]
            answers = [self._answer(rules[name][0], rules[name][1], cut, month) for name, cut in cuts.items()]
            horizon = rule.best_response.horizon_months  # type: ignore[union-attr]
            return self.forecast(self.offers + answers, tiers, month, horizon)[player.operator]

        rounds = max(rule.best_response.rounds for rule, _, _ in live)  # type: ignore[union-attr]
        chosen = best_responses(players, payoff, rounds)
        for rule, tiers, why in live:
            settled = "an equilibrium" if chosen.settled else f"its choice after {chosen.rounds} rounds"
            self._fire(rule, tiers, chosen.cuts[rule.name], month,
                       f"{why}; best response for its margin ({settled})")

    @staticmethod
    def _answer(rule: Reaction, tiers: set[str], cut: float, month: int) -> ActiveOffer:
        start = month + rule.lag_months
        return ActiveOffer(rule.name, rule.operator, frozenset(tiers), min(cut, 0.95), rule.response.handset_subsidy,
                           rule.response.intensity, start, start + rule.duration_months - 1, answer=True)

    def _fire(self, rule: Reaction, tiers: set[str], cut: float, month: int, why: str) -> None:
        if self.fired.get(rule.name, 0) >= rule.max_times:
            return
        self.fired[rule.name] = self.fired.get(rule.name, 0) + 1
        answer = self._answer(rule, tiers, cut, month)
        self.offers.append(answer)
        self.log.append({"month": answer.start, "operator": rule.operator, "rule": rule.name,
                         "tiers": ",".join(sorted(tiers)), "price_cut": answer.price_cut, "why": why})

    def forecast(self, offers: list[ActiveOffer], tiers: set[str], month: int, months: int) -> dict[str, float]:
        """Each operator's discounted margin in ``tiers``' segments over ``months`` from ``month`` if ``offers``
        ran: the expected flows month by month (:func:`segment_month`) from the segments as they are now, our
        price as it is, and our churn moving from what it was last month with the price gap we would face
        (the tier's ``price_gap`` sensitivity on the log-odds)."""
        scenario = self.scenario
        operators = scenario.market.operators
        discount = 1.0 / (1.0 + scenario.meta.monthly_discount_rate)  # as sim.valuation discounts
        margins = {k: 0.0 for k in operators}
        for tier in sorted(tiers):
            params = scenario.tiers[tier]
            arpu, leaving, price = params.arpu, params.market.leaving, self.our_price[tier]
            pool = dict(self.pools[tier])
            lines, churn = self.ours[tier]
            churn = min(max(churn, 1e-9), 1.0 - 1e-9)
            gap_now = price - min(p for p, _ in self.offer_terms(tier, month).values())
            for t in range(months):
                m = month + t
                terms = self.offer_terms(tier, m, offers)
                running = self.running_prices(tier, m, offers)
                gap = price - min(p for p, _ in terms.values())
                hazard = _shifted(churn, params.sensitivity.price_gap * (gap - gap_now))
                weight = discount ** t
                margins[scenario.market.us] += weight * lines * line_margin(arpu, price, 1.0, params.margin)
                for k, held in pool.items():
                    margins[k] += weight * held * line_margin(arpu, running[k], operators[k].price_index,
                                                              operators[k].margin)
                switching = lines * max(0.0, hazard - leaving)
                ours_out = dict(zip(terms, switching * destination_logit(scenario, terms)))
                new, our_new = new_lines(scenario, tier, m, lines, pool)
                pool, won = segment_month(scenario, tier, pool, self.switching[tier], terms, price, ours_out, new,
                                          our_new)
                lines = max(0.0, lines * (1.0 - hazard) + won + our_new)
        return margins

    def _running(self, tier: str, month: int,
                 offers: list[ActiveOffer] | None) -> dict[str, tuple[float, float, float]]:
        """Per competitor: (price it bills, handset subsidy, intensity) in ``tier``'s segment in ``month``."""
        running = {}
        for k in self.scenario.market.competitors:
            campaign, answers, subsidy, intensity = 0.0, 1.0, 0.0, 0.0
            for offer in self.offers if offers is None else offers:
                if offer.operator == k and offer.applies(tier, month):
                    # A campaign is a promotion on the list price (the deepest running one counts); an
                    # answer to our move cuts the price the rival already charges, so answers compound.
                    if offer.answer:
                        answers *= 1.0 - offer.price_cut
                    else:
                        campaign = max(campaign, offer.price_cut)
                    subsidy = max(subsidy, offer.handset_subsidy)
                    intensity = 1.0 - (1.0 - intensity) * (1.0 - offer.intensity)
            running[k] = (self.scenario.market.operators[k].price_index * (1.0 - campaign) * answers, subsidy,
                          intensity)
        return running

    def running_prices(self, tier: str, month: int, offers: list[ActiveOffer] | None = None) -> dict[str, float]:
        """Per competitor: the price it bills ``tier``'s segment in ``month`` (relative to our list price)."""
        return {k: price for k, (price, _, _) in self._running(tier, month, offers).items()}

    def offer_terms(self, tier: str, month: int,
                    offers: list[ActiveOffer] | None = None) -> dict[str, tuple[float, float]]:
        """Per competitor: (effective relative price, intensity) that ``tier`` sees in ``month``: the price it
        bills less its handset subsidy spread over a contract."""
        arpu = self.scenario.tiers[tier].arpu
        terms = {}
        for k, (price, subsidy, intensity) in self._running(tier, month, offers).items():
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
        return destination_logit(self.scenario, self.offer_terms(tier, month))



def line_margin(arpu: float, price: float, list_index: float, margin: float) -> float:
    """An operator's monthly margin on one line of a segment billed ``arpu`` at our list price: revenue at
    the price it bills (relative to our list price) less its cost, which is its revenue at its own list
    price (``list_index``) times one less its margin share. Ours: ``list_index`` 1, the tier's margin."""
    return arpu * (price - (1.0 - margin) * list_index)


def _shifted(rate: float, log_odds: float) -> float:
    """``rate`` moved by ``log_odds`` on the logit scale."""
    if rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    # On the logit scale, so that a steep sensitivity times a wide price gap saturates at 0 or 1 instead
    # of overflowing the odds (inf / inf).
    logit = math.log(rate) - math.log1p(-rate) + log_odds
    return 1.0 / (1.0 + math.exp(-logit)) if logit >= 0 else math.exp(logit) / (1.0 + math.exp(logit))


def list_switching_shares(scenario: Scenario, source: str, our_price: float = 1.0,
                          terms: dict[str, tuple[float, float]] | None = None) -> dict[str, float]:
    """Where ``source``'s switchers go (us included, at ``our_price``): the destination logit at the rivals'
    ``terms`` (effective price, campaign intensity) of the month, or at their list terms."""
    market = scenario.market
    options = [k for k in market.operators if k != source]
    utility = []
    for k in options:
        op = market.operators[k]
        price, intensity = (our_price, 0.0) if k == market.us else (
            terms[k] if terms is not None else (op.price_index, 0.0))
        utility.append(op.brand - market.price_sensitivity_destination * price
                       + market.quality_sensitivity_destination * op.network_quality + intensity)
    u = np.array(utility)
    w = np.exp(u - u.max())
    return dict(zip(options, w / w.sum()))


def price_gaps(scenario: Scenario, prices: dict[str, float]) -> dict[str, float]:
    """Each rival's price above its cheapest alternative (us among them), from every operator's price."""
    return {k: prices[k] - min(p for j, p in prices.items() if j != k) for k in scenario.market.competitors}


def new_lines(scenario: Scenario, tier: str, month: int, our_lines: float,
              pool: dict[str, float]) -> tuple[float, float]:
    """The segment's new lines in ``month`` and ours among them (the plan's, or our share of them)."""
    market = scenario.tiers[tier].market
    size = our_lines + sum(pool.values())
    growth = (1.0 + market.growth) ** (1.0 / 12.0) - 1.0
    new = max(0.0, (market.leaving + growth) * size)
    plan = market.gross_adds
    if plan is None:
        ours = new * segment_share(scenario, tier)
    else:
        stated = plan.monthly(month)
        ours = new * float(plan.share_of_new_lines or 0.0) if stated is None else stated
    return new, ours


def segment_month(scenario: Scenario, tier: str, pool: dict[str, float], switching: dict[str, float],
                  terms: dict[str, tuple[float, float]], our_price: float, our_switchers: dict[str, float],
                  new: float, our_new: float) -> tuple[dict[str, float], float]:
    """One month of the market in ``tier``'s segment: each rival loses its leavers (out of the market) and
    its switchers (to us, the lines returned, expected, or to the other rivals, by the logit at the month's
    ``terms``), and gains ``our_switchers`` to it and its part of the segment's ``new`` lines beyond
    ``our_new``. A rival's switching rate is its rate at rest (``switching``) moved by how far its price
    sits above its cheapest alternative beyond where it sat at list prices. Returns the rivals' lines and
    the lines we win."""
    market = scenario.market
    params = scenario.tiers[tier]
    leaving = params.market.leaving
    held = sum(pool.values())
    prices = {**{k: price for k, (price, _) in terms.items()}, market.us: our_price}
    listed = {k: market.operators[k].price_index for k in market.operators}
    listed[market.us] = 1.0
    gaps, rest_gaps = price_gaps(scenario, prices), price_gaps(scenario, listed)
    moves = {k: our_switchers.get(k, 0.0) + max(0.0, new - our_new) * (pool[k] / held if held > 0 else 0.0)
             for k in pool}
    won = 0.0
    for k, lines in pool.items():
        moves[k] -= lines * leaving
        out = lines * _shifted(switching[k], params.sensitivity.price_gap * (gaps[k] - rest_gaps[k]))
        if out <= 0:
            continue
        moves[k] -= out
        for dest, share in list_switching_shares(scenario, k, our_price, terms).items():
            if dest == market.us:
                won += out * share
            else:
                moves[dest] += out * share
    return {k: max(0.0, pool[k] + moves[k]) for k in pool}, won


def overall_share(scenario: Scenario) -> float:
    """Our share of the whole market at the start: our tiers' lines against the rivals' stated lines."""
    ours = float(sum(t.line_count for t in scenario.tiers.values()))
    rivals = sum(scenario.market.operators[k].lines for k in scenario.market.competitors)
    return ours / (ours + rivals) if ours + rivals > 0 else 1.0


def segment_share(scenario: Scenario, tier: str) -> float:
    """Our share of ``tier``'s segment at the start."""
    stated = scenario.tiers[tier].market.share
    return overall_share(scenario) if stated is None else stated


def segment_pools(scenario: Scenario) -> dict[str, dict[str, float]]:
    """Per tier, each rival's lines in its segment at the start: the rest of the segment beyond our share,
    split in proportion to the rivals' stated lines."""
    rivals = {k: scenario.market.operators[k].lines for k in scenario.market.competitors}
    held = sum(rivals.values())
    pools = {}
    for name, tier in scenario.tiers.items():
        share = segment_share(scenario, name)
        others = tier.line_count * (1.0 - share) / share if held > 0 else 0.0
        pools[name] = {k: others * lines / held if held > 0 else 0.0 for k, lines in rivals.items()}
    return pools


def destination_logit(scenario: Scenario, terms: dict[str, tuple[float, float]]) -> np.ndarray:
    """Multinomial-logit shares over the competitors of our churners, given each one's (relative price,
    campaign intensity)."""
    market = scenario.market
    utility = np.array([market.operators[k].brand - market.price_sensitivity_destination * price
                        + market.quality_sensitivity_destination * market.operators[k].network_quality
                        + intensity for k, (price, intensity) in terms.items()])
    weights = np.exp(utility - utility.max())
    return weights / weights.sum()


def reference_destinations(scenario: Scenario, tier: str) -> dict[str, float]:
    """Where our switchers go under reference conditions (list prices, no campaign)."""
    competitors = scenario.market.competitors
    terms = {k: (scenario.market.operators[k].price_index, 0.0) for k in competitors}
    return dict(zip(competitors, destination_logit(scenario, terms)))


def rest_switching(scenario: Scenario, tier: str, pool: dict[str, float]) -> dict[str, float]:
    """Each rival's monthly switchers as a share of its lines in ``tier``'s segment.

    A stated ``monthly_churn`` gives it (less the lines leaving the market). Otherwise it is solved so
    that, under reference conditions, every rival's lines stay as they are: with x_k its switchers a
    month, W_k(j) the share of them choosing operator j, A our switchers (our stated churn less the
    lines leaving the market) and d_k the share of ours choosing it, x_k - sum_j x_j W_j(k) = A d_k (the
    lines leaving the market are replaced by the new lines, which the rivals share by their lines).
    The segment's size does not change, so we hold still too.
    """
    market = scenario.market
    params = scenario.tiers[tier]
    leaving = params.market.leaving
    rivals = list(market.competitors)
    rates = {k: max(0.0, float(market.operators[k].monthly_churn) - leaving) for k in rivals
             if market.operators[k].monthly_churn is not None}
    solved = [k for k in rivals if k not in rates]
    if not solved:
        return rates
    ours = params.line_count * (params.baseline_churn - leaving)
    destinations = reference_destinations(scenario, tier)
    shares = {k: list_switching_shares(scenario, k) for k in rivals}
    # Rivals with a stated churn send a known flow; the solved ones balance what arrives.
    index = {k: i for i, k in enumerate(solved)}
    matrix = np.eye(len(solved))
    target = np.array([ours * destinations[k] for k in solved])
    for j in rivals:
        for k in solved:
            if j == k:
                continue
            if j in index:
                matrix[index[k], index[j]] -= shares[j][k]
            else:
                target[index[k]] += rates[j] * pool[j] * shares[j][k]
    flows = np.linalg.solve(matrix, target)
    for k in solved:
        lines = pool[k]
        rates[k] = max(0.0, float(flows[index[k]])) / lines if lines > 0 else 0.0
    return rates
