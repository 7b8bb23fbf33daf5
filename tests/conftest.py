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
def quick_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small market with a coarse curve design (two levels, one replication), to keep the suite quick."""
    text = (SCENARIOS / "small.yaml").read_text(encoding="utf-8")
    assert "\nrun:\n" in text
    text = text.replace("\nrun:\n", "\nrun:\n  estimation: {levels: [0.3, 1.0], replications: 1}\n")
    path = tmp_path_factory.mktemp("scenario") / "small_quick.yaml"
    path.write_text(text, encoding="utf-8")
    return path
