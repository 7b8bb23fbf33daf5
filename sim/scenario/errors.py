"""What a planner sees when a scenario file is wrong.

Every mistake becomes a :class:`Problem`: the file, the line and column, the key
path (``tiers.households.lines``), what is wrong and how to fix it. Loading
collects all problems of a file before it raises one :class:`ScenarioError`, so a
planner fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

KeyPath = tuple[str | int, ...]
"""Where a value sits in the scenario: mapping keys and list indices from the top."""


def format_path(path: KeyPath) -> str:
    """``("tiers", "gold", "regions", 0)`` -> ``tiers.gold.regions[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file, and where."""

    file: str
    """The file as the planner named it."""
    line: int | None
    """1-based line of the offending value or key; ``None`` when the file has no lines (binary, empty)."""
    column: int | None
    """1-based column, alongside ``line``."""
    path: KeyPath
    """Key path of the offending value; empty for problems of the whole file."""
    message: str
    """What is wrong, in the planner's words."""
    hint: str = ""
    """How to fix it."""
    severity: Literal["error", "warning"] = "error"
    """An error stops the scenario from loading; a warning names something the file says that will not
    happen as written (the scenario still loads)."""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.severity == "warning":
            where += ": warning"
        text = f"{where}: {format_path(self.path)}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text


class ScenarioWarning(UserWarning):
    """A scenario loads, but something it says will not happen as written; ``problem`` says what and where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class ScenarioError(ValueError):
    """A scenario file cannot be used as it is; ``problems`` lists every reason found."""

    problems: Sequence[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        return head + ":\n" + "\n".join(str(p) for p in self.problems)
