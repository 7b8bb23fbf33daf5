"""The ``strategies``, ``run`` and ``solver`` sections: what to compare and how to compute it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .types import Name, NonNegativeFloat, Section, Seq, StrategyRef, fail

StrategyKind = Literal[
    "no_retention", "uniform", "proportional_revenue", "key_accounts_first", "lp_optimal", "robust_lp", "csv",
]
BUILT_IN_STRATEGIES: tuple[str, ...] = StrategyKind.__args__[:-1]  # type: ignore[attr-defined]
SolverName = Literal["highs", "highs-simplex", "highs-ipm", "cbc"]
SOLVERS: tuple[str, ...] = SolverName.__args__  # type: ignore[attr-defined]
"""The LP/MILP solvers a scenario or the command line may name."""


class Strategy(Section):
    """A strategy to simulate and compare: a built-in rule or an allocation from a CSV file."""

    name: Name
    kind: StrategyKind
    allocation: str | None = None
    """For ``kind: csv``: the allocation file (tier, lever, period, amount), relative to the scenario file."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        # A built-in strategy may be listed by its name alone: "- uniform".
        if isinstance(data, str):
            return {"name": data, "kind": data}
        if isinstance(data, dict) and "kind" not in data:
            if "allocation" in data:
                return {**data, "kind": "csv"}
            if "name" in data:
                return {**data, "kind": data["name"]}
        return data

    @model_validator(mode="after")
    def _csv_has_file(self) -> Strategy:
        if self.kind == "csv" and not self.allocation:
            raise fail("a CSV strategy needs 'allocation: FILE'", "give the path of an allocation CSV")
        if self.kind != "csv" and self.allocation:
            raise fail(f"a '{self.kind}' strategy computes its own allocation", "remove 'allocation', or set 'kind: csv'")
        return self


class Estimation(Section):
    """Designed simulation runs that measure the response curves the planner does not state.

    For each lever and period, every tier's cell is funded at each level (a share of the
    cell's ceiling) in one run, and compared with a run without retention on the same random
    numbers; channel and lever capacities are lifted in these runs because the allocation
    enforces them. Runs: ``replications x (1 + levers x periods x levels)``.
    """

    levels: Annotated[Seq[Annotated[float, Field(gt=0.0, le=1.0)]], Field(min_length=1, max_length=20)] = (
        0.1, 0.25, 0.5, 1.0)
    """Spend levels per cell, as shares of its ceiling (the most the cell could spend: its
    capacity, contact policy and the total budget, whichever is least). More levels, a finer curve."""
    replications: Annotated[int, Field(ge=1, le=1_000)] = 2
    """Paired runs per level; the curve is fitted to their mean."""
    simulated_lines: Annotated[int, Field(ge=1_000, le=100_000_000)] = 60_000
    """About how many units the estimation runs simulate (the scenario is scaled down to it)."""

    @model_validator(mode="after")
    def _increasing(self) -> Estimation:
        if any(b <= a for a, b in zip(self.levels, self.levels[1:])):
            raise fail("the levels must increase", "list each share once, smallest first: [0.1, 0.25, 0.5, 1.0]")
        return self


class ClosedLoop(Section):
    """Rounds that check the allocation against the simulation and correct it.

    The first plan comes from curves measured one cell at a time. Each round simulates the plan, then
    measures each funded cell's curve in the context of the rest of the plan (the cells of a tier added
    one at a time, earliest period first, each at ``levels`` times its amount), and solves the
    allocation again with those curves; it stops when the plan's predicted value lies within the
    simulation's 95% interval and within ``tolerance`` of it (value retained, and value less discounted
    spend), or after ``rounds``. Runs per round: ``replications x (1 + levels x the
    most cells a tier has funded)``, at the estimation's scale.
    """

    rounds: Annotated[int, Field(ge=0, le=20)] = 4
    """Most rounds (0: the first plan as it is, unchecked)."""
    replications: Annotated[int, Field(ge=2, le=10_000)] | None = None
    """Paired runs per measurement in a round; by default the comparison's (``run.replications``). The
    years simulated differ (outages, the fates of a few key accounts) far more than the plans compared
    in one year do: on the same replications as the comparison, at the measurement's scale, the loop
    predicts what the comparison will simulate; on fewer, its prediction carries their luck (on the
    baseline, 8 replications whose years ran 3% better than the comparison's 20)."""
    tolerance: Annotated[float, Field(gt=0.0, le=1.0)] = 0.02
    """How far (a share of the simulated value) the prediction may be from the simulation and still agree.
    A round's curves are measured on the same random numbers the plan is simulated on, so the gap is the
    plan's change since they were measured, not noise: it can be held tighter than the interval."""
    levels: Annotated[Seq[Annotated[float, Field(gt=0.0, le=4.0)]], Field(min_length=1, max_length=10)] = (
        1.0, 1.5)
    """Where a funded cell is measured, as multiples of its amount; 1 must be among them (the plan itself).
    The largest is also the most a round may move a cell's amount up; below the smallest the curve is the
    straight line from nothing."""

    @model_validator(mode="after")
    def _has_the_plan(self) -> ClosedLoop:
        if any(b <= a for a, b in zip(self.levels, self.levels[1:])) or 1.0 not in self.levels:
            raise fail("the levels must increase and include 1 (the plan's own amount)",
                       "list each multiple once, smallest first: [0.5, 1.0, 1.5]")
        return self


class Run(Section):
    """How results are computed."""

    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 20261122
    """One seed for the whole run: the same seed gives the same bytes."""
    replications: Annotated[int, Field(ge=1, le=10_000)] = 20
    """Simulations per strategy (common random numbers across strategies); with ``target_half_width``, the
    most the comparison may run."""
    target_half_width: Annotated[float, Field(gt=0.0)] | None = None
    """Stop adding replications once the 95% interval of the recommended plan's NPV difference from the
    baseline strategy is no wider than this on either side (currency units), from 10 replications on and
    at most ``replications``; by default every one of ``replications`` runs."""
    baseline_strategy: StrategyRef | None = None
    """The strategy the others are compared against (paired differences); by default the first."""
    scale: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    """Simulate this share of the lines (results are scaled back up); 1 simulates every line."""
    queue_sample_calls: Annotated[int, Field(ge=100, le=10_000_000)] = 5_000
    """Calls per month the contact-center queue simulates; every real call takes the outcome of a
    simulated one of the same load. More calls, a smaller sampling error (reported), a slower run."""
    estimation: Estimation = Estimation()
    """How response curves are estimated where ``budget.response_curves`` states none."""
    closed_loop: ClosedLoop = ClosedLoop()
    """How the optimized plan is checked against the simulation and corrected."""


class Solver(Section):
    """The LP/MILP solver."""

    name: SolverName = "highs"
    """``highs`` (default: HiGHS chooses simplex or interior point), ``highs-simplex``,
    ``highs-ipm`` (interior point with crossover, for large problems) or ``cbc`` (the fallback)."""
    time_limit_seconds: Annotated[NonNegativeFloat, Field(le=86_400)] = 60.0
    mip_gap: Annotated[float, Field(ge=0.0, le=1.0)] = 1e-4
