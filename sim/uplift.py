"""What one offer is expected to do to one line's churn: its uplift.

A line that churns with monthly hazard ``h`` leaves within ``d`` months with probability
``1 - (1 - h)^d``. An offer of a lever that cuts the monthly odds of churn by ``r`` for ``d`` months
lowers that to ``1 - (1 - h')^d``, with ``h'`` the hazard at odds ``h / (1 - h) * (1 - r)``, but only
if the line accepts (probability ``a``). A line that declines may be put off by the call: for the
month after the contact its odds grow by the lever's ``backfire`` ``b`` (the engine's own reading,
:mod:`sim.hazard`), which adds ``h_b - h`` to its churn. So, per line offered::

    uplift = a * ((1 - (1 - h)^d) - (1 - (1 - h')^d)) - (1 - a) * (h_b - h)

A line churning 4% a month offered a bill credit accepted by 40% that cuts the odds by 35% for four
months, with a backfire of 0.3: 0.4 * (0.1507 - 0.1014) - 0.6 * (0.0514 - 0.04) = 0.0129, about
one churner avoided per 78 such lines offered.

What the lever does through satisfaction or a contract extension is not in the figure: the engine
moves churn through them in ways that depend on the line's later months, and the shipped levers that
reach customer tables act through the odds. Every line is read at one hazard over the offer's
months, as the campaign reading does (:mod:`sim.customers.campaign`).
"""

from __future__ import annotations

import numpy as np

from .scenario.levers import Lever


def _at_odds_factor(hazard: np.ndarray, factor: float) -> np.ndarray:
    """The hazard whose odds are ``factor`` times those of ``hazard``."""
    odds = hazard / (1.0 - hazard) * factor
    return odds / (1.0 + odds)


def churn_within(hazard: np.ndarray, months: int) -> np.ndarray:
    """Probability that a line of constant monthly ``hazard`` leaves within ``months``."""
    return 1.0 - (1.0 - hazard) ** months


def expected_uplift(hazard: np.ndarray, lever: Lever) -> np.ndarray:
    """Per line of monthly ``hazard`` offered ``lever``: the churn it avoids over the offer's months,
    acceptance-weighted, less the backfire of a decline (see the module)."""
    h = np.clip(np.asarray(hazard, dtype=np.float64), 0.0, 1.0 - 1e-12)
    months = lever.duration_months
    avoided = churn_within(h, months) - churn_within(_at_odds_factor(h, 1.0 - lever.hazard_reduction), months)
    harm = _at_odds_factor(h, 1.0 + lever.backfire) - h
    return lever.acceptance * avoided - (1.0 - lever.acceptance) * harm


__all__ = ["churn_within", "expected_uplift"]
