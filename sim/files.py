"""Files the engine writes whole or not at all, and the digest of its own source that caches are keyed by."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
"""The project's folder: ``sim/`` and ``optimize/`` sit in it."""


def write_file(destination: str | Path, write: Callable[[IO[Any]], object], *, binary: bool = False) -> Path:
    """Write one file (text, or bytes with ``binary``) whole or not at all: ``write`` fills a hidden file
    beside ``destination``, which then replaces it in one step (an interrupted write leaves the old file,
    or none)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{destination.name}.partial-", dir=destination.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)  # a file like any other, not mkstemp's private 0600
        with (os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8", newline="")) as stream:
            write(stream)
        os.replace(staging, destination)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return destination


_SOURCES: dict[tuple[str, ...], str] = {}


def source_digest(entries: tuple[str, ...]) -> str:
    """The engine's version and a digest of the source files under ``entries`` (folders or files of the
    project, computed once per process): what a kept result was computed by."""
    if entries not in _SOURCES:
        h = hashlib.sha256(__version__.encode())
        for entry in entries:
            path = ROOT / entry
            for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
                if file.is_file():
                    h.update(file.relative_to(ROOT).as_posix().encode())
                    h.update(file.read_bytes())
        _SOURCES[entries] = f"{__version__}:{h.hexdigest()}"
    return _SOURCES[entries]


def table_digests(scenario: Scenario) -> dict[str, str]:
    """For a scenario made from a customer table, the digests of its table and mapping files (their
    names where they are missing): what a kept result read besides the scenario."""
    population = scenario.population
    if population is None:
        return {}
    base = Path(scenario._source_dir) if scenario._source_dir else Path.cwd()
    found = {}
    for name, ref in (("table", population.table), ("mapping", population.mapping)):
        path = base / ref
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ref
    return found
