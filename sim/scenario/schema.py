"""A JSON Schema of the scenario format, for editors that validate YAML as the planner types.

Shipped scenarios start with ``# yaml-language-server: $schema=scenario.schema.json``;
``retention schema`` prints the schema and ``scenarios/scenario.schema.json`` is a copy
kept current by the test suite.
"""

from __future__ import annotations

from typing import Any

from .model import Scenario
from .run import BUILT_IN_STRATEGIES


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Retention-planning scenario"
    # A built-in strategy may be listed by its name alone ("- uniform"), which the model accepts
    # before validation; say so in the schema too, or editors would flag the shipped scenarios.
    definitions = schema["$defs"]
    strategy = definitions.pop("Strategy")
    definitions["StrategyEntry"] = strategy
    definitions["Strategy"] = {"anyOf": [{"type": "string", "enum": list(BUILT_IN_STRATEGIES)},
                                         {"$ref": "#/$defs/StrategyEntry"}],
                               "description": strategy.get("description", "")}
    _bounded_mappings(schema)
    return schema


def _bounded_mappings(node: Any) -> None:
    """pydantic states a mapping's most entries (regions, levers) as ``maxLength``, which JSON Schema reads
    on strings only; for an object it is ``maxProperties``."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "maxLength" in node:
            node["maxProperties"] = node.pop("maxLength")
        for value in node.values():
            _bounded_mappings(value)
    elif isinstance(node, list):
        for value in node:
            _bounded_mappings(value)
