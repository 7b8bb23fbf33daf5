"""The scenario reader under mutation: thousands of broken variants of the shipped scenarios, in process.

Each variant is one mistake a planner or a hostile file could make, applied to the parsed data of a
shipped scenario (a value replaced by NaN, 1e300, a list, a huge count; a key dropped, misspelt or
added; a named item copied hundreds of times) or to its text (a tag, an anchor and alias, a merge).
Whatever the variant, the reader either returns a scenario or raises :class:`ScenarioError` whose
every problem names the file, a place and a fix: no other exception, ever. The draws are seeded, so
a failure names a variant that can be replayed.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.scenario import (
    KeyPath,
    ScenarioError,
    YamlDocument,
    parse_yaml,
    validate_document,
)
from sim.scenario.capacity import MAX_VALUE

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
DATA_MUTATIONS = 10_000
TEXT_MUTATIONS = 400
SECONDS_ALLOWED = 60.0
"""The whole fuzz in process; it takes well under this on a loaded 2-core machine."""

HOSTILE_VALUES: tuple[Any, ...] = (
    math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-320, 0, -1, 1, 0.5, 2, 12, 60.0, 255, 256, 720.0, 745.0,
    2**31, 2**63, 10**30, -(10**30), True, False, None, "", "x", "no", "2027-01-01", "a" * 500, [], {}, [1, 2],
    {"a": 1}, [math.nan], {"x": math.inf}, [[[]]],
)
"""Values a mistake can put anywhere: not finite, out of any range, of the wrong type, empty, huge."""

TEXT_INJECTIONS: tuple[str, ...] = (
    "!!int many", "!!float eighty", "!!bool maybe", "!!timestamp 4", "!!null x", "!!str 5", "!!map x", "!!seq x",
    "!!binary aGk=", "!!set {a: null}", "!!python/name:os.system", "!custom 1", "&a [*a]", "&b {x: *b}",
    "{<<: 5}", "{<<: [1]}", ".nan", ".inf", "-.inf", "1e999", "9" * 5000, "0x1F", "0o17", "1_000", "12:30",
    "2027-01-01", "[", "{", "*nowhere", "'unclosed", "@", "`", "%TAG", "- - -", "? complex\n: key",
)
"""Texts a value can be replaced with at the YAML level: tags on values they do not fit, aliases into
their own anchor, merges of non-mappings, numbers YAML reads as infinite or too long, broken syntax."""


def _numbers(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, float]]:
    if isinstance(node, float):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, path + (key,))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _numbers(value, path + (i,))


def _paths(node: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, path + (i,))


def _replaced(node: Any, path: KeyPath, change: Any) -> Any:
    """``node`` with the value at ``path`` passed through ``change``; only the containers on the way
    are copied, so the shipped data stays as it was."""
    if not path:
        return change(node)
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replaced(node[head], rest, change)
    return copy


def _mutation(rng: random.Random, data: dict[str, Any], paths: list[KeyPath]) -> Any:
    path = rng.choice(paths)
    kind = rng.randrange(7)
    if kind <= 2 or not path:
        value = rng.choice(HOSTILE_VALUES)
        return _replaced(data, path, lambda _: value) if path else value
    parent, last = path[:-1], path[-1]
    if kind == 3:  # a key or item dropped
        def drop(container: Any) -> Any:
            copy = dict(container) if isinstance(container, dict) else list(container)
            del copy[last]
            return copy
        return _replaced(data, parent, drop)
    if kind == 4:  # a key misspelt, or an item listed twice
        def respell(container: Any) -> Any:
            if isinstance(container, list):
                return container + [container[last]]
            copy = dict(container)
            copy[str(last)[:-1] + "x" if str(last) else "x"] = copy.pop(last)
            return copy
        return _replaced(data, parent, respell)
    if kind == 5:  # the value wrapped in a list, or a mapping for a number
        return _replaced(data, path, lambda v: [v] if rng.random() < 0.5 else {"amount": v})
    # A named item copied many times (regions, levers, tiers past what the arrays can hold).
    copies = rng.choice((2, 130, 300))

    def multiply(container: Any) -> Any:
        if isinstance(container, dict):
            return {**container, **{f"{str(last)[:40]}_{i}": container[last] for i in range(copies)}}
        return container + [container[last]] * copies
    return _replaced(data, parent, multiply)


def _text_mutation(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    candidates = [i for i, ln in enumerate(lines) if ": " in ln and not ln.lstrip().startswith("#")]
    i = rng.choice(candidates)
    key, _, _ = lines[i].partition(": ")
    lines[i] = f"{key}: {rng.choice(TEXT_INJECTIONS)}"
    return "\n".join(lines) + "\n"


def _check(run: Any, label: str, outcomes: dict[str, int]) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scenario = run()
        outcomes["valid"] += 1
        for where, number in _numbers(scenario.model_dump()):
            assert math.isfinite(number) and abs(number) <= MAX_VALUE, f"{label}: {where} = {number!r} was accepted"
    except ScenarioError as error:
        outcomes["refused"] += 1
        assert error.problems, label
        for problem in error.problems:
            assert problem.file and problem.message, f"{label}: {problem}"
            assert problem.hint, f"{label}: no fix offered: {problem}"
            assert problem.line is not None or problem.path, f"{label}: no place given: {problem}"
    except Exception as error:  # noqa: BLE001 - the point: anything else is a crash
        pytest.fail(f"{label}: {type(error).__name__}: {error}")


def test_ten_thousand_mutations_of_the_shipped_scenarios_are_refused_or_loaded_never_crash() -> None:
    rng = random.Random(20261203)
    start = time.process_time()
    docs = [parse_yaml(path.read_bytes(), path.name) for path in SHIPPED]
    paths = [list(_paths(doc.data)) for doc in docs]
    outcomes = {"valid": 0, "refused": 0}
    for n in range(DATA_MUTATIONS):
        k = rng.randrange(len(docs))
        doc = docs[k]
        data = _mutation(rng, doc.data, paths[k])
        variant = YamlDocument(doc.file, data, doc.value_positions, doc.key_positions)
        _check(lambda variant=variant: validate_document(variant), f"data mutation {n} of {doc.file}", outcomes)
    small = [path for path in SHIPPED if path.stat().st_size < 5_000]
    for n in range(TEXT_MUTATIONS):
        path = rng.choice(small)
        text = _text_mutation(rng, path.read_text(encoding="utf-8"))
        _check(lambda text=text, name=path.name: validate_document(parse_yaml(text.encode("utf-8"), name)),
               f"text mutation {n} of {path.name}", outcomes)
    seconds = time.process_time() - start
    assert outcomes["valid"] + outcomes["refused"] == DATA_MUTATIONS + TEXT_MUTATIONS
    # Most mutations break the scenario; a few leave it valid (a description changed, an optional key dropped).
    assert outcomes["refused"] > 0.6 * (DATA_MUTATIONS + TEXT_MUTATIONS), outcomes
    assert outcomes["valid"] > 0, outcomes
    assert seconds < SECONDS_ALLOWED, f"the fuzz took {seconds:.1f} s of CPU"
