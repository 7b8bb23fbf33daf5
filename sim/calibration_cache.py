"""The fit of the stated churn made once and reused, by this process and by later commands.

Fitting the stated churn (:func:`sim.engine.prepare`: pilot runs until every tier churns at its
stated rate under normal service) is the fixed cost of every command that simulates: seconds for the
small market, about a minute for the baseline on a 2-core machine. A planner's what-if questions (another budget, another strategy, more
replications, a plan to simulate) leave it unchanged, so it is kept with its *key*, a digest of
exactly what it depends on, and reused only where fitting again would give the same bytes:

* the scenario, except what the fit does not read: the strategies, the solver, the budget (the pilots
  spend nothing), the ``run`` settings (the pilots set their own scale and sample of calls; the seed is
  given apart) and the scenario's description. Everything else counts, in the order written, since a
  fit of tiers listed in another order is another fit (its results are the same, which a test checks
  by fitting again);
* for a scenario made from a customer table, its table's and mapping's contents;
* the seed, and the engine: its version and the digest of ``sim/``.

A fit is kept in two places, in the same form:

* in the process, the last :data:`KEPT_IN_PROCESS` fits (a notebook or a test session asking again);
* on disk, ``.calibrations/<key>.pickle`` beside the output folders of a scenario
  (``results/<scenario>/.calibrations``), when a command names that folder
  (:func:`keeping_calibrations`): written whole or not at all, read only if it holds its key, used
  with a line saying so; a damaged file is fitted again and replaced. ``--remeasure`` fits again.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .files import source_digest, table_digests, write_file
from .scenario import Scenario

if TYPE_CHECKING:  # the engine is loaded by the first fit, not by a command that only reads a scenario
    from .engine import Calibration, FanOut

CALIBRATION_FOLDER = ".calibrations"
"""The folder of kept fits, beside the output folders of a scenario."""
FORMAT = 1
"""The kept file's format: a file of another format is fitted again."""
KEPT_IN_PROCESS = 4
"""Fits a process keeps (a few kilobytes to a few megabytes each)."""
NOT_READ = ("strategies", "solver", "budget", "run")
"""The scenario's sections the fit does not read (a test fits again with each changed)."""


def calibration_key(scenario: Scenario, seed: int) -> str:
    """The key of ``scenario``'s fit on ``seed`` (see the module's description)."""
    data = scenario.model_dump(mode="json")
    for section in NOT_READ:
        data.pop(section)
    data["meta"].pop("description", None)
    parts = {"scenario": data, "seed": int(seed), "engine": source_digest(("sim",)), **table_digests(scenario)}
    # Not sorted: the order tiers, levers and regions are written in is part of the key.
    text = json.dumps(parts, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_KEPT: OrderedDict[str, Calibration] = OrderedDict()


@dataclass
class CalibrationCache:
    """Where a command keeps its fits on disk (``folder``; ``None``: in the process only), whether it fits
    again (``refit``), where it says a fit was reused (``say``), and what it used (``used``: key and
    where it came from, ``None`` for fitted now)."""

    folder: Path | None = None
    refit: bool = False
    say: Callable[[str], None] | None = None
    used: list[tuple[str, str | None]] = field(default_factory=list)


_active: ContextVar[CalibrationCache | None] = ContextVar("retention_calibrations", default=None)


def fits_used() -> list[dict[str, str | None]]:
    """For the manifest, the fits the command (the enclosing :func:`keeping_calibrations`) used: each one's
    key, and the file it was read from (``None``: fitted by this process)."""
    cache = _active.get()
    return [{"key": key, "reused_from": origin} for key, origin in dict.fromkeys(cache.used)] if cache else []


@contextmanager
def keeping_calibrations(cache: CalibrationCache) -> Iterator[CalibrationCache]:
    """Within the block, fits are kept and found as ``cache`` says."""
    token = _active.set(cache)
    try:
        yield cache
    finally:
        _active.reset(token)


def calibrated(scenario: Scenario, seed: int, fan_out: FanOut | None = None) -> Calibration:
    """The fit of ``scenario`` on ``seed``: kept by this process, kept on disk, or made now
    (:func:`sim.engine.prepare`, its pilots run by ``fan_out``) and kept."""
    cache = _active.get() or CalibrationCache()
    key = calibration_key(scenario, seed)
    path = cache.folder / f"{key}.pickle" if cache.folder is not None else None
    found = None if cache.refit else _KEPT.get(key)
    origin = None
    if found is None and path is not None and not cache.refit:
        found = _read(path, key)
        origin = str(path) if found is not None else None
    fitted = found is None
    if found is None:
        from .engine import prepare

        found = prepare(scenario, seed, fan_out=fan_out)
    if origin is not None and cache.say is not None:
        cache.say(f"fit of the stated churn: reused from {origin} (--remeasure fits it again)")
    # A fit made now replaces whatever the file held (a damaged file, another format); one this process
    # kept is written if the folder lacks it.
    if path is not None and origin is None and (fitted or not path.is_file()):
        record = {"format": FORMAT, "key": key, "calibration": found}
        try:
            write_file(path, lambda stream: pickle.dump(record, stream, protocol=pickle.HIGHEST_PROTOCOL),
                       binary=True)
        except OSError as exc:  # keeping it saves time later; the command's own results do not need it
            if cache.say is not None:
                cache.say(f"warning: the fit of the stated churn could not be kept in {path.parent} ({exc}); "
                          "the next command fits it again")
    _KEPT[key] = found
    _KEPT.move_to_end(key)
    while len(_KEPT) > KEPT_IN_PROCESS:
        _KEPT.popitem(last=False)
    cache.used.append((key, origin))
    return found


def _read(path: Path, key: str) -> Calibration | None:
    """The fit kept in ``path`` if it is one of ``key`` in this format; ``None`` for a missing, damaged or
    foreign file (fitted again, and replaced)."""
    from .engine import Calibration

    try:
        with open(path, "rb") as stream:
            record = pickle.load(stream)
    except Exception:  # noqa: BLE001 - whatever the file holds, a fit is made again
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != key \
            or not isinstance(record.get("calibration"), Calibration):
        return None
    return record["calibration"]
