"""Which lines an offer changes most: ranking by uplift or by incremental value, with a stated accuracy.

A churn model ranks lines by risk; the lines most at risk are not always those an offer changes most
(some leave whatever we do, some are pushed out by the contact: see a lever's ``response``). A lever
whose ``policy`` is ``uplift`` ranks lines by the reduction of churn the offer brings each of them:

    uplift = acceptance * ((1 - p_accepted)^d - (1 - p)^d) - (1 - acceptance) * (p_declined - p)

with p the line's monthly churn hazard now, read as constant over the offer's d months, p_accepted its
hazard on the offer (odds times (1 - hazard_reduction) * w, or what ``acts_on`` leaves) and p_declined
in the month after a declined contact (odds times 1 + backfire * w): the churn within d months the
offer avoids if accepted, less the harm of a decline. One definition serves the engine's ranking and
the campaign's target list (:func:`expected_uplift`, every line at the lever's mean response). A line
churning 4% a month offered a bill credit accepted by 40% that cuts the odds by 35% for four months,
with a backfire of 0.3: 0.4 * (0.1507 - 0.1014) - 0.6 * (0.0514 - 0.04) = 0.0129, about one churner
avoided per 78 such lines offered. What a lever does through satisfaction or a contract extension is
not in the figure. ``value`` ranks by that uplift times what a kept line is worth (its lines
times :func:`sim.valuation.value_of_a_line_kept`, as every table values it), less the offer's expected
cost, both in today's money, and contacts no line whose figure is not positive: its money waits.

**Accuracy.** The uplift model sees each line's true uplift blurred by a persistent per-line error:
its score is uplift + noise * e, e a standard normal keyed by the line (the same mistakes month after
month, as a real model's), the noise set so that the score's correlation with the true uplift over the
lines it ranks equals ``targeting.uplift_correlation``: noise = sd(uplift) * sqrt(1 / r^2 - 1). A
correlation rather than a Qini coefficient: the Qini of a model depends on the base rate and the
treated share of the test it was measured on, a correlation only on the model, and it is exact here
(no bisection needed). 1 is the oracle, which knows every line's true uplift; no model beats it; 0
ranks at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import kernels
from .scenario.levers import Lever


@dataclass(frozen=True)
class LineFigures:
    """What the uplift of an offer to some rows depends on, row by row."""

    logit: np.ndarray
    """The rows' churn log-odds now (with the offer each is on)."""
    weight: np.ndarray
    """Each row's own w for the lever (1 where lines respond alike)."""
    push: np.ndarray | None
    """For a lever acting on named drivers: the log-odds they add to each row (None: the whole hazard)."""
    acceptance: np.ndarray | None = None
    """Each row's own acceptance rate where it varies with risk (None: the lever's rate for every row)."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def shifted_acceptance(rate: float, shift: np.ndarray | None) -> float | np.ndarray:
    """Acceptance ``rate`` (an average line's) moved by each line's ``shift`` on the log-odds scale; the
    rate itself where nothing shifts it or it is certain (0 or 1)."""
    if shift is None or not 0.0 < rate < 1.0:
        return rate
    return _sigmoid(math.log(rate / (1.0 - rate)) + shift)


def acceptance_shift(lever: Lever, risk_z: np.ndarray) -> np.ndarray | None:
    """Each line's shift of the log-odds of accepting ``lever``: ``acceptance_by_risk`` per standard
    deviation ``risk_z`` of its own propensity (None where acceptance does not move with risk)."""
    by_risk = lever.response.acceptance_by_risk if lever.response is not None else 0.0
    return None if by_risk == 0.0 else by_risk * risk_z


def true_uplift(lever: Lever, rows: LineFigures) -> np.ndarray:
    """Churn the offer removes from each row over its months, acceptance-weighted, less the backfire of a
    decline in the month of the contact (see the module)."""
    p = _sigmoid(rows.logit)
    cut = np.full(p.size, 1.0 - lever.hazard_reduction) if rows.push is None else \
        1.0 - lever.hazard_reduction * (1.0 - np.exp(-rows.push))
    accepted = _sigmoid(rows.logit + np.log(np.maximum(cut * rows.weight, 1e-12)))
    declined = _sigmoid(rows.logit + np.log1p(lever.backfire * rows.weight)) if lever.backfire else p
    months = lever.duration_months
    avoided = (1.0 - accepted) ** months - (1.0 - p) ** months
    accepts = lever.acceptance if rows.acceptance is None else rows.acceptance
    return accepts * avoided - (1.0 - accepts) * (declined - p)


def expected_uplift(hazard: np.ndarray, lever: Lever) -> np.ndarray:
    """Per line of monthly ``hazard`` offered ``lever``, at the lever's mean response: :func:`true_uplift`
    of a line whose odds the offer cuts by its stated ``hazard_reduction``."""
    h = np.clip(np.asarray(hazard, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    logit = np.log(h / (1.0 - h))
    return true_uplift(lever, LineFigures(logit, np.ones_like(logit), None))


def model_noise(uplift: np.ndarray, correlation: float) -> float:
    """The noise whose addition leaves a score correlated ``correlation`` with ``uplift`` (``inf`` at 0)."""
    if correlation <= 0.0:
        return math.inf
    sd = float(uplift.std()) if uplift.size > 1 else 0.0
    return sd * math.sqrt(max(0.0, 1.0 / (correlation * correlation) - 1.0))


def model_scores(uplift: np.ndarray, correlation: float, error: np.ndarray) -> np.ndarray:
    """The uplift model's scores: the true uplift blurred by each row's persistent ``error`` (standard
    normal); at correlation 0 the error alone, which ranks at random."""
    noise = model_noise(uplift, correlation)
    if math.isinf(noise):
        return error.copy()
    return uplift + noise * error


def keyed_errors(rows: np.ndarray, uid: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Each row's persistent model error: a keyed standard normal of its unit."""
    return kernels.keyed_normals(rows.astype(np.int64, copy=False), uid, salt)
