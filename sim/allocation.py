"""A retention allocation: money per tier x lever x period cell.

This is the budget-planning feed: the optimizer produces one, a planner may
write one by hand as a CSV with the columns ``tier, lever, period, amount``, and
the simulator spends from its cells. Reading a CSV checks every row against the
scenario and reports every mistake with its row number.
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

    def launches(self, scenario: Scenario) -> list[tuple[str, str, float]]:
        """(lever, period, launch cost) of every lever with a launch cost that a funded cell uses in a period."""
        used = sorted({(lever, period) for (_, lever, period), a in self.amounts.items() if a > 0})
        return [(lever, period, scenario.levers[lever].launch_cost) for lever, period in used
                if lever in scenario.levers and scenario.levers[lever].launch_cost > 0]

    def spend(self, scenario: Scenario) -> float:
        """What the allocation takes from the budget: its cells and the launch costs they bring."""
        return self.total + sum(cost for _, _, cost in self.launches(scenario))

    def feed(self, scenario: Scenario) -> pd.DataFrame:
        """The budget-planning feed: the cells, then a row per launch cost (tier :data:`LAUNCH`)."""
        launches = pd.DataFrame([(LAUNCH, lever, period, cost) for lever, period, cost in self.launches(scenario)],
                                columns=list(COLUMNS))
        return pd.concat([self.to_frame(), launches], ignore_index=True) if len(launches) else self.to_frame()

    def to_csv(self, path: str | Path, scenario: Scenario | None = None) -> None:
        frame = self.feed(scenario) if scenario is not None else self.to_frame()
        frame.to_csv(path, index=False, float_format="%.2f")

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]], scenario: Scenario, source: str = "allocation",
                  first_row: int = 2) -> Allocation:
        """Check rows (``tier``, ``lever``, ``period``, ``amount``) against the scenario."""
        problems: list[Problem] = []
        amounts: dict[Cell, float] = {}
        periods = [p.name for p in scenario.meta.periods]

        def bad(row: int, column: str, message: str, hint: str) -> None:
            problems.append(Problem(source, row, None, (column,), message, hint))

        for row_number, row in enumerate(rows, start=first_row):
            tier, lever, period = (str(row.get(k, "")).strip() for k in ("tier", "lever", "period"))
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
            policy = str(row.get("policy") or "").strip()
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
        _check_columns(list(frame.columns), source)
        return cls.from_rows(frame.to_dict("records"), scenario, source)

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
        _check_columns([c.strip() for c in reader.fieldnames], source)
        rows = [{(k or "").strip(): v for k, v in r.items()} for r in reader]
        return cls.from_rows(rows, scenario, source)


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


def _check_columns(columns: list[str], source: str) -> None:
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
