"""Shared paths for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_fits(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Within the block, fits of the stated churn are kept in one folder for the whole session, as a
    planner's results folder keeps them: the suite's processes (pytest-xdist's workers) fit the
    baseline once between them (``sim.calibration_cache``, the same bytes as fitting again)."""
    from sim.calibration_cache import CalibrationCache, keeping_calibrations

    # Every worker's base folder sits in one folder of the session.
    folder = tmp_path_factory.getbasetemp().parent / "fits"
    return lambda: keeping_calibrations(CalibrationCache(folder))


@pytest.fixture(scope="session")
def quick_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small market with a coarse curve design (two levels, one replication), to keep the suite quick."""
    text = (SCENARIOS / "small.yaml").read_text(encoding="utf-8")
    assert "\nrun:\n" in text
    text = text.replace("\nrun:\n", "\nrun:\n  estimation: {levels: [0.3, 1.0], replications: 1}\n")
    path = tmp_path_factory.mktemp("scenario") / "small_quick.yaml"
    path.write_text(text, encoding="utf-8")
    return path
