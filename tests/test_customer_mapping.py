"""What a mapping can say about a table: derived columns, numeric drivers in bins, yes/no codes as a
planner writes them; and problems named where the planner fixes them (the mapping, the table's column
and row), never in the scenario that was not written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from optimize.cli.main import main
from sim.customers.churn_model import fit, fit_effects, window_probability
from sim.customers.mapping import load_mapping
from sim.customers.table import read_table
from sim.scenario import load_scenario

from .conftest import SCENARIOS

TEMPLATE = SCENARIOS / "small.yaml"


def _rows(n: int, seed: int = 7) -> list[dict[str, object]]:
    """Lines whose churn over a year jumps with the first service call and falls with tenure (fixed seed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        days = int(rng.integers(0, 72 * 30))
        calls = int(rng.choice([0, 0, 0, 1, 2, 3, 5]))
        contract = ["M2M", "1Y", "2Y"][i % 3]
        risk = {"M2M": 0.40, "1Y": 0.15, "2Y": 0.05}[contract] * (1.0 if calls == 0 else 2.0) * (1.4 if days < 365 else 1.0)
        voice, data = 20 + (i * 7) % 30, 15 + (i * 11) % 40
        rows.append({"id": i + 1, "tenure_days": days, "voice": voice, "data": data, "plan": "basic" if i % 2 else "premium",
                     "left": "Yes" if rng.random() < min(risk, 0.95) else "No", "contract": contract,
                     "support": "Y" if i % 5 == 0 else "N", "calls": calls})
    return rows


def _csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    return "\n".join([",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]) + "\n"


ROWS = _rows(1_500)
SPLIT = _csv(ROWS, ["id", "tenure_days", "voice", "data", "plan", "left", "contract", "support", "calls"])
# The same table with the columns worked out by hand: the bill added up, the tenure in months.
WHOLE = _csv([{**r, "charge": r["voice"] + r["data"], "tenure": r["tenure_days"] / 30.4} for r in ROWS],  # type: ignore[operator]
             ["id", "tenure", "charge", "plan", "left", "contract", "support", "calls"])

DERIVED = f"""
derived:
  charge: {{sum: [voice, data]}}
  tenure: {{column: tenure_days, divide_by: 30.4}}
columns: {{tenure_months: tenure, monthly_charge: charge, contract: contract, churn: left}}
churn_values: {{left: ["Yes"], stayed: ["No"]}}
contract_values: {{month_to_month: [M2M], one_year: [1Y], two_year: [2Y]}}
tiers: {{column: plan}}
drivers:
  tenure: {{kind: bins, edges: [12, 36]}}
  numbers: {{calls: {{kind: bins, edges: [0, 2]}}}}
  indicators: {{support: ["Y"]}}
template: {TEMPLATE}
scenario_name: tiny
"""
PLAIN = DERIVED.split("columns:", 1)[1]
PLAIN = "columns:" + PLAIN


def _write(tmp_path: Path, name: str, csv: str, mapping: str) -> tuple[Path, Path]:
    (tmp_path / f"{name}.csv").write_text(csv, encoding="utf-8")
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(mapping), encoding="utf-8")
    return tmp_path / f"{name}.csv", tmp_path / f"{name}.yaml"


def _calibrate(tmp_path: Path, csv: str, mapping: str, capfd, name: str = "m") -> tuple[int, str, Path]:  # type: ignore[no-untyped-def]
    table, mapping_file = _write(tmp_path, name, csv, mapping)
    out = tmp_path / f"{name}-scenario.yaml"
    code = main(["calibrate", str(table), "--map", str(mapping_file), "--out", str(out),
                 "--report", str(tmp_path / f"{name}-report")])
    return code, capfd.readouterr().err, out


def test_derived_columns_give_the_scenario_of_the_columns_worked_out_by_hand(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    code, err, derived = _calibrate(tmp_path, SPLIT, DERIVED, capfd, "derived")
    assert code == 0, err
    code, err, plain = _calibrate(tmp_path, WHOLE, PLAIN, capfd, "plain")
    assert code == 0, err
    a, b = load_scenario(derived), load_scenario(plain)
    for tier in a.tiers:
        assert a.tiers[tier].arpu == pytest.approx(b.tiers[tier].arpu)
        assert a.tiers[tier].baseline_churn == pytest.approx(b.tiers[tier].baseline_churn, rel=1e-9)
        assert a.tiers[tier].tenure.mean_months == pytest.approx(b.tiers[tier].tenure.mean_months)
    assert a.population.effects == pytest.approx(b.population.effects, rel=1e-9)


def test_a_ratio_is_its_columns_divided() -> None:
    import pandas as pd

    from sim.customers.mapping import Mapping
    from sim.customers.table import ColumnChecker

    mapping = Mapping.model_validate({
        "derived": {"per_month": {"ratio": ["total", "months"]}, "doubled": {"column": "per_month", "multiply_by": 2}},
        "columns": {"tenure_months": "months", "monthly_charge": "per_month"}, "tiers": {"column": "plan"},
        "drivers": {"contract": False}, "template": "x.yaml", "scenario_name": "x"})
    check = ColumnChecker("t.csv", pd.DataFrame({"total": ["120", "30"], "months": ["12", "3"], "plan": ["a", "a"]}))
    check.derive(mapping)
    assert check.problems == []
    assert list(check.frame["per_month"]) == [10.0, 10.0] and list(check.frame["doubled"]) == [20.0, 20.0]


def test_a_count_in_bins_fits_each_band_and_its_jump(tmp_path: Path) -> None:
    table_file, mapping_file = _write(tmp_path, "bins", SPLIT, DERIVED)
    mapping = load_mapping(mapping_file)
    table = read_table(str(table_file), mapping, need_churn=True)
    model = fit(table, mapping)
    effects = model.effects.set_index("effect")["coefficient"]
    # The first call doubles the risk: a jump from no call to one, not a line through the counts.
    assert effects["calls over 0 to 2"] > 0.5 and abs(effects["calls over 2"] - effects["calls over 0 to 2"]) < 0.3
    calls = np.array([r["calls"] for r in ROWS])
    left = np.array([r["left"] == "Yes" for r in ROWS])
    predicted = window_probability(model.design.matrix @ model.coefficients, 12)
    for band in (calls == 0, (calls > 0) & (calls <= 2), calls > 2):
        assert predicted[band].mean() == pytest.approx(left[band].mean(), abs=1e-4)
    balance = model.balance.set_index(["driver", "group"])
    assert balance.loc[("calls", "up to 0"), "table_churn"] == pytest.approx(left[calls == 0].mean())


def test_the_fit_balances_groups_where_maximum_likelihood_would_not() -> None:
    # Lines of two groups whose risk varies within each group beyond what the model sees (a hidden
    # frailty): over a year, the riskiest leave first. The fit still gives each group its own churn.
    rng = np.random.default_rng(11)
    n = 20_000
    group = rng.random(n) < 0.5
    x = np.column_stack([~group, group, rng.normal(size=n)]).astype(float)
    hidden = rng.normal(scale=1.2, size=n)
    left = rng.random(n) < window_probability(np.where(group, -1.8, -3.5) + 0.4 * x[:, 2] + hidden, 12)
    beta, _ = fit_effects(x, left, 12, tier_columns=2)
    predicted = window_probability(x @ beta, 12)
    for mine in (group, ~group):
        assert predicted[mine].mean() == pytest.approx(left[mine].mean(), abs=1e-6)
    # A saturated model by hand: one group, one code, each cell's monthly hazard 1 - (1 - rate)^(1/12).
    cells = np.column_stack([np.ones(8), [0, 0, 0, 0, 1, 1, 1, 1]]).astype(float)
    flags = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    beta, _ = fit_effects(cells, flags, 12, tier_columns=1)
    hazard = 1.0 / (1.0 + np.exp(-(cells @ beta)))
    assert hazard[0] == pytest.approx(1 - 0.75 ** (1 / 12), rel=1e-3)
    assert hazard[4] == pytest.approx(1 - 0.5 ** (1 / 12), rel=1e-3)


def test_a_decile_far_off_its_prediction_is_warned_about(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    # Churn high at both ends of tenure, low between: a line through tenure cannot rank that risk.
    rng = np.random.default_rng(4)
    rows = []
    for i in range(3_000):
        tenure = int(rng.integers(0, 72))
        risk = 0.8 if tenure < 10 or tenure > 62 else 0.08
        rows.append({"id": i, "tenure_days": tenure * 30.4, "voice": 40, "data": 20 + i % 7, "plan": "basic" if i % 2 else "premium",
                     "left": "Yes" if rng.random() < risk else "No", "contract": "M2M", "support": "N", "calls": 0})
    csv = _csv(rows, ["id", "tenure_days", "voice", "data", "plan", "left", "contract", "support", "calls"])
    mapping = DERIVED.replace("tenure: {kind: bins, edges: [12, 36]}", "tenure: {kind: linear}")
    mapping = mapping.replace("numbers: {calls: {kind: bins, edges: [0, 2]}}", "contract: false").replace(
        "indicators: {support: [\"Y\"]}", "price: null")
    code, err, _ = _calibrate(tmp_path, csv, mapping, capfd)
    assert code == 0, err
    assert "warning: decile" in err and "consider bins" in err
    # The IBM-like case of a well-ranked table says nothing.
    code, err, _ = _calibrate(tmp_path, SPLIT, DERIVED, capfd, "good")
    assert code == 0 and "warning" not in err, err


YES_NO = DERIVED.replace('churn_values: {left: ["Yes"], stayed: ["No"]}', "churn_values: {left: [yes], stayed: [no]}")


def test_unquoted_yes_and_no_read_as_the_words_the_planner_meant(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    code, err, quoted = _calibrate(tmp_path, SPLIT, DERIVED, capfd, "quoted")
    assert code == 0, err
    csv = SPLIT.replace(",Y,", ",Yes,").replace(",N,", ",No,")
    mapping = YES_NO.replace('support: ["Y"]', "support: [Yes]")
    code, err, unquoted = _calibrate(tmp_path, csv, mapping, capfd, "unquoted")
    assert code == 0, err
    assert load_scenario(unquoted).population.effects == pytest.approx(load_scenario(quoted).population.effects, rel=1e-9)


def _bad(tmp_path: Path, capfd, csv: str, mapping: str) -> str:  # type: ignore[no-untyped-def]
    code, err, out = _calibrate(tmp_path, csv, mapping, capfd, "bad")
    assert code == 1, err
    assert "Traceback" not in err and not out.exists()
    assert "bad-scenario.yaml:" not in err, err  # never a place in the file that was not written
    return err


@pytest.mark.parametrize("csv, mapping, expected", [
    (SPLIT, DERIVED.replace("sum: [voice, data]", "sum: [voice, dta]"),
     ["1 problem found", "column 'dta' (a source of derived 'charge') is not in the table", "did you mean 'data'"]),
    (SPLIT, DERIVED.replace("{sum: [voice, data]}", "{sum: [voice, data], ratio: [voice, data]}"),
     ["bad.yaml:3", "derived.charge", "exactly one of 'sum', 'ratio' and 'column'"]),
    (SPLIT, DERIVED.replace("divide_by: 30.4", "divide_by: 0"), ["bad.yaml:4", "derived.tenure.divide_by"]),
    (SPLIT.replace("\n1,", "\n1,", 1), DERIVED.replace("charge: {sum: [voice, data]}", "charge: {ratio: [voice, calls]}"),
     ["calls", "denominator of derived 'charge' is 0", "row "]),
    (SPLIT, DERIVED.replace("charge: {sum: [voice, data]}", "voice: {sum: [voice, data]}"),
     ["bad.yaml", "derived.voice", "already a column of the table"]),
    (SPLIT, YES_NO.replace("stayed: [no]", "stayed: [nope]"),
     ["'No' not in the mapping", "yes/true/on (unquoted: YAML read it as a boolean)", "quote codes"]),
    (SPLIT, DERIVED.replace('support: ["Y"]', "support: [yes]"),
     ["bad.yaml:12", "drivers.indicators.support", "no row of the table has 'support'", "'N', 'Y'"]),
    (SPLIT, DERIVED.replace("tiers: {column: plan}", "tiers: {column: contract}"),
     ["bad.yaml:8", "tiers.names", "tier value '1Y' of column 'contract'", "(row 3, 6, 9", "tier value '2Y'",
      "cannot be a tier name", "'2Y: tier_2y'"]),
    (SPLIT, DERIVED.replace("template:", "horizon_months: 2\ntemplate:"),
     ["small.yaml", "competitors.campaigns", "through", "bad.yaml", "was not written", "horizon_months"]),
], ids=["derived-source-missing", "derived-two-ways", "derived-divide-by-zero", "ratio-over-zero",
        "derived-name-taken", "unquoted-code-unknown", "indicator-code-never-seen", "tier-name", "template-horizon"])
def test_problems_name_the_file_to_edit(tmp_path: Path, capfd, csv: str, mapping: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    err = _bad(tmp_path, capfd, csv, mapping)
    for text in expected:
        assert text in err, (text, err)
