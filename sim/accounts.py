"""Enterprise accounts as they are: sizes that vary, lines that come and go between renewals.

A group account of a ministry holds thousands of lines, a county office's a few hundred; the account
stays or leaves as a whole (:mod:`sim.engine`'s churn decision, per account), but between its
decisions it loses a few lines (staff leaving, a branch closing) and adds a few (new staff). This
module draws the accounts' sizes (:func:`account_sizes`) and moves their lines each month
(:func:`move_lines`); the per-account decision at the contract's end is a term of the hazard
(:data:`IN_CONTRACT_LOCK`, :func:`sim.hazard.logit_coefficients`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels import uniform64, unit_bits
from .scenario.tiers import Tier

IN_CONTRACT_LOCK = -200.0
"""Log-odds added to an account's hazard while its contract runs, for a tier deciding at renewal: its
probability rounds to exactly 0 in float32 (a keyed uniform of 0 must not make it leave)."""

LINES_DTYPE = np.dtype(np.int32)


def account_sizes(tier: Tier, u: np.ndarray) -> np.ndarray:
    """Lines of accounts drawn with uniforms ``u`` (one each, stratified by the caller): the tier's
    ``lines_per_account``, or ``min`` plus a lognormal excess with the stated mean
    (:class:`sim.scenario.tiers.AccountSize`), rounded to whole lines."""
    size = tier.account_size
    if size is None or size.spread == 0:
        return np.full(u.size, round(tier.lines_per_unit), dtype=LINES_DTYPE)
    from .population import normal_quantile

    excess = size.mean - size.min
    # A lognormal of mean ``excess``: exp(mu + s^2 / 2) = excess.
    mu = math.log(excess) - 0.5 * size.spread ** 2
    lines = size.min + np.exp(mu + size.spread * normal_quantile(u))
    return np.maximum(np.rint(lines), size.min).astype(LINES_DTYPE)


@njit(inline="always", cache=True)
def _binomial(u, u2, n, p):
    """Binomial(n, p) by its inverse CDF at ``u`` (a normal approximation, from ``u`` and ``u2``, where
    the mean is so large that the first term would underflow)."""
    if n <= 0 or p <= 0.0:
        return 0
    mean = n * p
    if mean > 500.0:
        z = math.sqrt(-2.0 * math.log(max(u, 1e-300))) * math.cos(2.0 * math.pi * u2)
        return min(n, max(0, math.floor(mean + z * math.sqrt(mean * (1.0 - p)) + 0.5)))
    term = math.exp(n * math.log1p(-p))
    cdf = term
    k = 0
    ratio = p / (1.0 - p)
    while u >= cdf and k < n:
        term *= (n - k) / (k + 1.0) * ratio
        k += 1
        cdf += term
    return k


@njit(cache=True)
def _move_lines(n, status, uid, lines, loss_salt, loss, gain_salt, gain):
    lost = np.zeros(n, np.int64)
    added = np.zeros(n, np.int64)
    for i in range(n):
        if status[i] != 0:
            continue
        size = np.int64(lines[i])
        a = unit_bits(loss_salt, uid[i])
        # An account keeps at least one line: the last line leaves with the account, at its decision.
        out = min(_binomial(uniform64(a), float(np.int64(a & np.uint64(0xFFFFFFFF))) / 4294967296.0, size, loss),
                  size - 1)
        b = unit_bits(gain_salt, uid[i])
        into = _binomial(uniform64(b), float(np.int64(b & np.uint64(0xFFFFFFFF))) / 4294967296.0, size, gain)
        lost[i] = out
        added[i] = into
        lines[i] = size - out + into
    return lost, added


def move_lines(n: int, status: np.ndarray, uid: np.ndarray, lines: np.ndarray, loss_salt: np.uint64, loss: float,
               gain_salt: np.uint64, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """The month's lines cancelled and added in each active account of rows ``[0, n)`` (in place on
    ``lines``): Binomial(lines, ``loss``) and Binomial(lines, ``gain``), both counted on the lines it
    held at the month's start. Each account's counts are its own keyed draws (streams ``loss_salt``,
    ``gain_salt``), so they do not depend on which other accounts are still with us."""
    return _move_lines(n, status, uid, lines, loss_salt, float(loss), gain_salt, float(gain))
