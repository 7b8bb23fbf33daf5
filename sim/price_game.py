"""Strategic rivals: price answers chosen as best responses, iterated to an equilibrium.

A rival whose reaction states ``best_response`` does not follow a fixed rule: when the reaction fires,
it weighs each price cut it considers by the margin it would earn over the months it looks ahead
(:meth:`sim.competition.Competition.forecast` projects the segments at the prices each choice brings)
and takes the best. When several rivals answer in the same month, each one's best choice depends on the
others': they answer each other's choices in turn (best-response dynamics, in the order of the rules'
names so that the listing of the scenario does not matter) until no one changes (a Nash equilibrium
of the one-shot game over the candidates) or the stated rounds are played.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Player:
    """A strategic reaction: its rule's name, the rival that answers, the cuts it considers."""

    rule: str
    operator: str
    cuts: tuple[float, ...]


@dataclass(frozen=True)
class Equilibrium:
    """The cuts chosen, the rounds played and whether no one wanted to change at the end."""

    cuts: dict[str, float]
    rounds: int
    settled: bool


Payoff = Callable[[dict[str, float], Player], float]
"""The player's margin (its operator's, where it answers) when every player (by rule) takes the given cut."""


def best_responses(players: list[Player], payoff: Payoff, rounds: int) -> Equilibrium:
    """Best-response dynamics from "no answer on price": each player in turn takes the cut that maximizes
    its operator's margin given the others' current cuts (the smallest cut among equals: a rival does not
    cut for nothing). Stops when a whole round changes nothing, or after ``rounds``."""
    order = sorted(players, key=lambda p: p.rule)
    cuts = {p.rule: 0.0 for p in order}
    for played in range(1, rounds + 1):
        changed = False
        for player in order:
            best_cut, best_margin = cuts[player.rule], None
            for cut in sorted(set(player.cuts)):
                margin = payoff({**cuts, player.rule: cut}, player)
                # A strictly better margin only: ties keep the smaller cut (candidates are ascending).
                if best_margin is None or margin > best_margin + 1e-9 * max(1.0, abs(best_margin)):
                    best_cut, best_margin = cut, margin
            if best_cut != cuts[player.rule]:
                cuts[player.rule] = best_cut
                changed = True
        if not changed:
            return Equilibrium(cuts, played, True)
    return Equilibrium(cuts, rounds, False)
