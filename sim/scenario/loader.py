"""Loading a scenario: YAML file -> validated, immutable :class:`Scenario`, or every problem at once.

Validation runs in one pass over the whole file. The names the file defines
(tiers, levers, operators, regions, periods, channels, strategies) are read from
the raw data first and handed to the validators as context, so a broken reference
is reported together with type and range mistakes elsewhere, each with its line.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import consistency
from .capacity import BOUND_REASONS, COUNT_REASONS
from .customer_base import unknown_effects
from .errors import KeyPath, Problem, ScenarioError, ScenarioWarning
from .model import Scenario
from .types import MAX_NAME_LENGTH, PATTERN_RULES
from .yaml_source import YamlDocument, read_yaml

_WHOLE_NUMBER = "write a whole number, e.g. 12"


RETIRED_KEYS: dict[str, tuple[str, str]] = {
    "gross_add_rate": ("new lines now come from the segment's market and the business plan",
                       ("remove it; to state our new lines write 'market: {gross_adds: {lines: N}}' (per month) "
                        "or 'market: {gross_adds: {share_of_new_lines: S}}' under the tier")),
    "win_back_share": ("the rivals' churners we win now balance the lines we lose in a market at rest",
                       ("remove it; to change how many lines the rivals lose, state their "
                        "'market.operators.<rival>.monthly_churn'")),
}
"""Keys of earlier versions: what replaced them, and how to rewrite the scenario."""


def _names(data: Any, *path: str) -> set[str] | None:
    """Keys of the mapping at ``path`` in raw data, or None when it is not a mapping."""
    node = data
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return {str(k) for k in node} if isinstance(node, dict) else None


def _validation_context(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    horizon = meta.get("horizon_months", 36)
    periods: set[str] | None
    raw_periods = meta.get("periods")
    if isinstance(raw_periods, list):
        periods = {p["name"] for p in raw_periods if isinstance(p, dict) and isinstance(p.get("name"), str)}
    elif isinstance(horizon, int) and not isinstance(horizon, bool) and 1 <= horizon <= 240:
        periods = {f"Y{i + 1}" for i in range((horizon + 11) // 12)}
    else:
        periods = None
    strategies = data.get("strategies")
    if isinstance(strategies, list):
        strategy_names: set[str] | None = {
            s if isinstance(s, str) else s.get("name") for s in strategies if isinstance(s, (str, dict))} - {None}
    elif strategies is None:
        strategy_names = {"no_retention", "uniform", "proportional_revenue", "key_accounts_first", "lp_optimal"}
    else:
        strategy_names = None
    market = data.get("market") if isinstance(data.get("market"), dict) else {}
    return {
        "tiers": _names(data, "tiers"),
        "levers": _names(data, "levers"),
        "operators": _names(data, "market", "operators"),
        "regions": _names(data, "network", "regions"),
        "channels": _names(data, "channels"),
        "periods": periods,
        "strategies": strategy_names,
        "horizon": horizon if isinstance(horizon, int) and not isinstance(horizon, bool) else None,
        "us": market.get("us") if isinstance(market.get("us"), str) else None,
    }


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional layers down to the type that holds keys or items."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            return annotation


def _model_at(path: KeyPath, root: type[BaseModel] = Scenario) -> type[BaseModel] | None:
    """The section model that the mapping at ``path`` must follow, for did-you-mean hints."""
    current: Any = root
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, dict)):
            current = typing.get_args(current)[1]
        elif origin is tuple:
            current = typing.get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_TYPE_HINTS = {
    "float_type": "write a number, e.g. 0.25 or 1e6",
    "float_parsing": "write a number, e.g. 0.25 or 1e6",
    "int_type": _WHOLE_NUMBER,
    "int_parsing": _WHOLE_NUMBER,
    "int_from_float": _WHOLE_NUMBER,
    "string_type": "write text; quote it if it looks like a number or yes/no (e.g. 'no')",
    "bool_type": "write true or false",
    "dict_type": "write a mapping: keys with ':' indented under this key",
    "model_type": "write a mapping: keys with ':' indented under this key",
    "model_attributes_type": "write a mapping: keys with ':' indented under this key",
    "tuple_type": "write a list: one item per line starting with '- '",
    "list_type": "write a list: one item per line starting with '- '",
    "finite_number": "write a finite number",
    "string_pattern_mismatch": "use letters, digits, '_' and '-', starting with a letter",
    "string_too_long": f"use at most {MAX_NAME_LENGTH} characters",
    "string_too_short": "write at least one character",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_VALIDATOR_STEP = re.compile(r"^[a-z][a-z-]*\[.*\]$")


def _data_path(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    """The key path of a pydantic error location, without pydantic's own step names.

    pydantic puts entries such as ``function-after[...]`` and ``[key]`` into a location; a
    planner's key may contain brackets too, so an entry is kept whenever the data has it.
    """
    path: list[Any] = []
    node = data
    for entry in loc:
        if isinstance(node, Mapping) and entry in node or isinstance(node, list) and isinstance(entry, int) and 0 <= entry < len(node):
            node = node[entry]
        elif entry == "[key]" or (isinstance(entry, str) and _VALIDATOR_STEP.match(entry)):
            continue
        else:
            node = None
        path.append(entry)
    return tuple(path)


def _problems_from_error(doc: YamlDocument, error: Mapping[str, Any],
                         root: type[BaseModel] = Scenario) -> list[Problem]:
    """The planner's problems in one pydantic error: one, or several from a check across sections."""
    found = [_problem_from_error(doc, error, root)]
    ctx = error.get("ctx") or {}
    if error["type"] == "scenario":
        base = _data_path(doc.data, tuple(error["loc"]))
        for at, message, hint in ctx.get("more") or ():
            found.append(_positioned(doc, base + tuple(at), message, hint))
    return found


def _positioned(doc: YamlDocument, path: KeyPath, message: str, hint: str, severity: str = "error") -> Problem:
    position = doc.position(path)
    line, column = position if position else (None, None)
    return Problem(doc.file, line, column, path, message, hint, severity)  # type: ignore[arg-type]


def _problem_from_error(doc: YamlDocument, error: Mapping[str, Any], root: type[BaseModel] = Scenario) -> Problem:
    kind: str = error["type"]
    # pydantic appends "[key]" for dict-key errors and names the validator step in some locs.
    raw_loc = tuple(error["loc"])
    is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
    path = _data_path(doc.data, raw_loc)
    ctx = error.get("ctx") or {}
    value = error.get("input")
    message, hint = error["msg"], ""
    use_key_position = is_key
    if kind == "scenario":
        message, hint = ctx["message"], ctx.get("hint", "")
        path = path + tuple(ctx.get("at") or ())
    elif kind == "missing":
        parent, key = path[:-1], path[-1]
        message = f"'{key}' is missing"
        model = _model_at(parent, root)
        field = model.model_fields.get(str(key)) if model else None
        description = f" ({field.description.splitlines()[0]})" if field and field.description else ""
        hint = f"add '{key}:' here{description}"
        path = parent
        use_key_position = True
    elif kind == "extra_forbidden" and str(path[-1]) in RETIRED_KEYS:
        message, hint = RETIRED_KEYS[str(path[-1])]
        message = f"'{path[-1]}' is no longer a key: {message}"
        use_key_position = True
    elif kind == "extra_forbidden":
        parent, key = path[:-1], str(path[-1])
        model = _model_at(parent, root)
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key '{key}'" + (f"; did you mean '{close[0]}'?" if close else "")
        hint = (f"rename it to '{close[0]}'" if close else "remove it") + (
            f"; keys allowed here: {', '.join(allowed)}" if allowed else "")
        use_key_position = True
    elif kind == "literal_error":
        expected = [str(e).strip("'") for e in ctx.get("expected", "").replace(" or ", ", ").split(", ")]
        close = difflib.get_close_matches(str(value), expected, n=1, cutoff=0.6)
        message = f"{_describe(value)} is not one of the choices" + (f"; did you mean '{close[0]}'?" if close else "")
        hint = f"use one of: {', '.join(expected)}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()))
        words = {"greater_than_equal": "at least", "greater_than": "more than",
                 "less_than_equal": "at most", "less_than": "less than"}[kind]
        message = f"{_describe(value)} is out of range: it must be {words} {bound:g}"
        hint = f"use a value {words} {bound:g}"
        if kind in ("less_than_equal", "less_than") and bound in BOUND_REASONS:
            message += f" ({BOUND_REASONS[bound]})"
        if kind in ("less_than_equal", "less_than") and bound == 1 and isinstance(value, (int, float)) and value > 1:
            hint += " (shares and probabilities are fractions: 0.25, not 25)"
    elif kind in ("too_short", "too_long"):
        have = ctx.get("actual_length")
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        words = "at least" if kind == "too_short" else "at most"
        items = "item" if bound == 1 else "items"
        given = f"{have} {'item' if have == 1 else 'items'} given"
        message = (f"{given}; it needs at least {bound} {items}" if kind == "too_short"
                   else f"{given}; at most {bound} {items} are allowed here")
        hint = f"give {words} {bound} {items}"
        if kind == "too_long" and tuple(map(str, path)) in COUNT_REASONS:
            message += f" ({COUNT_REASONS[tuple(map(str, path))]})"
    elif kind in _TYPE_HINTS:
        what = {"float_type": "a number", "float_parsing": "a number", "int_type": "a whole number",
                "int_parsing": "a whole number", "int_from_float": "a whole number", "string_type": "text",
                "bool_type": "true or false", "tuple_type": "a list", "list_type": "a list",
                "finite_number": "a finite number"}.get(kind)
        message = f"expected {what}, got {_describe(value)}" if what else error["msg"]
        if kind in ("dict_type", "model_type", "model_attributes_type"):
            message = f"expected a mapping of keys, got {_describe(value)}"
        hint = _TYPE_HINTS[kind]
        if kind == "string_pattern_mismatch":
            what, hint = PATTERN_RULES.get(ctx.get("pattern", ""), ("valid here", hint))
            message = f"'{value}' is not {what}"
        if kind == "string_too_long":
            message = f"'{_describe(value)}' is too long: at most {ctx.get('max_length', MAX_NAME_LENGTH)} characters"
            hint = f"use at most {ctx.get('max_length', MAX_NAME_LENGTH)} characters"
    position = doc.position(path, key=use_key_position)
    line, column = position if position else (None, None)
    return Problem(doc.file, line, column, path, message, hint)


def validate_document(doc: YamlDocument) -> Scenario:
    """Validate parsed YAML data as a scenario; raise :class:`ScenarioError` listing every problem.

    What the scenario says that will not happen as written is kept in :attr:`Scenario.warnings`,
    each with its line.
    """
    scenario = validate_as(doc, Scenario, _validation_context(doc.data) if isinstance(doc.data, dict) else {})
    found = [_positioned(doc, f.at, f.message, f.hint, "warning") for f in consistency.warnings(scenario)]
    scenario._warnings = tuple(sorted(found, key=lambda p: (p.line or 0, p.column or 0)))
    return scenario


def issue_warnings(scenario: Scenario, problems: typing.Iterable[Problem] | None = None) -> None:
    """Issue each of the scenario's warnings (or ``problems``) as a :class:`ScenarioWarning`: the command
    line prints them on stderr; a Python session shows them as any other warning."""
    for problem in scenario.warnings if problems is None else problems:
        warnings.warn(ScenarioWarning(problem), stacklevel=3)


M = typing.TypeVar("M", bound=BaseModel)


def validate_as(doc: YamlDocument, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Validate parsed YAML data as ``model`` (a scenario, or another file of the planner's such as a
    customer-table mapping); raise :class:`ScenarioError` listing every problem with its line."""
    try:
        return model.model_validate(doc.data, context=context or {})
    except ValidationError as exc:
        problems = [p for e in exc.errors(include_url=False) for p in _problems_from_error(doc, e, model)]
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise ScenarioError(problems) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises :class:`ScenarioError` naming every problem with its file, line, key path and fix.
    """
    doc = read_yaml(path)
    scenario = validate_document(doc)
    scenario._source_dir = str(Path(path).resolve().parent)
    if scenario.population is not None:
        unknown = unknown_effects(scenario.population, scenario._source_dir)
        if unknown:
            raise ScenarioError([_positioned(doc, ("population", "effects", name), message, hint)
                                 for name, message, hint in unknown])
    issue_warnings(scenario)
    return scenario


def _merge(base: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (plain data) with ``changes`` written over it. A dotted key (``"budget.per_period"``) sets
    the value at that path as given; under a plain key a mapping merges key by key into the mapping
    there, and anything else (a number, a list) replaces it."""
    merged = dict(base) if isinstance(base, Mapping) else {}
    for key, value in changes.items():
        head, _, rest = str(key).partition(".")
        if rest:
            merged[head] = _set(merged.get(head), rest.split("."), value)
        elif isinstance(value, Mapping) and isinstance(merged.get(head), Mapping):
            merged[head] = _merge(merged[head], value)
        else:
            merged[head] = _plain(value)
    return merged


def _set(base: Any, path: list[str], value: Any) -> dict[str, Any]:
    node = dict(base) if isinstance(base, Mapping) else {}
    head, rest = path[0], path[1:]
    node[head] = _set(node.get(head), rest, value) if rest else _plain(value)
    return node


def _plain(value: Any) -> Any:
    """Plain data, as a YAML file would hold it: models dumped, mappings as dicts, tuples as lists."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def derive(scenario: Scenario, changes: Mapping[str, Any]) -> Scenario:
    """A variant of ``scenario`` with ``changes``, validated like a file.

    ``changes`` maps key paths to new values, as dotted keys or nested mappings::

        derive(scenario, {"budget.total": 5e6})
        derive(scenario, {"budget.per_period": {"Y1": 2e6, "Y2": 2e6, "Y3": 2e6}})   # these periods only
        derive(scenario, {"budget": {"total": 5e6, "per_period": {"Y1": 2e6}}})      # Y1 changed, the rest kept

    A dotted key sets the value at its path as given; a nested mapping merges key by key into the
    scenario's own, and any other value (a number, a list) replaces the old one. The result is checked as :func:`load_scenario` checks a file (types, ranges, names,
    every check across sections) and raises :class:`ScenarioError` with the key path of each
    problem; warnings the original did not have are issued as :class:`ScenarioWarning`. (``model_copy(update=...)``
    checks nothing: it is pydantic's copy, for variants the engine builds itself.)
    """
    data = _merge(scenario.model_dump(mode="json", exclude_unset=True), changes)
    label = f"variant of '{scenario.meta.name}'"
    variant = validate_document(YamlDocument(label, data, {}, {}))
    variant._source_dir = scenario._source_dir
    known = {(p.path, p.message) for p in scenario.warnings}
    issue_warnings(variant, [p for p in variant.warnings if (p.path, p.message) not in known])
    return variant


def scenario_to_yaml(scenario: Scenario) -> str:
    """The scenario as YAML with every default filled in (loads back to an equal scenario)."""
    data = scenario.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
