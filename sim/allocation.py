"""A retention allocation: money per tier x lever x period cell.

This is the budget-planning feed: the optimizer produces one, a planner may
write one by hand as a CSV with the columns ``tier, lever, period, amount``, and
the simulator spends from its cells. Reading a CSV checks every row against the
scenario and reports every mistake with its row number.

Every command writes the feed in one shape (:data:`FEED_COLUMNS`): a row per funded cell with the
scenario's targeting policy for its lever, then a row per launch cost, amounts in whole units of the
scenario's currency. A budget system takes whole yuan; rounding is done by largest remainder within
each planning period (:meth:`Allocation.rounded`), so no period's total, and not the plan's, grows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .scenario import Problem, Scenario, ScenarioError
from .scenario.types import did_you_mean

Cell = tuple[str, str, str]
"""(tier, lever, period)."""
LAUNCH = "(launch)"
"""The tier column of a launch-cost row: a lever's fixed cost in a period in which any of its cells is
funded. The simulator pays it whenever the lever is used; the row makes it visible in the feed."""
COLUMNS = ("tier", "lever", "period", "amount")
FEED_COLUMNS = (*COLUMNS, "policy")
"""The feed as every command writes it; ``policy`` is empty on launch-cost rows."""
AMOUNT_UNIT = 1.0
"""The feed's amounts are whole multiples of this, in the scenario's currency (one yuan for CNY)."""
STRATEGY = "strategy"
"""The column of a table that holds several strategies' allocations (a run's ``allocations.csv``)."""
DETAIL_COLUMNS = ("policy", "offers", "retained_lines", "value", "next_unit_value")
"""Columns the optimizer writes beside the amounts (how the cell targets, what it expects of it); read
and ignored, so its ``allocation.csv`` can be simulated as it is, except ``policy``, which must be the
scenario's for the lever (the scenario decides it). Any other column is a mistake."""
FORMER_DETAIL_COLUMNS = ("marginal_roi",)
"""Earlier names of detail columns (``next_unit_value`` was ``marginal_roi``): plans written before the
rename are still read and simulated as they are."""


class AllocationError(ScenarioError):
    """An allocation file or table does not fit the scenario."""


@dataclass(frozen=True)
class Allocation:
    """Money per (tier, lever, period) cell; cells not listed get nothing."""

    amounts: Mapping[Cell, float]

    @classmethod
    def empty(cls) -> Allocation:
        return cls({})

    @property
    def total(self) -> float:
        return float(sum(self.amounts.values()))

    def amount(self, tier: str, lever: str, period: str) -> float:
        return float(self.amounts.get((tier, lever, period), 0.0))

    def to_frame(self) -> pd.DataFrame:
        rows = [(t, lv, p, a) for (t, lv, p), a in sorted(self.amounts.items()) if a > 0]
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def rounded(self, unit: float = AMOUNT_UNIT) -> Allocation:
        """The allocation in whole multiples of ``unit``, by largest remainder within each period.

        Each period's total is rounded down to the unit and its cells share it: every cell gets its
        amount rounded down, and the units left go to the cells with the largest fractions (ties by
        cell name, so the result depends only on the amounts). No period, and so not the plan, spends
        more than before; a cell moves by less than one unit. Rounding a rounded allocation changes
        nothing.
        """
        if not (math.isfinite(unit) and unit > 0):
            raise ValueError(f"the rounding unit must be a positive amount, not {unit}")
        amounts: dict[Cell, float] = {}
        periods = sorted({cell[2] for cell, a in self.amounts.items() if a > 0})
        for period in periods:
            cells = sorted(cell for cell, a in self.amounts.items() if a > 0 and cell[2] == period)
            units = {cell: self.amounts[cell] / unit for cell in cells}
            # A total a hair under a whole unit (floating-point sums) still counts as that unit.
            target = math.floor(sum(units.values()) + 1e-6)
            whole = {cell: math.floor(u + 1e-9) for cell, u in units.items()}
            left = target - sum(whole.values())
            by_fraction = sorted(cells, key=lambda c: (-(units[c] - whole[c]), c))
            for cell in by_fraction[:max(0, left)]:
                whole[cell] += 1
            amounts.update({cell: float(n * unit) for cell, n in whole.items() if n > 0})
        return Allocation(amounts)

    def launches(self, scenario: Scenario) -> list[tuple[str, str, float]]:
        """(lever, period, launch cost) of every lever with a launch cost that a funded cell uses in a period."""
        used = sorted({(lever, period) for (_, lever, period), a in self.amounts.items() if a > 0})
        return [(lever, period, scenario.levers[lever].launch_cost) for lever, period in used
                if lever in scenario.levers and scenario.levers[lever].launch_cost > 0]

    def spend(self, scenario: Scenario) -> float:
        """What the allocation takes from the budget: its cells and the launch costs they bring."""
        return self.total + sum(cost for _, _, cost in self.launches(scenario))

    def feed(self, scenario: Scenario, unit: float | None = AMOUNT_UNIT,
             detail: pd.DataFrame | None = None) -> pd.DataFrame:
        """The budget-planning feed (:data:`FEED_COLUMNS`): the cells rounded to ``unit`` (:meth:`rounded`;
        ``None``: as they are, for a record of what was simulated) with their targeting policy, then a row
        per launch cost (tier :data:`LAUNCH`, the scenario's figure as stated). Amounts are integers when
        they are whole, so a CSV shows ``1503303``.

        ``detail``: a plan's table (tier, lever, period and the optimizer's :data:`DETAIL_COLUMNS`); what it
        expects of each cell follows the cell's amount (empty on launch rows)."""
        frame = self._feed(scenario, unit)
        if detail is None:
            return frame
        expected = [c for c in DETAIL_COLUMNS if c in detail.columns and c != "policy"]
        cells = detail.loc[detail["tier"] != LAUNCH, ["tier", "lever", "period", *expected]]
        return frame.merge(cells, how="left", on=["tier", "lever", "period"], validate="one_to_one")

    def _feed(self, scenario: Scenario, unit: float | None) -> pd.DataFrame:
        plan = self.rounded(unit) if unit is not None else self
        levers = scenario.levers
        rows = [(t, lv, p, a, scenario.targeting.cell_policy(levers[lv]) if lv in levers else "")
                for (t, lv, p), a in sorted(plan.amounts.items()) if a > 0]
        rows += [(LAUNCH, lever, period, cost, "") for lever, period, cost in plan.launches(scenario)]
        frame = pd.DataFrame(rows, columns=list(FEED_COLUMNS))
        amounts = frame["amount"].astype(float)
        if len(frame) and (amounts == amounts.round()).all() and amounts.abs().max() < 2**53:
            frame["amount"] = amounts.astype("int64")
        else:
            frame["amount"] = amounts
        return frame

    def to_csv(self, path: str | Path, scenario: Scenario) -> None:
        """Write the feed (:meth:`feed`); it reads back with :meth:`read_csv` as :meth:`rounded` of this."""
        self.feed(scenario).to_csv(path, index=False, float_format="%.10g", lineterminator="\n")

    def over_budget(self, scenario: Scenario) -> list[str]:
        """How the allocation spends more than the scenario's budget allows, in the planner's words: its
        total (launch costs included) against ``budget.total``, each period's against ``budget.per_period``.
        Empty when it fits."""
        currency = scenario.meta.currency
        found = []
        spend, total = self.spend(scenario), scenario.budget.total
        if spend > total * (1 + 1e-9) + 0.005:
            found.append(f"it spends {spend:,.0f} {currency} (launch costs included), more than budget.total "
                         f"{total:,.0f}")
        for period, cap in scenario.budget.per_period.items():
            used = sum(a for (_, _, p), a in self.amounts.items() if p == period) + sum(
                cost for _, p, cost in self.launches(scenario) if p == period)
            if used > cap * (1 + 1e-9) + 0.005:
                found.append(f"it spends {used:,.0f} {currency} in period {period}, more than "
                             f"budget.per_period.{period} {cap:,.0f}")
        return found

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]], scenario: Scenario, source: str = "allocation",
                  first_row: int = 2, row_numbers: Iterable[int] | None = None) -> Allocation:
        """Check rows (``tier``, ``lever``, ``period``, ``amount``) against the scenario; ``row_numbers``: the
        rows' places in the file (default: counted from ``first_row``)."""
        problems: list[Problem] = []
        amounts: dict[Cell, float] = {}
        periods = [p.name for p in scenario.meta.periods]

        def bad(row: int, column: str, message: str, hint: str) -> None:
            problems.append(Problem(source, row, None, (column,), message, hint))

        rows = list(rows)
        numbers = list(row_numbers) if row_numbers is not None else range(first_row, first_row + len(rows))
        for row_number, row in zip(numbers, rows):
            tier, lever, period = (_text(row.get(k)) for k in ("tier", "lever", "period"))
            if tier == LAUNCH:
                _check_launch(row, row_number, lever, period, scenario, bad)
                continue
            ok = True
            if tier not in scenario.tiers:
                bad(row_number, "tier", f"unknown tier '{tier}'{did_you_mean(tier, scenario.tiers)}",
                    f"use one of: {', '.join(scenario.tiers)}")
                ok = False
            if lever not in scenario.levers:
                bad(row_number, "lever", f"unknown lever '{lever}'{did_you_mean(lever, scenario.levers)}",
                    f"use one of: {', '.join(scenario.levers)}")
                ok = False
            elif tier in scenario.tiers and scenario.levers[lever].tiers and tier not in scenario.levers[lever].tiers:
                bad(row_number, "lever", f"lever '{lever}' is not offered to tier '{tier}'",
                    f"the scenario offers it to: {', '.join(scenario.levers[lever].tiers)}")
                ok = False
            if period not in periods:
                bad(row_number, "period", f"unknown period '{period}'{did_you_mean(period, periods)}",
                    f"use one of: {', '.join(periods)}")
                ok = False
            raw = row.get("amount", "")
            try:
                amount = float(str(raw).strip().replace(",", "")) if not isinstance(raw, (int, float)) else float(raw)
            except ValueError:
                bad(row_number, "amount", f"amount '{raw}' is not a number", "write the amount as a plain number, e.g. 120000")
                continue
            if not math.isfinite(amount) or amount < 0:
                bad(row_number, "amount", f"amount {raw} must be a finite number of at least 0", "use 0 or more")
                continue
            policy = _text(row.get("policy"))
            if ok and policy:
                stated = scenario.targeting.cell_policy(scenario.levers[lever])
                if policy != stated:
                    bad(row_number, "policy", f"the scenario targets lever '{lever}' by '{stated}', not '{policy}'",
                        f"write '{stated}', or change levers.{lever}.policy (or targeting.policy) in the scenario")
                    ok = False
            if ok:
                key = (tier, lever, period)
                if key in amounts:
                    bad(row_number, "tier", f"the cell {tier} / {lever} / {period} is listed twice",
                        "merge the two rows into one")
                    continue
                amounts[key] = amount
        if problems:
            raise AllocationError(problems)
        return cls(amounts)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, scenario: Scenario, source: str = "allocation table") -> Allocation:
        """Check a table (a plan's ``allocation``, a feed read with pandas) against the scenario; its
        ``policy`` and the optimizer's detail columns are read and ignored as in a CSV."""
        _check_columns([str(c) for c in frame.columns], source)
        return cls.from_rows(frame.to_dict("records"), scenario, source)

    @classmethod
    def of(cls, allocation: Allocation | pd.DataFrame | None, scenario: Scenario) -> Allocation:
        """An allocation from what a caller holds: an :class:`Allocation`, a table with ``tier, lever,
        period, amount`` (checked as :meth:`from_frame`), or nothing (no retention)."""
        if allocation is None:
            return cls.empty()
        if isinstance(allocation, Allocation):
            return allocation
        if isinstance(allocation, pd.DataFrame):
            return cls.from_frame(allocation, scenario)
        raise TypeError(f"an allocation is an Allocation or a DataFrame with columns {', '.join(COLUMNS)}, "
                        f"not {type(allocation).__name__}")

    @classmethod
    def read_csv(cls, path: str | Path, scenario: Scenario) -> Allocation:
        """Read a planner's allocation CSV (``tier,lever,period,amount``)."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise AllocationError([Problem(source, None, None, (), "no such file", "check the path")]) from None
        except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
            raise AllocationError([Problem(source, None, None, (), f"cannot be read as a UTF-8 text table ({type(exc).__name__})",
                                           "save the allocation as a CSV file (UTF-8)")]) from None
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            raise AllocationError([Problem(source, None, None, (), "the file is empty",
                                           f"start with the header line: {','.join(COLUMNS)}")])
        header = [c.strip() for c in reader.fieldnames]
        _check_columns(header, source)
        rows, numbers, problems = [], [], []
        for record in reader:
            # A row of more or fewer cells than the header would be read with its cells shifted or lost
            # (an amount written 1,000 is two cells): the planner must see it, not get amount 1.
            extra, missing = record.pop(None, None), [k for k, v in record.items() if v is None]
            if extra is not None or missing:
                count = len(header) + len(extra or ()) - len(missing)
                problems.append(Problem(source, reader.line_num, None, ("amount" if extra else missing[0],),
                                        f"the row has {count} cells, the header {len(header)}",
                                        _CELL_COUNT_HINT))
                continue
            rows.append({(k or "").strip(): v for k, v in record.items()})
            numbers.append(reader.line_num)
        try:
            allocation = cls.from_rows(rows, scenario, source, row_numbers=numbers)
        except AllocationError as exc:
            problems.extend(exc.problems)
        if problems:
            raise AllocationError(sorted(problems, key=lambda p: p.line or 0))
        return allocation


_CELL_COUNT_HINT = ("give every row one cell per column of the header; write amounts without thousands separators "
                    "(1000, not 1,000) or quote them (\"1,000\")")


def _check_launch(row: Mapping[str, object], row_number: int, lever: str, period: str, scenario: Scenario,
                  bad: Callable[[int, str, str, str], None]) -> None:
    """A launch-cost row: informational (the simulator pays a lever's launch whenever the lever is used),
    but it must name a lever with that launch cost."""
    if lever not in scenario.levers:
        bad(row_number, "lever", f"unknown lever '{lever}'{did_you_mean(lever, scenario.levers)}",
            f"use one of: {', '.join(scenario.levers)}")
        return
    periods = [p.name for p in scenario.meta.periods]
    if period not in periods:
        bad(row_number, "period", f"unknown period '{period}'{did_you_mean(period, periods)}",
            f"use one of: {', '.join(periods)}")
        return
    cost = scenario.levers[lever].launch_cost
    if cost <= 0:
        bad(row_number, "tier", f"lever '{lever}' has no launch cost, so it has no {LAUNCH} row",
            "remove the row")
        return
    try:
        amount = float(str(row.get("amount", "")).strip().replace(",", ""))
    except ValueError:
        amount = float("nan")
    if not math.isclose(amount, cost, rel_tol=1e-6, abs_tol=0.01):
        bad(row_number, "amount", f"the launch cost of '{lever}' is {cost:,.2f}, not {row.get('amount')}",
            f"write {cost:.2f}; the simulator pays it in every period the lever is used (levers.{lever}.launch_cost)")


def _text(value: object) -> str:
    """A cell of a table as text; an empty cell (None, or NaN from pandas) is ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _check_columns(columns: list[str], source: str) -> None:
    if STRATEGY in columns:
        raise AllocationError([Problem(source, 1, None, (), "this table holds the allocations of several "
                                       f"strategies (column '{STRATEGY}'); one allocation is simulated at a time",
                                       "use a run's allocation.csv (the recommended plan), or keep one strategy's "
                                       f"rows of allocations.csv and delete the '{STRATEGY}' column")])
    missing = [c for c in COLUMNS if c not in columns]
    extra = [c for c in columns if c not in (*COLUMNS, *DETAIL_COLUMNS, *FORMER_DETAIL_COLUMNS)]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
        if extra:
            parts.append("unexpected column" + ("s " if len(extra) > 1 else " ") + ", ".join(
                f"{c}{did_you_mean(c, COLUMNS)}" for c in extra))
        raise AllocationError([Problem(source, 1, None, (), "; ".join(parts),
                                       f"the header must be: {','.join(COLUMNS)} (the optimizer's "
                                       f"{', '.join(DETAIL_COLUMNS)} may follow)")])
