"""Command-line values a planner types: amounts of money, rates, budget ranges, shares.

Each parser turns text into a number or says, in the planner's words, what to type instead;
argparse turns that message into a usage error (exit code 2).
"""

from __future__ import annotations

import argparse


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
