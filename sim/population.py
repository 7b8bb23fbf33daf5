"""The subscriber base as numpy arrays: one row per deciding unit, one array per attribute.

A deciding unit is a line in a consumer tier and an account in an enterprise tier
(the group stays or leaves with all its lines). Each tier keeps its own arrays, so
every coefficient of a tier is a scalar in the monthly computation and no per-line
lookup of tier parameters is needed. Enterprise tiers also keep ``account_of_line``,
mapping each line to its account, so that results can be read per line.

Arrays grow by a quarter when gross adds exceed the room reserved at the start. Rows of
churned units are dropped from time to time (:meth:`TierState.compact`); each unit keeps its
``uid``, the order in which it joined, which keys every draw made for it (:mod:`sim.kernels`).
Memory per row is listed in :data:`BYTES_PER_UNIT`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .scenario import Scenario
from .scenario.tiers import Tier

PROPENSITY_STEP = 1.0 / 32.0
"""Log-odds per step of the int8 ``propensity`` (range +-4, the tails of a spread of 1)."""
NO_MONTH = np.int16(-32000)
"""Stands for "never" in month-valued arrays (no offer yet, no backfire)."""
ACTIVE = np.uint8(0)
"""``status`` of a unit still with us; churned units hold 1 + the destination operator's index."""

_FIELDS: dict[str, np.dtype] = {
    "uid": np.dtype(np.int32),
    "region": np.dtype(np.uint8),
    "status": np.dtype(np.uint8),
    "churn_month": np.dtype(np.int16),
    "join_month": np.dtype(np.int16),
    "contract_end": np.dtype(np.int16),
    "satisfaction": np.dtype(np.float32),
    "complaints": np.dtype(np.uint8),
    "last_offer": np.dtype(np.int16),
    "effect_until": np.dtype(np.int16),
    "effect_lever": np.dtype(np.uint8),
    "propensity": np.dtype(np.int8),
    "model_error": np.dtype(np.int8),
}
BYTES_PER_UNIT = sum(dt.itemsize for dt in _FIELDS.values())
"""Bytes of state per deciding unit (enterprise tiers add 4 per line for ``account_of_line``)."""


@dataclass
class TierState:
    """The units of one tier. Rows ``[0, size)`` are in use; the rest is room for gross adds."""

    name: str
    index: int
    lines_per_unit: int
    weight: float
    """Real units each simulated unit stands for (1 / the tier's simulated share)."""
    size: int
    uid: np.ndarray
    """The unit's number within its tier, in the order units joined (rows stay in that order, so a
    unit's row is found by a binary search of its uid). Units joining together (the starting base,
    a month's gross adds, a month's win-backs) form a batch, numbered by region within it."""
    region: np.ndarray
    status: np.ndarray
    churn_month: np.ndarray
    join_month: np.ndarray
    """Month the unit joined; 0 or less for units already with us at the start (tenure = month - join)."""
    contract_end: np.ndarray
    """Last month under contract; lines past it are out of contract."""
    satisfaction: np.ndarray
    complaints: np.ndarray
    """Escalated complaints in the last three months."""
    last_offer: np.ndarray
    """Month of the last retention offer (for the contact policy)."""
    effect_until: np.ndarray
    """Last month an accepted offer lowers the hazard."""
    effect_lever: np.ndarray
    """Index of that offer's lever."""
    propensity: np.ndarray
    """The unit's own churn propensity on the log-odds scale, in steps of :data:`PROPENSITY_STEP`."""
    model_error: np.ndarray
    """The churn model's error on this unit, a standard normal in steps of :data:`PROPENSITY_STEP`:
    a model's mistakes about a customer persist from month to month."""
    account_of_line: np.ndarray | None = None
    complaint_log: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """(month, units) of recent complaints, to let them age out after three months."""
    next_uid: int = 0
    """The uid the next unit to join takes."""
    batch_starts: list[int] = field(default_factory=list)
    """The first uid of each batch of units that joined together; within a batch rows are grouped
    by region, so a region's rows are one run of rows per batch (:meth:`region_runs`)."""
    compactions: int = 0
    """How many times rows were dropped (row numbers kept from before are stale)."""

    @property
    def capacity(self) -> int:
        return int(self.status.shape[0])

    def view(self, name: str) -> np.ndarray:
        """The in-use rows of attribute ``name``."""
        return getattr(self, name)[: self.size]

    def active_mask(self) -> np.ndarray:
        return self.status[: self.size] == ACTIVE

    def active_units(self) -> int:
        return int(np.count_nonzero(self.status[: self.size] == ACTIVE))

    def ensure_room(self, extra: int) -> None:
        """Grow the arrays (by a quarter at a time, to keep memory per line low) so ``extra`` more units fit."""
        need = self.size + extra
        if need <= self.capacity:
            return
        new_capacity = max(need, self.capacity + self.capacity // 4)
        for name, dtype in _FIELDS.items():
            old = getattr(self, name)
            grown = np.empty(new_capacity, dtype=dtype)
            grown[: self.size] = old[: self.size]
            setattr(self, name, grown)

    def compact(self) -> None:
        """Drop the rows of churned units, keeping the others in order (and their complaints' log)."""
        n = self.size
        logged = [(month, self.uid[rows[self.status[rows] == ACTIVE]]) for month, rows in self.complaint_log]
        # Every attribute in one pass, passed by name (a new field must be added to the kernel too).
        kept = kernels.compact_all(n, **{name: getattr(self, name) for name in _FIELDS})
        self.size = kept
        self.compactions += 1
        uids = self.uid[:kept]
        self.complaint_log = [(month, np.searchsorted(uids, u)) for month, u in logged if u.size]
        if self.account_of_line is not None:
            self.account_of_line = np.repeat(np.arange(kept, dtype=np.int32), self.lines_per_unit)

    def region_runs(self, region: int) -> np.ndarray:
        """The rows of ``region``'s units, as ``[first, end)`` pairs (one per batch that has any):
        churned rows are dropped in order, so each batch stays a block grouped by region."""
        starts = np.asarray(self.batch_starts, dtype=np.int64)
        return kernels.region_runs(self.uid, self.size, starts, self.region, region)

    def nbytes(self) -> int:
        total = sum(getattr(self, name).nbytes for name in _FIELDS)
        if self.account_of_line is not None:
            total += self.account_of_line.nbytes
        return total


def _empty(capacity: int) -> dict[str, np.ndarray]:
    return {name: np.empty(capacity, dtype=dtype) for name, dtype in _FIELDS.items()}


def region_shares(scenario: Scenario, tier: Tier) -> np.ndarray:
    """The tier's share of units per region, in the order of ``network.regions``."""
    regions = list(scenario.network.regions)
    if tier.regions:
        return np.array([tier.regions.get(r, 0.0) for r in regions], dtype=float)
    return np.array([scenario.network.regions[r].share for r in regions], dtype=float)


MIN_SIMULATED_UNITS = 2_000
"""A tier thinned by ``run.scale`` keeps at least this many units (or all it has), so small tiers
such as key accounts are never reduced to a handful."""


def tier_scale(tier: Tier, scale: float) -> float:
    """The share of a tier's units that is simulated."""
    if scale >= 1.0:
        return 1.0
    return min(1.0, max(scale, MIN_SIMULATED_UNITS / max(tier.unit_count, 1)))


def initial_units(tier: Tier, scale: float) -> int:
    """Deciding units simulated for a tier at the run's scale (at least one)."""
    return max(1, int(round(tier.unit_count * tier_scale(tier, scale))))


def fill_new_units(state: TierState, tier: Tier, rows: slice, month: int, shares: np.ndarray,
                   rng: np.random.Generator, *, at_start: bool) -> None:
    """Give units in ``rows`` their starting attributes: region, tenure, contract, satisfaction."""
    n = rows.stop - rows.start
    state.batch_starts.append(state.next_uid)
    state.uid[rows] = np.arange(state.next_uid, state.next_uid + n, dtype=np.int32)
    state.next_uid += n
    # Grouped by region (the other attributes are drawn independently of it): a region's new units are
    # one run of rows, which an outage reads without an index.
    state.region[rows] = np.sort(rng.choice(len(shares), size=n, p=shares)).astype(np.uint8) if len(shares) > 1 else 0
    state.status[rows] = ACTIVE
    state.churn_month[rows] = NO_MONTH
    if at_start:
        # Tenure is exponential with the tier's mean; contracts are at a uniformly spread point of their term.
        tenure = np.minimum(rng.exponential(tier.tenure.mean_months, size=n), 600.0)
        state.join_month[rows] = (1 - np.floor(tenure)).astype(np.int16)
        under = rng.random(n) < tier.contract.share
        remaining = rng.integers(0, tier.contract.term_months, size=n)
        state.contract_end[rows] = np.where(under, month + remaining, month - 1).astype(np.int16)
        spread = rng.normal(0.0, 0.08, size=n)
        state.satisfaction[rows] = np.clip(tier.satisfaction + spread, 0.0, 1.0).astype(np.float32)
    else:
        # A new line starts its tenure now; new contract lines sign a full term.
        state.join_month[rows] = month
        under = rng.random(n) < tier.contract.share
        state.contract_end[rows] = np.where(under, month + tier.contract.term_months - 1, month - 1).astype(np.int16)
        state.satisfaction[rows] = np.float32(tier.satisfaction)
    state.complaints[rows] = 0
    state.last_offer[rows] = NO_MONTH
    state.effect_until[rows] = NO_MONTH
    state.effect_lever[rows] = 0
    # A normal propensity, kept in one byte per unit.
    steps = np.rint(rng.standard_normal(n) * (tier.risk_spread / PROPENSITY_STEP))
    state.propensity[rows] = np.clip(steps, -127, 127).astype(np.int8)
    state.model_error[rows] = np.clip(np.rint(rng.standard_normal(n) / PROPENSITY_STEP), -127, 127).astype(np.int8)


def group_by_region(state: TierState) -> None:
    """Reorder the units ``[0, size)`` by region (in a stable order), keeping uids in row order: each
    unit keeps its attributes and takes the uid of its new row."""
    n = state.size
    order = np.argsort(state.region[:n], kind="stable")
    for name in _FIELDS:
        if name != "uid":
            values = getattr(state, name)
            values[:n] = values[:n][order]


def build_population(scenario: Scenario, rng: np.random.Generator, scale: float = 1.0) -> list[TierState]:
    """The subscriber base at the start of month 1, one :class:`TierState` per tier."""
    states = []
    horizon = scenario.meta.horizon_months
    table = None
    if scenario.population is not None:
        # A customer table: the tiers' units are its rows (import here: the reader needs the population's types).
        from .customers.population import apply_rows, choose_rows, load_table_population

        table = load_table_population(scenario)
    for index, (name, tier) in enumerate(scenario.tiers.items()):
        units = initial_units(tier, scale)
        rows = None
        if table is not None:
            rows = choose_rows(table, name, units, rng)
            units = rows.size
        # Room for the expected gross adds plus a margin, so growth rarely needs a copy.
        room = int(units * (tier.gross_add_rate * horizon * 1.2 + 0.02)) + 16
        arrays = _empty(units + room)
        lines_per_unit = int(tier.lines_per_account or 1)
        weight = tier.unit_count / units
        state = TierState(name=name, index=index, lines_per_unit=lines_per_unit, weight=weight, size=units, **arrays)
        fill_new_units(state, tier, slice(0, units), 1, region_shares(scenario, tier), rng, at_start=True)
        if table is not None and rows is not None:
            apply_rows(state, table, rows, list(scenario.network.regions))
            group_by_region(state)
        if tier.kind == "enterprise":
            state.account_of_line = np.repeat(np.arange(units, dtype=np.int32), lines_per_unit)
        states.append(state)
    return states
