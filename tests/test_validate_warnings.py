"""What a scenario says that the engine would not do as written: warned about or refused, with its line.

Warnings (the scenario still runs): period budgets that cannot spend the total, a key ignored where it
is written. Errors: a stated curve or locked amount for a lever the tier is not offered, a curve stated
twice. Also: the schema's own examples validate, and a variant built in Python is validated like a file.
"""

from __future__ import annotations

import re
import subprocess
import sys
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
from pydantic import BaseModel, TypeAdapter

from sim.scenario import (
    Scenario,
    ScenarioError,
    ScenarioWarning,
    derive,
    json_schema,
    load_scenario,
)

from .conftest import ROOT, SCENARIOS, SHIPPED

SMALL = (SCENARIOS / "small.yaml").read_text(encoding="utf-8")


def _edit(tmp_path: Path, *changes: tuple[str, str], name: str = "mine.yaml") -> tuple[Path, list[str]]:
    text = SMALL
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, text.splitlines()


def _line_of(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def _validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "optimize.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


SHORT_PERIODS = ("  per_period: {H1: 120000, H2: 120000}", "  per_period: {H1: 80000, H2: 90000}")
OUR_LINES = ("    M: {network_quality: 0.85, service_quality: 0.79}",
             "    M: {network_quality: 0.85, service_quality: 0.79, lines: 20000}")


def test_period_budgets_short_of_the_total_are_a_warning_that_says_how_much(tmp_path: Path) -> None:
    path, lines = _edit(tmp_path, SHORT_PERIODS)
    done = _validate("validate", path)
    # 200,000 in total, 80,000 + 90,000 reachable: 30,000 can never be spent.
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "1 warning" in done.stdout
    line = _line_of(lines, "per_period")
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: warning: budget.per_period: .*170,000.*200,000.*"
                     r"30,000 can never be spent", done.stderr, re.MULTILINE), done.stderr
    assert "fix: " in done.stderr and "Traceback" not in done.stderr


def test_quiet_keeps_the_warnings_and_drops_the_rest(tmp_path: Path) -> None:
    path, _ = _edit(tmp_path, SHORT_PERIODS, OUR_LINES)
    done = _validate("-q", "validate", path)
    assert done.returncode == 0
    assert done.stdout == ""
    assert done.stderr.count(": warning: ") == 2, done.stderr


def test_a_key_ignored_on_our_own_operator_is_named_with_the_reason(tmp_path: Path) -> None:
    path, lines = _edit(tmp_path, OUR_LINES)
    with pytest.warns(ScenarioWarning) as caught:
        scenario = load_scenario(path)
    (problem,) = scenario.warnings
    assert problem.severity == "warning"
    assert problem.path == ("market", "operators", "M", "lines") and problem.line == _line_of(lines, "lines: 20000")
    assert "'lines' is ignored on our own operator (M)" in problem.message and "tiers' lines" in problem.message
    assert [w.message.problem for w in caught] == [problem]  # type: ignore[union-attr]
    # What it would have been: our lines are the tiers', whatever the operator's entry says.
    assert scenario.total_lines == load_scenario(SCENARIOS / "small.yaml").total_lines


@pytest.mark.parametrize("periods, warned", [("{H1: 100000, H2: 100000}", False), ("{H1: 100000, H2: 99999}", True),
                                             ("{H1: 100000}", False)],
                         ids=["exactly-the-total", "one-short", "a-period-uncapped"])
def test_the_period_budget_warning_starts_exactly_below_the_total(tmp_path: Path, periods: str, warned: bool) -> None:
    path, _ = _edit(tmp_path, (SHORT_PERIODS[0], f"  per_period: {periods}"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScenarioWarning)
        scenario = load_scenario(path)
    assert bool(scenario.warnings) == warned
    if warned:
        assert "1 can never be spent" in scenario.warnings[0].message


def test_the_shipped_scenarios_load_without_warnings() -> None:
    for path in SHIPPED:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ScenarioWarning)
            assert load_scenario(path).warnings == (), path.name


CURVE = """  response_curves:
    - {tier: prepaid, lever: bill_credit, points: [{spend: 0, value: 0}, {spend: 1000, value: 3000}]}
    - {tier: households, lever: data_bonus, period: H2, points: [{spend: 0, value: 0}, {spend: 1000, value: 2000}]}
    - {tier: households, lever: data_bonus, points: [{spend: 0, value: 0}, {spend: 1000, value: 2500}]}
  locked:
    - {tier: key_a, lever: data_bonus, period: H1, amount: 100}
"""


def test_every_curve_and_locked_cell_the_levers_do_not_allow_is_listed_at_once(tmp_path: Path) -> None:
    # bill_credit is offered to vip_gold and households, data_bonus to households and prepaid.
    path, lines = _edit(tmp_path, ("  contact_policy: {max_offers_per_line: 1, per_months: 6}\n",
                                   "  contact_policy: {max_offers_per_line: 1, per_months: 6}\n" + CURVE))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    found = {(p.path, p.line) for p in caught.value.problems}
    assert found == {
        (("budget", "response_curves", 0, "lever"), _line_of(lines, "tier: prepaid, lever: bill_credit")),
        (("budget", "response_curves", 2), _line_of(lines, "lever: data_bonus, points")),
        (("budget", "locked", 0, "lever"), _line_of(lines, "tier: key_a, lever: data_bonus")),
    }
    text = str(caught.value)
    assert "3 problems found" in text
    assert "add 'prepaid' to levers.bill_credit.tiers" in text
    assert "stated twice: here and in budget.response_curves[1]" in text


def test_the_simulator_refuses_what_the_validator_now_refuses() -> None:
    # The rule the validator applies is the simulator's own: an allocation row for such a cell is refused.
    from sim.allocation import Allocation, AllocationError

    small = load_scenario(SCENARIOS / "small.yaml")
    with pytest.raises(AllocationError, match="not offered to tier 'prepaid'"):
        Allocation.from_rows([{"tier": "prepaid", "lever": "bill_credit", "period": "H1", "amount": "100"}], small)


# --- the schema's examples, and the rules its patterns state -------------------------------------------


def _examples(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict[str, Any], Any]]:
    found = []
    if isinstance(node, dict):
        for example in node.get("examples", []):
            found.append((path, node, example))
        for key, value in node.items():
            found += _examples(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _examples(value, (*path, str(i)))
    return found


def _models(root: type[BaseModel] = Scenario) -> dict[str, type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}

    def visit(model: type[BaseModel]) -> None:
        if model.__name__ in seen:
            return
        seen[model.__name__] = model
        for field in model.model_fields.values():
            for kind in _types_in(field.annotation):
                visit(kind)

    visit(root)
    return seen


def _types_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [t for arg in typing.get_args(annotation) for t in _types_in(arg)]


def test_every_example_in_the_schema_validates() -> None:
    schema = json_schema()
    examples = _examples(schema)
    assert len(examples) >= 30  # names, period names and currencies, wherever they appear
    models = _models()
    for path, node, example in examples:
        # As an editor checks it: the property's own schema, its references resolved in the whole schema.
        jsonschema.validate(example, {**node, "$defs": schema["$defs"]})
        # As the loader checks it: the model field the property is, or the keys of the mapping it names.
        model, rest = (models[path[1].replace("StrategyEntry", "Strategy")], path[2:]) if path[0] == "$defs" \
            else (Scenario, path)
        assert rest[0] == "properties" and rest[2:] in ((), ("propertyNames",)), path
        field = model.model_fields[rest[1]]
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        if rest[2:]:
            annotation = _key_type(annotation)
        TypeAdapter(annotation).validate_python(example)


def _key_type(annotation: Any) -> Any:
    """The key type of a mapping type, through Annotated layers."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    assert typing.get_origin(annotation) is dict, annotation
    return typing.get_args(annotation)[0]


def test_the_period_name_of_the_schema_s_own_example_loads() -> None:
    small = load_scenario(SCENARIOS / "small.yaml")
    variant = small.with_changes({"meta.periods": [{"name": "2027H1", "months": 6}, {"name": "2027H2", "months": 6}],
                                  "budget.per_period": {"2027H1": 120_000, "2027H2": 120_000}})
    assert [p.name for p in variant.meta.periods] == ["2027H1", "2027H2"]


@pytest.mark.parametrize("change, path, says", [
    ({"meta.currency": "eur"}, "meta.currency", "three capital letters, an ISO 4217 code"),
    ({"meta.name": "2small"}, "meta.name", "starting with a letter"),
    ({"meta.periods": [{"name": "2027", "months": 12}]}, "meta.periods[0].name", "holding at least one letter"),
    ({"meta.name": "x" * 65}, "meta.name", "at most 64 characters"),
], ids=["currency", "name", "period", "long-name"])
def test_a_pattern_s_message_states_its_rule(change: dict[str, Any], path: str, says: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        derive(load_scenario(SCENARIOS / "small.yaml"), change)
    text = str(caught.value)
    assert f": {path}: " in text and says in text, text


# --- variants built in Python --------------------------------------------------------------------------


def test_a_variant_is_validated_like_a_file() -> None:
    small = load_scenario(SCENARIOS / "small.yaml")
    with pytest.raises(ScenarioError) as caught:
        small.with_changes({"budget.total": -5})
    (problem,) = caught.value.problems
    assert problem.path == ("budget", "total") and "at least 0" in problem.message
    # A name the scenario does not define is caught as in a file, with the names it does define.
    with pytest.raises(ScenarioError, match="unknown tier 'gold'; did you mean 'vip_gold'"):
        small.with_changes({"budget": {"tiers": {"gold": {"min": 1000}}}})


def test_a_variant_is_the_scenario_its_edited_file_would_be(tmp_path: Path) -> None:
    small = load_scenario(SCENARIOS / "small.yaml")
    variant = small.with_changes({"budget.total": 240_000, "budget": {"per_period": {"H2": 150_000}}})
    path, _ = _edit(tmp_path, ("  total: 200000\n", "  total: 240000\n"),
                    ("  per_period: {H1: 120000, H2: 120000}", "  per_period: {H1: 120000, H2: 150000}"))
    assert variant == load_scenario(path)
    assert small.budget.total == 200_000  # the original is untouched


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_change_gives_back_the_same_scenario(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.with_changes({}) == scenario


def test_model_copy_says_it_checks_nothing() -> None:
    # pydantic's copy stays unvalidated (the engine builds its own variants with it); it says so.
    small = load_scenario(SCENARIOS / "small.yaml")
    unchecked = small.model_copy(update={"budget": small.budget.model_copy(update={"total": -5.0})})
    assert unchecked.budget.total == -5.0
    assert "not** validated" in (Scenario.model_copy.__doc__ or "") and "with_changes" in Scenario.model_copy.__doc__


def test_every_command_that_loads_a_scenario_prints_its_warnings_once(tmp_path: Path) -> None:
    import contextlib
    import io

    from optimize.cli.main import main

    path, _ = _edit(tmp_path, SHORT_PERIODS)
    out, err = io.StringIO(), io.StringIO()
    # goal loads the scenario, warns, then refuses a tier the scenario does not have: no simulation is run.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-q", "goal", str(path), "--tier", "gold", "--max-churn", "1%", "--out", str(tmp_path / "g")])
    assert code == 1 and out.getvalue() == ""
    assert err.getvalue().count("30,000 can never be spent") == 1, err.getvalue()
    assert "unknown tier 'gold'" in err.getvalue()


def test_a_variant_warns_of_what_is_new_in_it_only(tmp_path: Path) -> None:
    path, _ = _edit(tmp_path, SHORT_PERIODS)
    with pytest.warns(ScenarioWarning):
        short = load_scenario(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = short.with_changes({"run.seed": 8})
        more = short.with_changes({"budget.total": 300_000})
    assert len(again.warnings) == 1 and len(more.warnings) == 1
    (issued,) = [w for w in caught if issubclass(w.category, ScenarioWarning)]
    assert "130,000 can never be spent" in str(issued.message)


@pytest.mark.parametrize("levels, says", [([], "0 items given; it needs at least 1 item"),
                                          ([0.04 * i for i in range(1, 22)], "21 items given; at most 20 items")],
                         ids=["empty", "too-many"])
def test_a_list_of_the_wrong_length_says_how_long_it_may_be(levels: list[float], says: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(SCENARIOS / "small.yaml").with_changes({"run.estimation.levels": levels})
    (problem,) = caught.value.problems
    assert problem.path == ("run", "estimation", "levels") and says in problem.message and problem.hint
