"""Which lines an offer changes most: ranking by uplift or by incremental value, with a stated accuracy.

A churn model ranks lines by risk; the lines most at risk are not always those an offer changes most
(some leave whatever we do, some are pushed out by the contact: see a lever's ``response``). A lever
whose ``policy`` is ``uplift`` ranks lines by the reduction of churn the offer brings each of them:

    uplift = acceptance * (p - p_accepted) * months - (1 - acceptance) * (p_declined - p)

with p the line's churn probability this month, p_accepted its probability on the offer (odds times
(1 - hazard_reduction) * w, or what ``acts_on`` leaves) and p_declined after a declined contact (odds
times 1 + backfire * w). ``value`` ranks by that uplift times the margin a kept line brings (its lines,
the tier's margin per line and month, and the tier's expected lifetime in months, 1 / its stated churn),
less the offer's expected cost, and contacts no line whose figure is not positive: its money waits.

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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def true_uplift(lever: Lever, rows: LineFigures) -> np.ndarray:
    """Churn probability the offer removes from each row: acceptance times the monthly reduction on the
    offer times its months, less the backfire of a decline in the month of the contact."""
    p = _sigmoid(rows.logit)
    cut = np.full(p.size, 1.0 - lever.hazard_reduction) if rows.push is None else \
        1.0 - lever.hazard_reduction * (1.0 - np.exp(-rows.push))
    accepted = _sigmoid(rows.logit + np.log(np.maximum(cut * rows.weight, 1e-12)))
    declined = _sigmoid(rows.logit + np.log1p(lever.backfire * rows.weight)) if lever.backfire else p
    return lever.acceptance * (p - accepted) * lever.duration_months - (1.0 - lever.acceptance) * (declined - p)


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
