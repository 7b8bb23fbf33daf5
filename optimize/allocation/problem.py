"""Building the allocation problem: variables and constraints named after tiers, levers and periods.

Each cell (tier, lever, period) with a response curve gets one variable per curve segment,
``spend[tier,lever,period,k]``, bounded by the segment's width; the cell's spend is their
sum and its value the sum weighted by the segments' slopes. One more variable,
``total_spend``, is the sum of all spend: tier shares and the ROI floor refer to it instead
of repeating every spend variable in their rows. Constraints, each named so the written
``.lp`` reads like the plan:

====================================  ==========================================================
``total_spend_definition``            total_spend is the sum of every cell's spend
``budget``                            total spend (launch costs included) within the budget
``period_budget[P]``                  spend in period P within its budget
``tier_min[T]`` / ``tier_max[T]``     tier T's spend between its bounds
``tier_min_share[T]`` / ``..max..``   tier T's share of all spend between its bounds
``lever_capacity[L,P]``               offers of lever L in period P within its capacity
``channel_capacity[C,P]``             offers through channel C in period P within its capacity
``contact_policy[T,P]``               proactive offers to tier T in period P within lines x allowed rate
``roi_floor``                         value at least the floor times discounted spend
``locked[T,L,P]``                     a cell the planner fixed
``launch[L,P]`` / ``min_spend[L,P]``  a lever with a launch cost or minimum size: on or off (MILP)
====================================  ==========================================================

Offers are linear in spend: a cell's expected cost per offer turns money into offers. Money is
valued as everywhere else (:mod:`sim.valuation`): the objective nets each cell's value against its
amount times the curve's ``cost`` (the spend it pays, discounted, per unit allocated), and a launch
cost against its amount discounted to the start of its period; the budget rows count the money as
the planner allocates it, undiscounted.

The problem is held in matrix form (numpy arrays, one row per named constraint): that is
what HiGHS is handed directly, without a Python object per variable, and what makes a
10,000-cell plan build in a fraction of a second. :attr:`AllocationProblem.lp` renders the
same matrix as a pulp model, with the same names, on first use: for CBC, for ``write_lp``
and for anyone who wants to read the plan as algebra. Change a built problem through its
methods (:meth:`~AllocationProblem.set_budget`), not by editing ``lp``: HiGHS never sees ``lp``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain

import numpy as np
import pulp

from sim.allocation import Cell
from sim.scenario import Scenario
from sim.valuation import period_start_discount

from .curves import ResponseCurve

BIG_M_SLACK = 1.0
"""Launch indicators use the cell curves' largest spends as their big-M bound (plus this)."""
INF = float("inf")


def cost_per_offer(scenario: Scenario, tier: str, lever: str) -> float:
    """Expected money per offer made: contact, plus for an acceptance the one-off and monthly costs."""
    return scenario.levers[lever].cost_per_offer(scenario.tiers[tier])


def _name(*parts: str) -> str:
    # pulp keeps letters, digits and '_'; '-' in a planner's name would become '_' anyway.
    return "_".join(p.replace("-", "_") for p in parts)


@dataclass(frozen=True)
class Row:
    """One named constraint: ``lower <= a . x <= upper`` (one side infinite, or both equal)."""

    name: str
    kind: str
    about: tuple[str, ...]
    lower: float
    upper: float

    @property
    def rhs(self) -> float:
        return self.upper if self.upper < INF else self.lower


@dataclass
class AllocationProblem:
    """A built allocation problem (matrix form), ready to solve and re-solve.

    Columns are the segments of every cell (``cells`` in sorted order, cell ``i`` owning
    columns ``seg_start[i]:seg_start[i+1]``), then one launch indicator per
    ``(lever, period)`` in ``launch_cols``, then ``total_spend``. Rows are stored row-wise
    (CSR: ``row_start``, ``row_index``, ``row_value``).
    """

    scenario: Scenario
    curves: dict[Cell, ResponseCurve]
    cells: list[Cell]
    seg_start: np.ndarray
    col_names: list[str] | None
    """Column names; ``None`` until first needed (naming 200,000 segments is not free)."""
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray
    cost: np.ndarray
    """Objective coefficient per column, in the sense of ``maximize``."""
    maximize: bool
    objective_name: str
    rows: list[Row]
    row_start: np.ndarray
    row_index: np.ndarray
    row_value: np.ndarray
    launch_cols: dict[tuple[str, str], int]
    total_col: int
    # Per segment column: where it starts on its curve, its slope in value and in lines retained.
    seg_offset: np.ndarray
    seg_slope: np.ndarray
    seg_retained: np.ndarray
    budget_total: float = 0.0
    kinds: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Per constraint name: its kind (``budget``, ``tier_min``, ...) and what it concerns."""

    # --- shape -------------------------------------------------------------------------

    @property
    def n_cols(self) -> int:
        return len(self.col_lower)

    @property
    def n_segments(self) -> int:
        return int(self.seg_start[-1])

    @cached_property
    def row_number(self) -> dict[str, int]:
        return {row.name: i for i, row in enumerate(self.rows)}

    @property
    def row_lower(self) -> np.ndarray:
        return np.array([r.lower for r in self.rows], dtype=float)

    @property
    def row_upper(self) -> np.ndarray:
        return np.array([r.upper for r in self.rows], dtype=float)

    @property
    def is_mip(self) -> bool:
        return bool(self.launch_cols)

    def columns_of(self, cell: Cell) -> range:
        i = self.cell_number[cell]
        return range(int(self.seg_start[i]), int(self.seg_start[i + 1]))

    @cached_property
    def cell_number(self) -> dict[Cell, int]:
        return {c: i for i, c in enumerate(self.cells)}

    def names(self) -> list[str]:
        """Column names: ``spend_<tier>_<lever>_<period>_seg<k>``, ``launch_<lever>_<period>``, ``total_spend``."""
        if self.col_names is None:
            names = [_name("spend", *cell, f"seg{k}") for cell in self.cells
                     for k in range(len(self.curves[cell].spends) - 1)]
            launches = sorted(self.launch_cols.items(), key=lambda item: item[1])
            names += [_name("launch", lever, period) for (lever, period), _ in launches]
            names.append("total_spend")
            self.col_names = names
        return self.col_names

    # --- changing it ---------------------------------------------------------------------

    def set_budget(self, total: float) -> None:
        """Change the total budget in place (for the frontier: one build, many solves)."""
        i = self.row_number["budget"]
        self.rows[i] = replace(self.rows[i], upper=float(total))
        self.budget_total = float(total)
        if "lp" in self.__dict__:
            self.lp.constraints["budget"].constant = -float(total)

    def variant(self, *, cost: np.ndarray, maximize: bool, objective_name: str, drop: Iterable[str] = (),
                extra: Sequence[tuple[Row, np.ndarray, np.ndarray]] = ()) -> AllocationProblem:
        """The same columns under another objective, without the rows ``drop``, plus ``extra`` rows.

        Goal-seek uses it: least spend instead of most value, no total budget, a goal row.
        """
        dropped = set(drop)
        keep = [i for i, row in enumerate(self.rows) if row.name not in dropped]
        counts = np.diff(self.row_start)
        parts_index = [self.row_index[self.row_start[i]:self.row_start[i + 1]] for i in keep]
        parts_value = [self.row_value[self.row_start[i]:self.row_start[i + 1]] for i in keep]
        rows = [self.rows[i] for i in keep]
        lengths = [int(counts[i]) for i in keep]
        for row, index, value in extra:
            rows.append(row)
            parts_index.append(np.asarray(index, dtype=np.int64))
            parts_value.append(np.asarray(value, dtype=float))
            lengths.append(len(index))
        start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        kinds = {row.name: (row.kind, row.about) for row in rows}
        return replace(self, cost=np.asarray(cost, dtype=float), maximize=maximize, objective_name=objective_name,
                       rows=rows, row_start=start,
                       row_index=np.concatenate(parts_index) if parts_index else np.zeros(0, np.int64),
                       row_value=np.concatenate(parts_value) if parts_value else np.zeros(0),
                       kinds=kinds)

    # --- the pulp rendering -----------------------------------------------------------------

    @cached_property
    def lp(self) -> pulp.LpProblem:
        """The problem as a pulp model: same columns, rows and names (built on first use)."""
        sense = pulp.LpMaximize if self.maximize else pulp.LpMinimize
        lp = pulp.LpProblem(_name("retention_allocation", self.scenario.meta.name), sense)
        names = self.names()
        variables = [lp.add_variable(name, lo, hi, pulp.LpInteger if integral else pulp.LpContinuous)
                     for name, lo, hi, integral in zip(names, self.col_lower.tolist(),
                                                       [None if u == INF else u for u in self.col_upper.tolist()],
                                                       self.integer.tolist())]
        nonzero = np.flatnonzero(self.cost)
        lp += pulp.LpAffineExpression(zip([variables[j] for j in nonzero], self.cost[nonzero].tolist()),
                                      name=self.objective_name)
        index, value = self.row_index.tolist(), self.row_value.tolist()
        for i, row in enumerate(self.rows):
            a, b = int(self.row_start[i]), int(self.row_start[i + 1])
            expr = pulp.LpAffineExpression(zip([variables[j] for j in index[a:b]], value[a:b]))
            if row.lower == row.upper:
                constraint = pulp.LpConstraint(expr, pulp.LpConstraintEQ, rhs=row.upper)
            elif row.upper < INF:
                constraint = pulp.LpConstraint(expr, pulp.LpConstraintLE, rhs=row.upper)
            else:
                constraint = pulp.LpConstraint(expr, pulp.LpConstraintGE, rhs=row.lower)
            lp.addConstraint(constraint, row.name)
        self.__dict__["variables"] = variables
        return lp

    @property
    def variables(self) -> list[pulp.LpVariable]:
        """The pulp variables, in column order."""
        self.lp  # noqa: B018 - renders the model, which sets the variables
        return self.__dict__["variables"]

    @property
    def segments(self) -> dict[Cell, list[pulp.LpVariable]]:
        variables = self.variables
        return {cell: variables[int(self.seg_start[i]):int(self.seg_start[i + 1])] for i, cell in enumerate(self.cells)}

    @property
    def launches(self) -> dict[tuple[str, str], pulp.LpVariable]:
        variables = self.variables if self.launch_cols else []
        return {key: variables[j] for key, j in self.launch_cols.items()}

    def spend(self, cell: Cell) -> pulp.LpAffineExpression:
        return pulp.lpSum(self.segments[cell])

    def value(self, cell: Cell) -> pulp.LpAffineExpression:
        return pulp.lpSum(s * v for s, v in zip(self.curves[cell].slopes, self.segments[cell]))

    def write_lp(self, path: str) -> None:
        self.lp.writeLP(path)


class _Rows:
    """Rows collected while building: names, bounds and sparse coefficients."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.index: list[np.ndarray] = []
        self.value: list[np.ndarray] = []

    def add(self, name: str, kind: str, about: tuple[str, ...], index: np.ndarray, value: np.ndarray | float,
            lower: float = -INF, upper: float = INF) -> None:
        index = np.asarray(index, dtype=np.int64)
        value = np.broadcast_to(np.asarray(value, dtype=float), index.shape)
        keep = value != 0
        self.rows.append(Row(name, kind, about, float(lower), float(upper)))
        self.index.append(index[keep])
        self.value.append(value[keep])


def _groups(keys: np.ndarray, columns: np.ndarray) -> dict[int, np.ndarray]:
    """Columns grouped by an integer key per column: one sort, not one scan per group."""
    if len(columns) == 0:
        return {}
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(order)]])
    return {int(sorted_keys[a]): columns[order[a:b]] for a, b in zip(starts, ends)}


def build_problem(scenario: Scenario, curves: dict[Cell, ResponseCurve], budget: float | None = None) -> AllocationProblem:
    """The LP (or MILP, when a funded lever has a launch cost or a minimum size) of ``scenario``."""
    plan = scenario.budget
    total = plan.total if budget is None else budget
    months = {p.name: p.months for p in scenario.meta.periods}
    cells = sorted(curves)

    # Segment columns, all cells at once: the breakpoints laid end to end, differenced.
    counts = np.fromiter((len(curves[c].spends) for c in cells), dtype=np.int64, count=len(cells))
    spends = np.fromiter(chain.from_iterable(curves[c].spends for c in cells), dtype=float, count=int(counts.sum()))
    values = np.fromiter(chain.from_iterable(curves[c].values for c in cells), dtype=float, count=len(spends))
    retained = np.fromiter(chain.from_iterable(curves[c].retained or (0.0,) * len(curves[c].spends) for c in cells),
                           dtype=float, count=len(spends))
    point_start = np.concatenate([[0], np.cumsum(counts)])
    inner = np.ones(len(spends), dtype=bool)
    inner[point_start[:-1]] = False           # a cell's first point starts no segment of the previous cell
    right = np.flatnonzero(inner)
    widths = spends[right] - spends[right - 1]
    slopes = (values[right] - values[right - 1]) / widths
    retained_slopes = (retained[right] - retained[right - 1]) / widths
    offsets = spends[right - 1]
    n_seg = len(widths)
    seg_start = np.concatenate([[0], np.cumsum(counts - 1)]).astype(np.int64)
    cell_of = np.repeat(np.arange(len(cells)), counts - 1)

    tiers = {t: i for i, t in enumerate(sorted({c[0] for c in cells}))}
    levers = {lv: i for i, lv in enumerate(sorted({c[1] for c in cells}))}
    periods = {p: i for i, p in enumerate(sorted({c[2] for c in cells}))}
    cell_tier = np.array([tiers[c[0]] for c in cells], dtype=np.int64)
    cell_lever = np.array([levers[c[1]] for c in cells], dtype=np.int64)
    cell_period = np.array([periods[c[2]] for c in cells], dtype=np.int64)
    pair_cost = {(t, lv): cost_per_offer(scenario, t, lv) for t, lv in {(c[0], c[1]) for c in cells}}
    cell_cpo = np.array([pair_cost[(c[0], c[1])] for c in cells], dtype=float)
    # Offers per unit of money; cells whose offers cost nothing are left out of offer counts.
    cell_offers = np.divide(1.0, cell_cpo, out=np.zeros_like(cell_cpo), where=cell_cpo > 0)
    cell_cost = np.array([curves[c].cost for c in cells], dtype=float)
    cell_proactive = np.array([scenario.levers[c[1]].proactive for c in cells], dtype=bool)
    col_tier, col_lever, col_period = cell_tier[cell_of], cell_lever[cell_of], cell_period[cell_of]
    col_cost = cell_cost[cell_of]
    segment_cols = np.arange(n_seg, dtype=np.int64)

    # Levers with a fixed launch cost or a minimum size are switched on per period (binary).
    launch_cols: dict[tuple[str, str], int] = {}
    for lever_name, lever in scenario.levers.items():
        if (lever.launch_cost > 0 or lever.min_spend > 0) and lever_name in levers:
            for period in months:
                if period in periods and np.any((cell_lever == levers[lever_name])
                                                & (cell_period == periods[period])):
                    launch_cols[(lever_name, period)] = n_seg + len(launch_cols)
    total_col = n_seg + len(launch_cols)
    n_cols = total_col + 1
    launch_cost = {key: scenario.levers[key[0]].launch_cost for key in launch_cols}
    # A launch is paid at the start of its period.
    launch_today = {key: cost * period_start_discount(scenario, key[1]) for key, cost in launch_cost.items()}

    col_lower = np.zeros(n_cols)
    col_upper = np.concatenate([widths, np.ones(len(launch_cols)), [INF]])
    integer = np.zeros(n_cols, dtype=bool)
    integer[n_seg:total_col] = True
    cost = np.zeros(n_cols)
    if plan.objective == "net_value":
        cost[:n_seg] = slopes - col_cost
        for key, j in launch_cols.items():
            cost[j] = -launch_today[key]
        objective_name = "net_value_retained"
    else:
        cost[:n_seg] = slopes
        objective_name = "value_retained"

    rows = _Rows()
    by_tier = _groups(col_tier, segment_cols)
    by_period = _groups(col_period, segment_cols)
    by_lever_period = _groups(col_lever * len(periods) + col_period, segment_cols)
    by_tier_period = _groups(col_tier * len(periods) + col_period, segment_cols)
    col_offers = cell_offers[cell_of]

    rows.add("total_spend_definition", "definition", (), np.append(segment_cols, total_col),
             np.append(np.ones(n_seg), -1.0), 0.0, 0.0)
    budget_cols = [total_col, *launch_cols.values()]
    rows.add("budget", "budget", (), np.array(budget_cols), np.array([1.0, *launch_cost.values()]), upper=total)
    for period, cap in plan.per_period.items():
        cols = by_period.get(periods.get(period, -1), segment_cols[:0])
        launch = [(j, launch_cost[key]) for key, j in launch_cols.items() if key[1] == period]
        rows.add(_name("period_budget", period), "period_budget", (period,),
                 np.concatenate([cols, [j for j, _ in launch]]), np.concatenate([np.ones(len(cols)),
                                                                                [c for _, c in launch]]), upper=cap)
    for tier, bound in plan.tiers.items():
        cols = by_tier.get(tiers.get(tier, -1), segment_cols[:0])
        if bound.min > 0:
            rows.add(_name("tier_min", tier), "tier_min", (tier,), cols, 1.0, lower=bound.min)
        if bound.max is not None:
            rows.add(_name("tier_max", tier), "tier_max", (tier,), cols, 1.0, upper=bound.max)
        if bound.min_share > 0:
            rows.add(_name("tier_min_share", tier), "tier_min_share", (tier,), np.append(cols, total_col),
                     np.append(np.ones(len(cols)), -bound.min_share), lower=0.0)
        if bound.max_share < 1:
            rows.add(_name("tier_max_share", tier), "tier_max_share", (tier,), np.append(cols, total_col),
                     np.append(np.ones(len(cols)), -bound.max_share), upper=0.0)

    channel_levers: dict[str, list[int]] = {}
    for lever_name, i in levers.items():
        channel_levers.setdefault(scenario.levers[lever_name].channel, []).append(i)
    policy = plan.contact_policy
    for period, length in months.items():
        p = periods.get(period)
        if p is None:
            continue
        for lever, capacity in plan.lever_capacity.items():
            if lever in levers:
                cols = by_lever_period.get(levers[lever] * len(periods) + p)
                if cols is not None:
                    rows.add(_name("lever_capacity", lever, period), "lever_capacity", (lever, period), cols,
                             col_offers[cols], upper=capacity)
        for channel_name, channel in scenario.channels.items():
            parts = [by_lever_period[i * len(periods) + p] for i in channel_levers.get(channel_name, [])
                     if i * len(periods) + p in by_lever_period]
            if parts:
                cols = np.sort(np.concatenate(parts))
                rows.add(_name("channel_capacity", channel_name, period), "channel_capacity", (channel_name, period),
                         cols, col_offers[cols], upper=channel.capacity_per_month * length)
        for tier_name, tier in scenario.tiers.items():
            if tier_name in tiers:
                cols = by_tier_period.get(tiers[tier_name] * len(periods) + p)
                # The policy spaces proactive offers; the save desk answers whoever calls.
                cols = cols[cell_proactive[cell_of[cols]]] if cols is not None else None
                if cols is not None and cols.size:
                    allowed = tier.unit_count * policy.max_offers_per_line * length / policy.per_months
                    rows.add(_name("contact_policy", tier_name, period), "contact_policy", (tier_name, period), cols,
                             col_offers[cols], upper=allowed)
    if plan.roi_floor is not None:
        launch = list(launch_cols.items())
        rows.add("roi_floor", "roi_floor", (), np.concatenate([segment_cols, [j for _, j in launch]]),
                 np.concatenate([slopes - plan.roi_floor * col_cost,
                                 [-plan.roi_floor * launch_today[key] for key, _ in launch]]), lower=0.0)
    cell_number = {c: i for i, c in enumerate(cells)}
    for locked in plan.locked:
        cell = (locked.tier, locked.lever, locked.period)
        i = cell_number.get(cell)
        cols = segment_cols[seg_start[i]:seg_start[i + 1]] if i is not None else segment_cols[:0]
        rows.add(_name("locked", *cell), "locked", cell, cols, 1.0, locked.amount, locked.amount)
    for (lever, period), on in launch_cols.items():
        cols = by_lever_period[levers[lever] * len(periods) + periods[period]]
        ceiling = float(widths[cols].sum()) + BIG_M_SLACK
        rows.add(_name("launch", lever, period), "launch", (lever, period), np.append(cols, on),
                 np.append(np.ones(len(cols)), -ceiling), upper=0.0)
        minimum = scenario.levers[lever].min_spend
        if minimum > 0:
            rows.add(_name("min_spend", lever, period), "min_spend", (lever, period), np.append(cols, on),
                     np.append(np.ones(len(cols)), -minimum), lower=0.0)

    lengths = [len(ix) for ix in rows.index]
    return AllocationProblem(
        scenario=scenario, curves=dict(curves), cells=cells, seg_start=seg_start, col_names=None,
        col_lower=col_lower, col_upper=col_upper, integer=integer, cost=cost, maximize=True,
        objective_name=objective_name, rows=rows.rows,
        row_start=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        row_index=np.concatenate(rows.index) if rows.index else np.zeros(0, np.int64),
        row_value=np.concatenate(rows.value) if rows.value else np.zeros(0),
        launch_cols=launch_cols, total_col=total_col, seg_offset=offsets, seg_slope=slopes,
        seg_retained=retained_slopes, budget_total=float(total),
        kinds={row.name: (row.kind, row.about) for row in rows.rows})
