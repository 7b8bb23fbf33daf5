"""The monthly churn hazard fitted to a customer table.

The table flags lines that left within an observation window of ``W`` months. The model is
the simulator's own: a logit of the monthly hazard,

    logit h_i = level of the line's tier + sum_k effect_k * x_ik,

and a line that keeps its hazard for ``W`` months leaves with probability
``1 - (1 - h_i)^W``. The effects are fitted by maximum likelihood of the flags under that
probability (Fisher scoring; a tiny ridge keeps empty categories finite). Drivers: tenure
(per year, or per tenure band), the charge relative to the tier's mean (linear or in bands),
one and two year contracts against month to month, recent complaints, and service indicators.

Reported: cross-validated AUC (5 folds, each line scored by a model fitted without it), the
calibration by decile of predicted churn, and the effects with standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..scenario import Problem
from .mapping import Mapping, NumericDriver
from .table import CustomerTable, DataError

RIDGE = 1e-4
"""Per-observation ridge on the effects (not the tier levels): enough to keep a category without
churners finite, far too small to move a fitted effect."""
MAX_STEP = 2.0
"""Largest change of any coefficient in one scoring step (log-odds)."""
MIN_LINES_PER_TERM = 10
"""Fewer lines than this per fitted term leave the effects to chance: refuse rather than mislead."""
FOLDS = 5
FOLD_SEED = 20_240_701


@dataclass(frozen=True)
class Design:
    """The model's columns for a table: tier levels first, then the drivers."""

    names: list[str]
    matrix: np.ndarray
    tier_columns: int
    kinds: list[str]
    """Per column: ``tier``, ``tenure_per_year``, ``tenure_band``, ``price``, ``price_band``, ``contract``,
    ``complaints``, ``indicator``."""


def band_index(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Band of each value: band b holds (edge[b-1], edge[b]], so 12 months is in the first of edges 12, 24."""
    return np.searchsorted(np.asarray(edges), values, side="left")


def _bands(values: np.ndarray, edges: tuple[float, ...], label: str) -> tuple[list[str], np.ndarray]:
    index = band_index(values, edges)
    bounds = [-np.inf, *edges, np.inf]
    names, columns = [], []
    for b in range(1, len(edges) + 1):  # the first band is the reference
        low, high = bounds[b], bounds[b + 1]
        names.append(f"{label} over {low:g}" if high == np.inf else f"{label} over {low:g} to {high:g}")
        columns.append((index == b).astype(float))
    return names, np.column_stack(columns) if columns else np.zeros((len(values), 0))


def relative_charge(table: CustomerTable) -> np.ndarray:
    """Each line's charge relative to its tier's mean charge (0.1: pays 10% more than its tier)."""
    out = np.zeros(table.rows)
    for tier in table.tiers:
        mine = table.tier == tier
        mean = float(np.average(table.charge[mine], weights=table.lines[mine]))
        out[mine] = table.charge[mine] / mean - 1.0 if mean > 0 else 0.0
    return out


def design(table: CustomerTable, mapping: Mapping, tiers: list[str]) -> Design:
    """The model's columns for ``table`` (tier levels in the order of ``tiers``)."""
    names: list[str] = [f"tier {t}" for t in tiers]
    kinds = ["tier"] * len(tiers)
    blocks = [np.column_stack([(table.tier == t).astype(float) for t in tiers])]

    def numeric(values: np.ndarray, driver: NumericDriver, label: str, linear_kind: str, band_kind: str,
                scale: float = 1.0) -> None:
        if driver.kind == "linear":
            names.append(label)
            kinds.append(linear_kind)
            blocks.append((values / scale)[:, None])
        else:
            band_names, columns = _bands(values, tuple(driver.edges), label)
            names.extend(band_names)
            kinds.extend([band_kind] * len(band_names))
            blocks.append(columns)

    drivers = mapping.drivers
    numeric(table.tenure, drivers.tenure, "tenure (years)" if drivers.tenure.kind == "linear" else "tenure months",
            "tenure_per_year", "tenure_band", scale=12.0 if drivers.tenure.kind == "linear" else 1.0)
    if drivers.price is not None:
        numeric(relative_charge(table), drivers.price, "charge relative to tier", "price", "price_band")
    if drivers.contract:
        for term, label in ((12, "one year contract"), (24, "two year contract")):
            names.append(label)
            kinds.append("contract")
            blocks.append((table.term == term).astype(float)[:, None])
    if drivers.complaints and table.complaints is not None:
        names.append("complaints")
        kinds.append("complaints")
        blocks.append(table.complaints[:, None])
    for name, flag in table.indicators.items():
        names.append(f"{name}")
        kinds.append("indicator")
        blocks.append(flag[:, None])
    return Design(names, np.hstack(blocks), len(tiers), kinds)


def window_probability(eta: np.ndarray, months: int) -> np.ndarray:
    """Probability of leaving within ``months`` at a constant monthly hazard of logit ``eta``."""
    log_stay = -np.logaddexp(0.0, eta) * months  # months * log(1 - h)
    return -np.expm1(log_stay)


def fit_effects(matrix: np.ndarray, churn: np.ndarray, months: int, tier_columns: int,
                weights: np.ndarray | None = None, iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and their covariance: maximum likelihood of the flags by Fisher scoring."""
    n, k = matrix.shape
    w = np.ones(n) if weights is None else weights
    y = churn.astype(float)
    # Start from each tier's churn rate turned into a monthly hazard.
    beta = np.zeros(k)
    for j in range(tier_columns):
        mine = matrix[:, j] > 0
        rate = np.clip(np.average(y[mine], weights=w[mine]) if mine.any() else 0.1, 1e-4, 1 - 1e-4)
        h = 1.0 - (1.0 - rate) ** (1.0 / months)
        beta[j] = np.log(h / (1.0 - h))
    penalty = np.full(k, RIDGE * n)
    penalty[:tier_columns] = 1e-3 * RIDGE * n  # next to nothing: keeps the information matrix invertible
    info = np.eye(k)
    for _ in range(iterations):
        eta = matrix @ beta
        sigma = 1.0 / (1.0 + np.exp(-eta))
        stay = np.exp(-np.logaddexp(0.0, eta) * months)  # S = (1 - h)^W
        leave = np.clip(1.0 - stay, 1e-300, None)
        # d loglik / d eta = W sigma (y S / (1 - S) - (1 - y)); Fisher weight W^2 sigma^2 S / (1 - S).
        score = months * sigma * (y * stay / leave - (1.0 - y))
        fisher = months**2 * sigma**2 * stay / leave
        gradient = matrix.T @ (w * score) - penalty * beta
        info = (matrix * (w * fisher)[:, None]).T @ matrix + np.diag(penalty)
        step = np.linalg.solve(info, gradient)
        # A line-up the drivers separate perfectly would send effects to infinity: cap each step.
        step *= min(1.0, MAX_STEP / max(float(np.max(np.abs(step))), 1e-300))
        beta += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta, np.linalg.inv(info)


def auc(scores: np.ndarray, flags: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    positives = flags.astype(bool)
    n1, n0 = positives.sum(), (~positives).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@dataclass(frozen=True)
class ChurnModel:
    """Fitted effects and how well they predict."""

    design: Design
    coefficients: np.ndarray
    covariance: np.ndarray
    months: int
    cv_auc: float
    """AUC of the window's churn, each line scored by a model fitted on the other folds."""
    in_sample_auc: float
    deciles: pd.DataFrame
    """Per decile of predicted churn: lines, mean predicted and observed churn over the window."""

    @property
    def effects(self) -> pd.DataFrame:
        """Each coefficient on the log-odds of the monthly hazard, its standard error and odds ratio."""
        se = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        return pd.DataFrame({"effect": self.design.names, "kind": self.design.kinds, "coefficient": self.coefficients,
                             "std_error": se, "odds_ratio": np.exp(self.coefficients),
                             "z": self.coefficients / np.where(se > 0, se, np.nan)})

    def monthly_hazard(self, matrix: np.ndarray | None = None) -> np.ndarray:
        x = self.design.matrix if matrix is None else matrix
        return 1.0 / (1.0 + np.exp(-(x @ self.coefficients)))


def fit(table: CustomerTable, mapping: Mapping) -> ChurnModel:
    """Fit the monthly churn hazard to ``table``'s churn flags (see the module's description)."""
    assert table.churn is not None
    tiers = table.tiers
    d = design(table, mapping, tiers)
    months = mapping.observation_months
    terms = d.matrix.shape[1]
    if table.rows < MIN_LINES_PER_TERM * terms:
        raise DataError([Problem(table.source, None, None, (), f"{table.rows} lines are too few to fit {terms} terms "
                                 f"({', '.join(d.names)})", f"give at least {MIN_LINES_PER_TERM * terms} lines, or "
                                 "fewer tiers and drivers in the mapping")])
    y = table.churn
    beta, cov = fit_effects(d.matrix, y, months, d.tier_columns, table.lines.astype(float))
    predicted = window_probability(d.matrix @ beta, months)
    # Cross-validated AUC: folds drawn once from a fixed seed, so the figure repeats.
    folds = np.random.default_rng(FOLD_SEED).permutation(table.rows) % FOLDS
    held_out = np.empty(table.rows)
    for f in range(FOLDS):
        train = folds != f
        b, _ = fit_effects(d.matrix[train], y[train], months, d.tier_columns, table.lines[train].astype(float))
        held_out[~train] = window_probability(d.matrix[~train] @ b, months)
    order = np.argsort(predicted, kind="stable")
    decile = np.empty(table.rows, dtype=int)
    decile[order] = np.arange(table.rows) * 10 // table.rows + 1
    deciles = pd.DataFrame({"decile": decile, "predicted": predicted, "observed": y.astype(float)}).groupby(
        "decile").agg(lines=("predicted", "size"), predicted=("predicted", "mean"),
                      observed=("observed", "mean")).reset_index()
    return ChurnModel(d, beta, cov, months, auc(held_out, y), auc(predicted, y), deciles)
