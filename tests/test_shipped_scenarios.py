"""Every shipped scenario validates, round-trips, follows the JSON Schema and holds to the operator facts."""

from __future__ import annotations

import json

import jsonschema
import pytest

from sim.scenario import (
    Scenario,
    json_schema,
    load_scenario,
    parse_yaml,
    scenario_to_yaml,
    validate_document,
)

from .conftest import SCENARIOS, SHIPPED

SCHEMA_COMMENT = "# yaml-language-server: $schema=scenario.schema.json"


def test_the_four_scenarios_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= {"baseline", "price_war", "network_crisis", "small"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_validates_and_round_trips(path) -> None:
    scenario = load_scenario(path)
    assert scenario.meta.name == path.stem
    text = scenario_to_yaml(scenario)
    again = validate_document(parse_yaml(text.encode(), f"{path.name} (round trip)"))
    assert again == scenario
    # A second dump is byte-identical: nothing drifts between dump and load.
    assert scenario_to_yaml(again) == text


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_names_its_schema_for_editors(path) -> None:
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_COMMENT


def test_schema_file_is_current() -> None:
    on_disk = json.loads((SCENARIOS / "scenario.schema.json").read_text(encoding="utf-8"))
    assert on_disk == json_schema(), "run `make schema` to refresh scenarios/scenario.schema.json"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_follows_the_json_schema(path) -> None:
    # An independent validator: what an editor would check as the planner types.
    from sim.scenario import read_yaml

    validator = jsonschema.Draft202012Validator(json_schema())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(read_yaml(path).data)]
    assert errors == []


def test_json_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    from sim.scenario import read_yaml

    data = read_yaml(SCENARIOS / "small.yaml").data
    data["tiers"]["households"]["baseline_chrun"] = data["tiers"]["households"].pop("baseline_churn")
    assert not validator.is_valid(data)


@pytest.fixture(scope="module")
def baseline() -> Scenario:
    return load_scenario(SCENARIOS / "baseline.yaml")


def test_baseline_is_an_operator_scale_market(baseline: Scenario) -> None:
    assert baseline.total_lines >= 1_000_000
    assert len(baseline.market.operators) == 3
    assert baseline.meta.currency == "CNY"


def test_baseline_group_accounts_split_5_25_70(baseline: Scenario) -> None:
    accounts = {name: t.accounts for name, t in baseline.tiers.items() if t.kind == "enterprise"}
    total = sum(accounts.values())
    shares = {name: n / total for name, n in accounts.items()}
    assert shares == pytest.approx({"key_a": 0.05, "key_b": 0.25, "key_c": 0.70})
    per_account = {name: baseline.tiers[name].lines_per_unit for name in accounts}
    assert per_account["key_a"] >= 500 and 100 <= per_account["key_b"] <= 499 and 10 <= per_account["key_c"] <= 99
    # Where sizes vary, the floor is the class's own: A groups hold 500 handsets or more, B groups 100 or more.
    sizes = {name: baseline.tiers[name].account_size for name in accounts}
    assert sizes["key_a"] is not None and sizes["key_a"].min == 500
    assert sizes["key_b"] is not None and sizes["key_b"].min == 100


def test_baseline_vip_arpu_steps_are_about_two_to_one(baseline: Scenario) -> None:
    t = baseline.tiers
    assert t["vip_diamond"].arpu / t["vip_gold"].arpu == pytest.approx(2.0, rel=0.25)
    assert t["vip_gold"].arpu / t["vip_silver"].arpu == pytest.approx(2.0, rel=0.25)


def test_baseline_churn_is_in_the_reported_ranges(baseline: Scenario) -> None:
    for name, tier in baseline.tiers.items():
        if tier.segment == "prepaid":
            assert tier.baseline_churn == pytest.approx(0.028, abs=0.003), name
        else:
            assert 0.008 <= tier.baseline_churn <= 0.018, name


def test_baseline_commercial_revenue_share_is_20_to_30_percent(baseline: Scenario) -> None:
    revenue = {name: t.monthly_revenue for name, t in baseline.tiers.items()}
    enterprise = sum(r for name, r in revenue.items() if baseline.tiers[name].kind == "enterprise")
    assert 0.20 <= enterprise / sum(revenue.values()) <= 0.30


def test_baseline_offers_the_five_named_levers(baseline: Scenario) -> None:
    assert {"bill_credit", "handset_upgrade", "data_bonus", "account_manager", "loyalty_points"} <= set(baseline.levers)
    assert baseline.levers["handset_upgrade"].contract_extension_months > 0
    assert set(baseline.levers["account_manager"].tiers) <= {"key_a", "key_b", "key_c"}


def test_price_war_has_a_lagged_reaction_to_our_cut() -> None:
    scenario = load_scenario(SCENARIOS / "price_war.yaml")
    assert any(move.change < 0 for move in scenario.pricing)
    reaction = next(r for r in scenario.competitors.reactions if r.trigger == "our_price_cut")
    assert reaction.lag_months >= 1 and reaction.operator != scenario.market.us
    mass_cuts = [c for c in scenario.competitors.campaigns if c.price_cut > 0 and "households" in c.tiers]
    assert mass_cuts


def test_network_crisis_concentrates_outages_and_understaffs() -> None:
    crisis = load_scenario(SCENARIOS / "network_crisis.yaml")
    base = load_scenario(SCENARIOS / "baseline.yaml")
    rates = {name: r.outages_per_month for name, r in crisis.network.regions.items()}
    worst = max(rates, key=rates.get)
    assert rates[worst] >= 2 * sum(v for k, v in rates.items() if k != worst)
    assert crisis.contact_center.agents_in(1) < base.contact_center.agents_in(1)
