"""Command-line values a planner types: amounts of money, rates, budget ranges, shares.

Each parser turns text into a number or says, in the planner's words, what to type instead;
argparse turns that message into a usage error (exit code 2).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def policies(text: str) -> tuple[str, ...]:
    """Targeting policies to choose among, comma-separated: risk,uplift or risk,uplift,value."""
    known = ("risk", "uplift", "value")
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    wrong = [p for p in chosen if p not in known]
    if wrong or not chosen:
        raise argparse.ArgumentTypeError(f"'{text}' names no targeting policies of {', '.join(known)}; "
                                         "type e.g. risk,uplift")
    return tuple(dict.fromkeys(chosen))


def money(text: str) -> float:
    """An amount of money: 2500000, 2,500,000, 2.5M or 750k."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    factor = {"k": 1e3, "m": 1e6, "b": 1e9}.get(cleaned[-1:].lower(), 1.0)
    if factor != 1.0:
        cleaned = cleaned[:-1]
    try:
        value = float(cleaned) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an amount (write e.g. 2500000, 2.5M or 750k)") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' must be a finite amount of at least 0")
    return value


def budgets(text: str) -> list[float]:
    """FROM:TO:N as N evenly spaced budgets."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"'{text}' is not FROM:TO:N (e.g. 0:72M:50)")
    low, high = money(parts[0]), money(parts[1])
    try:
        count = int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(f"N in '{text}' must be a whole number") from None
    if not 2 <= count <= 10_000:
        raise argparse.ArgumentTypeError("N must be between 2 and 10000")
    if high <= low:
        raise argparse.ArgumentTypeError(f"TO must be more than FROM in '{text}'")
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def rate(text: str) -> float:
    """A monthly rate: 1.5% or 0.015."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a rate (write 1.5% or 0.015)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be a monthly rate from 0 up to (not including) 100%")
    return value


def lines(text: str) -> float:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of lines") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 1")
    return value


SEED_MAX = 2**63 - 1
"""The largest seed a scenario's ``run.seed`` accepts; the command line takes the same range."""


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**63 - 1, as ``run.seed`` in a scenario."""
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number (write e.g. 7)") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"'{text}' must be a whole number from 0 to {SEED_MAX} (e.g. 7)")
    return value


def destination_problem(path: Path, kind: str) -> str | None:
    """Why nothing can be written at ``path`` (a ``kind`` of "folder" or "file"), or None when it can.

    Checked before any work starts, so a long simulation never ends in an unwritable place. The path
    itself may exist (whether an existing output is replaced is the command's decision), but not as the
    other kind; the nearest folder that exists above it must be a folder we may write in, and everything
    between it and the path is created on writing.
    """
    if kind == "file" and path.is_dir():
        return f"'{path}' is a folder; give a file name (e.g. {path / 'out.csv'})"
    if kind == "folder" and path.exists() and not path.is_dir():
        return f"'{path}' is a file, not a folder; give a folder that does not exist yet"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"'{parent}' is a file, so nothing can be written under it; choose a path outside it"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to write in '{parent}'; choose a folder you may write in"
    return None


def _destination(kind: str):  # type: ignore[no-untyped-def]
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"give a {kind} name, not an empty text")
        problem = destination_problem(Path(text), kind)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return text
    parse.__name__ = f"output {kind}"  # how argparse names the type in its own messages
    return parse


out_folder = _destination("folder")
"""An output folder given on the command line (checked as :func:`destination_problem`)."""
out_file = _destination("file")
"""An output file given on the command line (checked as :func:`destination_problem`)."""
