"""Which lines a churn model puts first: ranking with a stated accuracy (AUC).

Proactive offers go to the units a churn model ranks most at risk. The model sees
each unit's true churn log-odds blurred by noise; the noise is chosen so that the
model's AUC against the churn it is trying to predict equals the scenario's
``targeting.model_auc``. An AUC of 0.5 means infinite noise: the model ranks at random.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .subscribers import TierState

BLOCK = 1 << 16
"""Rows per block when blurring scores in place (see :data:`sim.hazard.BLOCK`)."""


def auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted half)."""
    positives = positives.astype(bool)
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ordered = np.sort(scores)
    if not (ordered[1:] == ordered[:-1]).any() and not np.isnan(ordered[-1]):
        # No ties: a positive's rank is where its score sorts (an exact integer sum, as the float one below
        # is), found without sorting the positions along.
        rank_sum = float(np.searchsorted(ordered, scores[positives]).sum() + n_pos)
    else:
        # Average ranks over ties.
        order = np.argsort(scores, kind="mergesort")
        sorted_scores = scores[order]
        ranks = np.empty(scores.size, dtype=float)
        _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
        average = first + (counts - 1) / 2.0 + 1.0
        ranks[order] = np.repeat(average, counts)
        rank_sum = float(ranks[positives].sum())
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_auc(logits: np.ndarray, noise: float, rng: np.random.Generator, draws: int = 4) -> float:
    """AUC of ``logit + noise * N(0, 1)`` against churn drawn from the logits (averaged over draws)."""
    p = 1.0 / (1.0 + np.exp(-logits))
    values = []
    for _ in range(draws):
        churned = rng.random(p.size) < p
        values.append(auc(logits + noise * rng.standard_normal(p.size), churned))
    return float(np.mean(values))


def noise_for_auc(logits: np.ndarray, target: float, rng: np.random.Generator) -> float:
    """The noise that gives a model of AUC ``target`` on these units (``inf`` for 0.5).

    If even the true log-odds cannot reach the target (the units differ too little),
    the model is as good as it can be: noise 0.
    """
    if target <= 0.5 + 1e-9:
        return float("inf")
    if expected_auc(logits, 0.0, rng) <= target:
        return 0.0
    low, high = 0.0, 1.0
    while expected_auc(logits, high, rng) > target and high < 1e4:
        high *= 2.0
    for _ in range(30):
        mid = 0.5 * (low + high)
        if expected_auc(logits, mid, rng) > target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def rank_scores(logits: np.ndarray, noise: float, model_error: np.ndarray, step: float) -> np.ndarray:
    """The model's scores for ``logits`` (higher = more at risk), in place of ``logits`` when blurred.

    ``model_error`` holds each unit's standard-normal error in steps of ``step``; a model with
    infinite noise (AUC 0.5) ranks by the error alone, that is at random.
    """
    if np.isinf(noise):
        return model_error.astype(np.float32) * np.float32(step)
    if noise == 0.0:
        return logits
    scratch = np.empty(min(logits.size, BLOCK), dtype=np.float32)
    for a in range(0, logits.size, BLOCK):  # block by block: no temporary the size of the tier
        b = min(logits.size, a + BLOCK)
        np.multiply(model_error[a:b], np.float32(noise * step), out=scratch[: b - a])
        logits[a:b] += scratch[: b - a]
    return logits


SAMPLE_ROWS = 50_000
"""Rows sampled (every n/SAMPLE_ROWS-th) to set the score threshold of a tier's short list."""


class ModelScores:
    """The churn model's scores of the rows of a tier that may get an offer, computed when asked for
    (:mod:`sim.kernels`): the month-start logit, with the offer a unit is on, blurred by each unit's
    persistent model error (see :func:`rank_scores`), with no array the size of the tier.

    A row may get an offer when its unit is active, its last offer came by month ``offered_by`` (the
    contact policy) and the offer it is on, if any, is weaker (a smaller hazard reduction) than the
    strongest offer on the table (``most``); that is checked in the same pass as the score.
    """

    def __init__(self, state: TierState, coef: np.ndarray, by_region: np.ndarray, lever_log_odds: np.ndarray,
                 lever_cuts: np.ndarray, month: int, noise: float, step: float, offered_by: int, most: float,
                 tie_salt: np.uint64) -> None:
        self.state, self.coef, self.by_region, self.month = state, coef, by_region, month
        self.lever_log_odds, self.lever_cuts = lever_log_odds, lever_cuts
        self.size = state.size
        self.offered_by = offered_by
        self.most = np.float32(most)
        self.tie_salt = tie_salt
        # Infinite noise (AUC 0.5) ranks by the error alone, that is at random; no noise by the logit.
        self.use_logit = not np.isinf(noise)
        self.blur = np.float32(step if np.isinf(noise) else noise * step)

    def _args(self) -> tuple:
        s = self.state
        return (self.month, s.satisfaction, s.region, s.contract_end, s.join_month, s.propensity, self.by_region,
                self.coef, s.effect_until, s.effect_lever, self.lever_log_odds, s.model_error, self.use_logit,
                self.blur)

    def _eligibility(self) -> tuple:
        return self.state.status, self.state.last_offer, self.offered_by, self.most, self.lever_cuts

    def ties(self, rows: np.ndarray) -> np.ndarray:
        """32 keyed random bits per row's unit, which order units of equal score (stream ``tie_salt``):
        at random, and alike in every strategy's run. Rows are grouped by region within each batch of
        units, so ordering ties by row would favour the first regions (see :func:`best_ranked`)."""
        return kernels.tie_bits(rows.astype(np.int64, copy=False), self.state.uid, self.tie_salt)

    def at(self, rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` (whether they may get an offer or not)."""
        return kernels.scores_at(rows.astype(np.int64, copy=False), *self._args())

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """The true month-start logit of ``rows`` with the offer each is on (no model error)."""
        return kernels.scores_at(rows.astype(np.int64, copy=False), *self._args()[:-2], True, np.float32(0.0))

    def strength(self, rows: np.ndarray) -> np.ndarray:
        """The hazard reduction of the offer each of ``rows`` is on (-1 for none, below every lever's)."""
        s = self.state
        return kernels.running_strength(rows.astype(np.int64, copy=False), self.month, s.effect_until,
                                        s.effect_lever, self.lever_cuts)

    def sample(self, stride: int) -> tuple[np.ndarray, np.ndarray]:
        """Every ``stride``-th row that may get an offer, and its score."""
        return kernels.sample_scores(stride, self.size, *self._eligibility(), *self._args())

    def eligible(self) -> np.ndarray:
        """Every row that may get an offer."""
        s = self.state
        return kernels.offerable_rows(self.size, *self._eligibility(), self.month, s.effect_until, s.effect_lever)

    def at_least(self, threshold: float) -> np.ndarray:
        """The rows that may get an offer and score at least ``threshold``."""
        mask = np.empty(self.size, dtype=bool)
        kernels.score_mask(mask, np.float32(threshold), self.size, *self._eligibility(), *self._args())
        return np.flatnonzero(mask)


def top_scored(scores: ModelScores, k: int) -> np.ndarray:
    """The ``k`` rows that may get an offer with the highest scores, best first (ties in a keyed random order).

    A few thousand offers are chosen among millions of lines: a threshold estimated on a sample
    keeps the exact selection to a short list instead of every line. The short list holds every
    row that may get an offer and scores at least the threshold, so when it has ``k`` rows, its best
    ``k`` are exactly the best ``k`` of the tier.
    """
    n = scores.size
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if n > 200_000 and k < n // 20:
        stride = max(1, n // SAMPLE_ROWS)
        sampled, sample = scores.sample(stride)
        if sample.size:
            # Aim a quarter above the needed share (and 50 sampled rows more): the sample's quantile is
            # off by a few percent at most, so the short list almost surely holds the top k.
            share = min(1.0, 1.25 * k / n * -(-n // stride) / sample.size + 50.0 / sample.size)
            at = int((1.0 - share) * (sample.size - 1))
            threshold = np.partition(sample, at)[at]
            short = scores.at_least(threshold)
            if short.size >= k:
                return best_ranked(short, scores.at(short), scores.ties(short), k, n)
    candidates = scores.eligible()
    return best_ranked(candidates, scores.at(candidates), scores.ties(candidates), k, n)


def best_ranked(rows: np.ndarray, scores: np.ndarray, ties: np.ndarray, k: int, size: int) -> np.ndarray:
    """The ``k`` best of ``rows`` (below ``size``) by score, best first; equal scores in the order of the
    high bits of ``ties``, then of their rows.

    Each row gets one int64 key: its score's order-reversing bits, above as many of its tie bits as the
    row numbers leave room for, above its row. The keys are unique and sort in rank order, so numpy's
    (vectorized) integer partition and sort rank exactly; a sort of the rows by key would take ten
    times as long. With 2^b rows, 32 - b random bits order equal scores (8 bits at 16M rows): only
    units that share those too go by row, which groups them by region.
    """
    shift = np.uint64(max(1, int(size - 1).bit_length()))
    if shift > 32:
        raise ValueError(f"{size} rows do not fit the ranking keys")
    # Adding +0 turns -0 into +0, which ties with it as a float but not as bits.
    bits = (np.asarray(scores, dtype=np.float32) + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    # IEEE floats order as integers once negatives have every bit flipped and positives the sign bit.
    negative = bits >= np.uint64(0x80000000)
    bits ^= np.where(negative, np.uint64(0xFFFFFFFF), np.uint64(0x80000000))
    keys = ((np.uint64(0xFFFFFFFF) - bits) << np.uint64(32)) | ((ties.astype(np.uint64) >> shift) << shift)
    keys |= rows.astype(np.uint64)
    if keys.size > k:
        keys = np.partition(keys, k - 1)[:k]
    keys.sort()
    return (keys & ((np.uint64(1) << shift) - np.uint64(1))).astype(np.int64)
