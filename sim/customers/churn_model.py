"""The monthly churn hazard fitted to a customer table.

The table flags lines that left within an observation window of ``W`` months. The model is
the simulator's own: a logit of the monthly hazard,

    logit h_i = level of the line's tier + sum_k effect_k * x_ik,

and a line that keeps its hazard for ``W`` months leaves with probability
``1 - (1 - h_i)^W``. The effects solve the balancing equations of the flags under that
probability (:func:`fit_effects`): every tier, band and code of a driver fits the table's own
churn over the window (Newton steps; a tiny ridge keeps empty categories finite). Drivers: tenure
(per year, or per tenure band), the charge relative to the tier's mean (linear or in bands),
one and two year contracts against month to month, recent complaints, and service indicators.

Reported: cross-validated AUC (5 folds, each line scored by a model fitted without it), the
fitted against the table's churn per group of each driver, the calibration by decile of predicted
churn (with a warning where a decile is off by more than :data:`DECILE_TOLERANCE` and its noise),
and the effects with standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..scenario import KeyPath, Problem
from .mapping import Mapping, NumericDriver
from .table import CustomerTable, DataError

RIDGE = 1e-6
"""Per-observation ridge on the effects (not the tier levels): enough to keep a category without
churners finite, far too small to move a fitted effect."""
MAX_STEP = 2.0
"""Largest change of any coefficient in one scoring step (log-odds)."""
MIN_LINES_PER_TERM = 10
"""Fewer lines than this per fitted term leave the effects to chance: refuse rather than mislead."""
FOLDS = 5
DECILE_TOLERANCE = 0.03
"""A decile's observed churn over the window may differ from its predicted churn by this much (or by
three of its standard errors, if more) before the fit warns that it ranks badly calibrated risk."""
FOLD_SEED = 20_240_701


@dataclass(frozen=True)
class Design:
    """The model's columns for a table: tier levels first, then the drivers."""

    names: list[str]
    matrix: np.ndarray
    tier_columns: int
    kinds: list[str]
    """Per column: ``tier``, ``tenure_per_year``, ``tenure_band``, ``price``, ``price_band``, ``contract``,
    ``complaints``, ``complaints_band``, ``number``, ``number_band``, ``indicator``."""


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


def band_labels(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Each value's band as a planner reads it: ``up to 12``, ``over 12 to 24``, ``over 60``."""
    bounds = [-np.inf, *edges, np.inf]
    names = [f"up to {edges[0]:g}"] + [f"over {bounds[b]:g}" if bounds[b + 1] == np.inf else
                                       f"over {bounds[b]:g} to {bounds[b + 1]:g}" for b in range(1, len(edges) + 1)]
    return np.asarray(names, dtype=object)[band_index(values, edges)]


def driver_groups(table: CustomerTable, mapping: Mapping) -> dict[str, np.ndarray]:
    """Each line's group per driver that has groups: its tier, its band of every binned driver, its
    contract, whether it has each service indicator. (A linear driver has no groups.)"""
    drivers = mapping.drivers
    groups: dict[str, np.ndarray] = {"tier": table.tier}
    binned: list[tuple[str, np.ndarray, NumericDriver]] = [("tenure months", table.tenure, drivers.tenure)]
    if drivers.price is not None:
        binned.append(("charge relative to tier", relative_charge(table), drivers.price))
    if isinstance(drivers.complaints, NumericDriver) and table.complaints is not None:
        binned.append(("complaints", table.complaints, drivers.complaints))
    binned += [(name, table.numbers[name], driver) for name, driver in drivers.numbers.items()]
    for label, values, driver in binned:
        if driver.kind == "bins":
            groups[label] = band_labels(values, tuple(driver.edges))
    if drivers.contract:
        groups["contract"] = np.asarray(["month to month", "one year", "two year"], dtype=object)[
            np.searchsorted([12, 24], table.term, side="right")]
    for name, flag in table.indicators.items():
        groups[name] = np.where(flag > 0, "has it", "has not")
    return groups


def _every_band_has_lines(table: CustomerTable, mapping: Mapping) -> None:
    """A band of a binned driver that holds no line of the table would get an effect of 0 that nothing
    measured: the mapping's edges are wrong for this table (an edge past every tenure, a unit mistake)."""
    drivers, columns = mapping.drivers, mapping.columns
    binned: list[tuple[KeyPath, str, np.ndarray, NumericDriver]] = [
        (("drivers", "tenure"), columns.tenure_months, table.tenure, drivers.tenure)]
    if drivers.price is not None:
        binned.append((("drivers", "price"), f"{columns.monthly_charge} (relative to the tier's mean)",
                       relative_charge(table), drivers.price))
    if isinstance(drivers.complaints, NumericDriver) and table.complaints is not None:
        binned.append((("drivers", "complaints"), columns.complaints or "complaints", table.complaints,
                       drivers.complaints))
    binned += [(("drivers", "numbers", name), name, table.numbers[name], driver)
               for name, driver in drivers.numbers.items()]
    problems = []
    for path, column, values, driver in binned:
        if driver.kind != "bins":
            continue
        held = np.bincount(band_index(values, tuple(driver.edges)), minlength=len(driver.edges) + 1)
        # A value in each band names it: the first edge is in the first band, a hair above an edge in the next.
        inside = np.asarray([driver.edges[0], *(np.nextafter(e, np.inf) for e in driver.edges)])
        labels = band_labels(inside, tuple(driver.edges))
        for band in np.flatnonzero(held == 0):
            problems.append(mapping.problem(
                (*path, "edges"), f"the band '{labels[band]}' of column '{column}' holds no line of {table.source} "
                f"(its values run from {values.min():g} to {values.max():g}): its effect cannot be measured",
                "choose edges within the column's values, so that every band holds lines"))
    if problems:
        raise DataError(problems)


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
    if isinstance(drivers.complaints, NumericDriver) and table.complaints is not None:
        numeric(table.complaints, drivers.complaints, "complaints", "complaints", "complaints_band")
    elif drivers.complaints and table.complaints is not None:
        names.append("complaints")
        kinds.append("complaints")
        blocks.append(table.complaints[:, None])
    for name, driver in drivers.numbers.items():
        numeric(table.numbers[name], driver, name, "number", "number_band")
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
    """Coefficients and their covariance: the balancing equations of the window's flags, by Newton steps.

    The equations are ``X' w (y - p) = 0`` with ``p = 1 - (1 - h)^W``: for every column of the design,
    the lines' fitted churn over the window adds up to the churn the table shows. For a tier, a band or
    a code (a 0/1 column), that is the group's churn exactly. They are the gradient of a concave
    function of the coefficients (``sum y eta - G(eta)`` with ``G' = p``), so the solution is unique.

    Why not maximum likelihood: its equations weight each line's residual by ``sigma / p``, which
    varies with the line's risk (1/W for a quiet line, more for a risky one). With a one-month window
    the weights are 1 and the two coincide; over a year, as soon as the model is not exactly right
    (and a constant hazard for twelve months never is), a group's fitted churn drifts from its own,
    by several points for a group of high churn. The balancing equations are as consistent when the model is right and keep
    every group's churn when it is not. The covariance is the sandwich ``A^-1 B A^-1`` that such
    estimating equations call for.
    """
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
    total = float(w.sum())
    penalty = np.full(k, RIDGE * total)
    penalty[:tier_columns] = 1e-3 * RIDGE * total  # next to nothing: keeps the Jacobian invertible
    jacobian = np.eye(k)
    for _ in range(iterations):
        eta = matrix @ beta
        sigma = 1.0 / (1.0 + np.exp(-eta))
        stay = np.exp(-np.logaddexp(0.0, eta) * months)  # S = (1 - h)^W
        # dp / d eta = W sigma S: how a line's window churn moves with its log-odds.
        slope = months * sigma * stay
        gradient = matrix.T @ (w * (y - (1.0 - stay))) - penalty * beta
        jacobian = (matrix * (w * slope)[:, None]).T @ matrix + np.diag(penalty)
        step = np.linalg.solve(jacobian, gradient)
        # A line-up the drivers separate perfectly would send effects to infinity: cap each step.
        step *= min(1.0, MAX_STEP / max(float(np.max(np.abs(step))), 1e-300))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    leave = window_probability(matrix @ beta, months)
    bread = np.linalg.inv(jacobian)
    meat = (matrix * (w**2 * leave * (1.0 - leave))[:, None]).T @ matrix
    return beta, bread @ meat @ bread


def group_balance(predicted: np.ndarray, churn: np.ndarray, groups: dict[str, np.ndarray],
                  weights: np.ndarray) -> pd.DataFrame:
    """Per driver and group: lines, the table's churn over the window and the fit's."""
    rows = []
    for driver, labels in groups.items():
        for label in pd.unique(labels):
            mine = labels == label
            rows.append({"driver": driver, "group": str(label), "lines": float(weights[mine].sum()),
                         "table_churn": float(np.average(churn[mine], weights=weights[mine])),
                         "fitted_churn": float(np.average(predicted[mine], weights=weights[mine]))})
    return pd.DataFrame(rows)


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
    """Per decile of predicted churn: lines, mean predicted and observed churn over the window, and
    whether the decile is off (beyond :data:`DECILE_TOLERANCE` and three standard errors)."""
    balance: pd.DataFrame
    """Per driver and group (:func:`driver_groups`): lines, the table's and the fit's churn over the window."""

    @property
    def warnings(self) -> list[str]:
        """What a planner should know before trusting the fit's ranking of risk."""
        off = self.deciles[self.deciles["off"]]
        return [f"decile {int(r.decile)} of predicted risk churns {r.observed:.1%} over the window in the table "
                f"against {r.predicted:.1%} predicted (more than {DECILE_TOLERANCE:.0%} and 3 standard errors apart): "
                "the drivers miss part of what sets risk; consider bins for a driver fitted as a line"
                for r in off.itertuples()]

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
    _every_band_has_lines(table, mapping)
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
    noise = np.sqrt(deciles["predicted"] * (1.0 - deciles["predicted"]) / deciles["lines"])
    deciles["off"] = (deciles["observed"] - deciles["predicted"]).abs() > np.maximum(DECILE_TOLERANCE, 3.0 * noise)
    balance = group_balance(predicted, y.astype(float), driver_groups(table, mapping), table.lines.astype(float))
    return ChurnModel(d, beta, cov, months, auc(held_out, y), auc(predicted, y), deciles, balance)
