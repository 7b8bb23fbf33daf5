"""The subscriber base as numpy arrays: one row per deciding unit, one array per attribute.

A deciding unit is a line in a consumer tier and an account in an enterprise tier
(the group stays or leaves with all its lines). Each tier keeps its own arrays, so
every coefficient of a tier is a scalar in the monthly computation and no per-line
lookup of tier parameters is needed. Enterprise tiers also keep ``lines``, each account's
lines (its size varies, :mod:`sim.accounts`), and ``account_of_line`` maps each line to
its account, so that results can be read per line.

Arrays grow by a quarter when gross adds exceed the room reserved at the start. Rows of
churned units are dropped from time to time (:meth:`TierState.compact`); each unit keeps its
``uid``, the order in which it joined, which keys every draw made for it (:mod:`sim.kernels`).
Memory per row is listed in :data:`BYTES_PER_UNIT`. How a tier's units are drawn at the start
and when they join is :mod:`sim.population`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels

PROPENSITY_STEP = 1.0 / 32.0
"""Log-odds per step of the int8 ``propensity`` (range +-4, the tails of a spread of 1)."""
NO_MONTH = np.int16(-32000)
"""Stands for "never" in month-valued arrays (no offer yet, no backfire)."""
ACTIVE = np.uint8(0)
"""``status`` of a unit still with us; churned units hold 1 + the destination operator's index."""

FIELDS: dict[str, np.dtype] = {
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
BYTES_PER_UNIT = sum(dt.itemsize for dt in FIELDS.values())
"""Bytes of state per deciding unit (enterprise tiers add 4 per account for ``lines``)."""


@dataclass
class TierState:
    """The units of one tier. Rows ``[0, size)`` are in use; the rest is room for gross adds."""

    name: str
    index: int
    """Its place among the scenario's tiers (in the order of their names)."""
    key: int
    """The tier's stable number (:func:`sim.streams.name_key`), which keys every draw about its units."""
    lines_per_unit: int
    """Lines of a deciding unit: 1, or an enterprise account's mean size (rounded), at which the contact
    center counts an account's calls and complaints (each account's own size is :attr:`lines`)."""
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
    lines: np.ndarray | None = None
    """Enterprise tiers: each account's lines now (int32; its revenue, and what it takes when it leaves)."""
    table_rows: np.ndarray | None = None
    """A tier drawn from a customer table: per uid of its starting units, the table row the unit is (uids
    last a unit's life, rows move as units are regrouped and compacted). Lines joining later have none."""
    complaint_log: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """(month, units) of recent complaints, to let them age out after three months."""
    next_uid: int = 0
    """The uid the next unit to join takes."""
    batch_starts: list[int] = field(default_factory=list)
    """The first uid of each batch of units that joined together; within a batch rows are grouped
    by region, so a region's rows are one run of rows per batch (:meth:`region_runs`)."""
    compactions: int = 0
    """How many times rows were dropped (row numbers kept from before are stale)."""
    running: np.ndarray | None = None
    """Per lever number and last month: how many active units run an offer of that lever ending that
    month (kept as offers are taken and stop), so a month's running offers are counted without a pass
    over the rows."""

    @property
    def capacity(self) -> int:
        return int(self.status.shape[0])

    def view(self, name: str) -> np.ndarray:
        """The in-use rows of attribute ``name``."""
        return getattr(self, name)[: self.size]

    @property
    def account_of_line(self) -> np.ndarray | None:
        """Enterprise tiers: the row of each line's account, the rows' lines in a row (None for consumer tiers)."""
        if self.lines is None:
            return None
        return np.repeat(np.arange(self.size, dtype=np.int32), self.lines[: self.size])

    def active_lines(self) -> int:
        """Lines of the active units."""
        if self.lines is None:
            return self.active_units()
        return int(self.lines[: self.size][self.status[: self.size] == ACTIVE].sum())

    def lines_of(self, rows: np.ndarray) -> int:
        """Lines of the units in ``rows``."""
        return int(rows.size if self.lines is None else self.lines[rows].sum())

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
        for name, dtype in FIELDS.items():
            old = getattr(self, name)
            grown = np.empty(new_capacity, dtype=dtype)
            grown[: self.size] = old[: self.size]
            setattr(self, name, grown)
        if self.lines is not None:
            grown = np.empty(new_capacity, dtype=self.lines.dtype)
            grown[: self.size] = self.lines[: self.size]
            self.lines = grown

    def compact(self) -> None:
        """Drop the rows of churned units, keeping the others in order (and their complaints' log)."""
        n = self.size
        logged = [(month, self.uid[rows[self.status[rows] == ACTIVE]]) for month, rows in self.complaint_log]
        if self.lines is not None:
            kept_lines = self.lines[:n][self.status[:n] == ACTIVE]
            self.lines[: kept_lines.size] = kept_lines
        # Every attribute in one pass, passed by name (a new field must be added to the kernel too).
        kept = kernels.compact_all(n, **{name: getattr(self, name) for name in FIELDS})
        self.size = kept
        self.compactions += 1
        uids = self.uid[:kept]
        self.complaint_log = [(month, np.searchsorted(uids, u)) for month, u in logged if u.size]

    def region_runs(self, region: int) -> np.ndarray:
        """The rows of ``region``'s units, as ``[first, end)`` pairs (one per batch that has any):
        churned rows are dropped in order, so each batch stays a block grouped by region."""
        starts = np.asarray(self.batch_starts, dtype=np.int64)
        return kernels.region_runs(self.uid, self.size, starts, self.region, region)

    def nbytes(self) -> int:
        total = sum(getattr(self, name).nbytes for name in FIELDS)
        if self.lines is not None:
            total += self.lines.nbytes
        return total


def empty_arrays(capacity: int) -> dict[str, np.ndarray]:
    return {name: np.empty(capacity, dtype=dtype) for name, dtype in FIELDS.items()}
