"""The scenario a planner writes, loaded into typed, immutable objects.

Overview
--------
A scenario file (YAML) describes the market and competitors, customer tiers,
prices, network and contact-center quality, competitor campaigns, retention
levers with their costs and effects, and a budget. :func:`load_scenario` reads
it, fills in every default, checks types, ranges and cross-references, and
returns a :class:`Scenario`. If anything is wrong it raises one
:class:`ScenarioError` listing every problem with its file, line, key path and fix.

Quick start::

    from sim.scenario import load_scenario
    scenario = load_scenario("scenarios/small.yaml")
    scenario.tiers["households"].baseline_churn     # 0.012
    bigger = scenario.with_changes({"budget.total": 5e5})   # validated like a file

A :class:`Scenario` is immutable. :meth:`Scenario.with_changes` (or :func:`derive`) builds a
variant and checks it as a file is checked; ``model_copy(update=...)`` checks nothing. What a
scenario says that will not happen as written (period budgets short of the total, a key ignored
where it is written) does not stop it loading: it is in :attr:`Scenario.warnings` and issued as a
:class:`ScenarioWarning`.

Units are stated once in :mod:`sim.scenario.types`.
"""

from .errors import KeyPath, Problem, ScenarioError, ScenarioWarning, format_path
from .loader import (
    derive,
    load_scenario,
    scenario_to_yaml,
    validate_as,
    validate_document,
)
from .model import Scenario
from .schema import json_schema
from .yaml_source import YamlDocument, parse_yaml, read_yaml

__all__ = [
    "KeyPath", "Problem", "Scenario", "ScenarioError", "ScenarioWarning", "YamlDocument", "derive", "format_path",
    "json_schema",
    "load_scenario", "parse_yaml", "read_yaml", "scenario_to_yaml", "validate_as", "validate_document",
]
