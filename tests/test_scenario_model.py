"""Loading fills defaults in one place, gives immutable objects, and keeps every problem's place."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario import (
    Problem,
    ScenarioError,
    load_scenario,
    parse_yaml,
    validate_document,
)

from .conftest import SCENARIOS

SMALL = (SCENARIOS / "small.yaml").read_bytes()


def load_text(text: str, name: str = "test.yaml"):
    return validate_document(parse_yaml(text.encode(), name))


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_text(text)
    return list(info.value.problems)


def test_defaults_are_filled() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    tier = scenario.tiers["households"]
    assert tier.sensitivity.price_gap == 2.0 and tier.satisfaction == pytest.approx(0.788)
    assert scenario.targeting.model_auc == 0.75
    assert [s.name for s in scenario.strategies][:2] == ["no_retention", "uniform"]


def test_periods_default_to_years_of_the_horizon() -> None:
    text = SMALL.decode().replace("  periods:\n    - {name: H1, months: 6}\n    - {name: H2, months: 6}\n", "")
    text = text.replace("horizon_months: 12", "horizon_months: 30").replace("per_period: {H1: 120000, H2: 120000}", "")
    scenario = load_text(text)
    assert [(p.name, p.months) for p in scenario.meta.periods] == [("Y1", 12), ("Y2", 12), ("Y3", 6)]
    assert scenario.meta.period_of_month(25) == "Y3"


def test_scenario_is_immutable() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    with pytest.raises(Exception):
        scenario.meta.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        scenario.tiers["households"] = scenario.tiers["prepaid"]  # type: ignore[index]


def test_numbers_in_scientific_notation_are_numbers() -> None:
    scenario = load_text(SMALL.decode().replace("total: 200000", "total: 2e5"))
    assert scenario.budget.total == 200000.0


def test_a_tier_named_like_a_yaml_boolean_stays_a_name() -> None:
    text = SMALL.decode().replace("  prepaid:\n    segment", "  on:\n    segment").replace("[households, prepaid]", "[households, 'on']")
    scenario = load_text(text)
    assert "on" in scenario.tiers


def test_a_date_like_text_stays_the_text_written() -> None:
    text = SMALL.decode()
    stated = next(line for line in text.splitlines() if line.startswith("  description: "))
    scenario = load_text(text.replace(stated, "  description: 2027-01-01"))
    assert scenario.meta.description == "2027-01-01"


def test_a_core_tag_that_fits_its_value_is_read_and_one_that_does_not_is_placed() -> None:
    scenario = load_text(SMALL.decode().replace("    arpu: 89\n", "    arpu: !!float 89\n"))
    assert scenario.tiers["households"].arpu == 89.0
    text = SMALL.decode().replace("    arpu: 89\n", "    arpu: !!int eighty-nine\n")
    (problem,) = problems_of(text)
    assert problem.line == text.splitlines().index("    arpu: !!int eighty-nine") + 1
    assert problem.path == ("tiers", "households", "arpu")
    assert "'eighty-nine' is not a whole number" in problem.message


def test_an_alias_inside_its_own_anchor_is_placed_not_followed() -> None:
    text = SMALL.decode().replace("run:\n  seed: 7\n", "run: &run\n  seed: 7\n  again: *run\n")
    (problem,) = problems_of(text)
    assert problem.line == text.splitlines().index("  again: *run") + 1
    assert "refers back to the anchor" in problem.message


def test_a_strategy_listed_twice_is_placed_at_the_second() -> None:
    text = SMALL.decode() + "\nstrategies:\n  - uniform\n  - no_retention\n  - uniform\n"
    (problem,) = problems_of(text)
    assert problem.path == ("strategies", 2)
    assert problem.line == len(text.splitlines())


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = (SMALL.decode()
            .replace("lines: 12000", "lines: -3")              # out of range
            .replace("margin: 0.30", "margn: 0.30")            # typo
            .replace("tiers: [households, prepaid], price_cut", "tiers: [housholds], price_cut")  # broken reference
            .replace("total: 200000", "total: lots"))          # wrong type
    problems = problems_of(text)
    lines = text.splitlines()
    assert len(problems) == 4
    for problem in problems:
        assert problem.file == "test.yaml" and problem.line is not None and problem.hint
    by_path = {".".join(map(str, p.path)): p for p in problems}
    assert "-3" in lines[by_path["tiers.households.lines"].line - 1]
    assert "margn" in lines[by_path["tiers.prepaid.margn"].line - 1]
    assert "did you mean 'margin'" in by_path["tiers.prepaid.margn"].message
    assert "did you mean 'households'" in by_path["competitors.campaigns.0.tiers.0"].message
    assert "lots" in lines[by_path["budget.total"].line - 1]


def test_enterprise_tier_line_count_is_accounts_times_lines() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    key = scenario.tiers["key_a"]
    assert key.line_count == 1000 and key.unit_count == 10


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_file_is_a_scenario_error_never_a_crash(data) -> None:
    # Whatever a planner's editor does to a file, loading ends in a Scenario or a ScenarioError.
    raw = bytearray(SMALL)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        byte = data.draw(st.sampled_from(list(b" :-\n\t#[]{}'\"&*!0123456789abcxyz\x00\xff")))
        if action == "replace":
            raw[at] = byte
        elif action == "delete":
            del raw[at]
        else:
            raw.insert(at, byte)
    try:
        validate_document(parse_yaml(bytes(raw), "damaged.yaml"))
    except ScenarioError as exc:
        assert exc.problems and all(p.file == "damaged.yaml" for p in exc.problems)
