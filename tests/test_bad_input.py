"""Bad scenario files: every mistake a planner can make is reported, with its place and a fix.

Each file in ``tests/bad_scenarios/`` is a small scenario with one kind of mistake.
Its first comment lines state what ``retention validate`` must say about it:

* ``# expect-line: N``  the problem is reported at line N (``FILE:N:``);
* ``# expect: TEXT``    TEXT appears in the output (one line per expected text).

Files that cannot carry comments (the empty file, binary junk) keep their
expectations in :data:`EXPECTATIONS_OUTSIDE_THE_FILE`.

Every file runs through the real command in a subprocess (``python -m optimize.cli
validate FILE``), so a crash, a hang or a traceback shows up as it would for a planner.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "bad_scenarios"
TIMEOUT_SECONDS = 20

BAD_FILES = sorted(p for p in CORPUS.iterdir() if p.is_file())

EXPECTATIONS_OUTSIDE_THE_FILE: dict[str, dict[str, object]] = {
    "empty.yaml": {"expect": ["the file is empty"]},
    "binary_junk.yaml": {"expect": ["not a text file", "NUL bytes"]},
}
"""Files with no room for comment lines: no meaningful line either."""

KNOWN_LOADER_PROBLEMS: dict[str, str] = {}
"""Corpus files the loader is known to mishandle, with the reason (none at present)."""

SKELETON = """\
meta:
  name: bad_case
  horizon_months: 24
market:
  us: M
  operators:
    M: {}
    T: {price_index: 0.9, lines: 500000}
tiers:
  households:
    lines: 100000
    arpu: 80
    baseline_churn: 0.012
  key_a:
    kind: enterprise
    segment: key_account
    accounts: 50
    lines_per_account: 200
    arpu: 150
    baseline_churn: 0.008
network:
  regions:
    east: {share: 0.6}
    west: {share: 0.4}
contact_center:
  staffing:
    - {from_month: 1, agents: 50}
channels:
  outbound_call: {capacity_per_month: 10000}
levers:
  bill_credit:
    channel: outbound_call
    cost_per_acceptance: {amount: 50, per: line}
    acceptance: 0.4
    hazard_reduction: 0.3
budget:
  total: 1000000
"""
"""The valid scenario the corpus files were cut from (each adds one mistake to it)."""


@dataclass
class Expectation:
    line: int | None = None
    texts: list[str] = field(default_factory=list)


def _expectation(path: Path) -> Expectation:
    if path.name in EXPECTATIONS_OUTSIDE_THE_FILE:
        spec = EXPECTATIONS_OUTSIDE_THE_FILE[path.name]
        return Expectation(spec.get("line"), list(spec["expect"]))  # type: ignore[arg-type]
    expectation = Expectation()
    with path.open("rb") as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith("#"):
                break
            if m := re.match(r"#\s*expect-line:\s*(\d+)\s*$", line):
                expectation.line = int(m.group(1))
            elif m := re.match(r"#\s*expect:\s*(.+?)\s*$", line):
                expectation.texts.append(m.group(1))
    return expectation


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _validate(*args: str | Path) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "optimize.cli", "validate", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_SECONDS,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def _assert_rejected(run: Run, path: str | Path) -> None:
    assert run.returncode == 1, f"exit code {run.returncode}, expected 1\n{run.output}"
    assert "Traceback" not in run.output, run.output
    assert "internal error" not in run.output, run.output
    assert str(path) in run.stderr, f"the problems do not name {path}:\n{run.output}"
    assert "fix: " in run.stderr, f"no fix offered:\n{run.output}"


def _params() -> list:
    params = []
    for path in BAD_FILES:
        marks = []
        if path.name in KNOWN_LOADER_PROBLEMS:
            marks.append(pytest.mark.xfail(reason=KNOWN_LOADER_PROBLEMS[path.name], strict=True))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("path", _params())
def test_bad_scenario_is_rejected_with_its_place(path: Path) -> None:
    expectation = _expectation(path)
    assert expectation.texts, f"{path.name} states no '# expect:' line and has no entry in EXPECTATIONS_OUTSIDE_THE_FILE"
    run = _validate(path)
    _assert_rejected(run, path)
    for text in expectation.texts:
        assert text in run.output, f"{text!r} not in the output:\n{run.output}"
    if expectation.line is not None:
        assert f"{path}:{expectation.line}:" in run.stderr, (
            f"no problem reported at line {expectation.line}:\n{run.output}")


def test_the_corpus_is_large_enough() -> None:
    assert len(BAD_FILES) >= 30
    assert set(EXPECTATIONS_OUTSIDE_THE_FILE) <= {p.name for p in BAD_FILES}
    assert set(KNOWN_LOADER_PROBLEMS) <= {p.name for p in BAD_FILES}


def test_the_skeleton_the_corpus_is_cut_from_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "skeleton.yaml"
    path.write_text(SKELETON, encoding="utf-8")
    run = _validate(path)
    assert run.returncode == 0, run.output
    assert "valid" in run.stdout


def test_several_mistakes_are_all_reported_in_one_run(tmp_path: Path) -> None:
    mistakes = {
        "    arpu: 80\n": ("    arpu: eighty\n", "tiers.households.arpu", "expected a number"),
        "    baseline_churn: 0.008\n": ("    baseline_chrun: 0.008\n", "tiers.key_a.baseline_chrun",
                                        "did you mean 'baseline_churn'"),
        "    east: {share: 0.6}\n": ("    east: {share: 0.6, quality: 1.5}\n", "network.regions.east.quality",
                                    "at most 1"),
        "    channel: outbound_call\n": ("    channel: sms\n", "levers.bill_credit.channel", "unknown channel 'sms'"),
        "    acceptance: 0.4\n": ("    acceptance: 40\n", "levers.bill_credit.acceptance", "at most 1"),
    }
    text = SKELETON
    for old, (new, _, _) in mistakes.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "many_mistakes.yaml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines(keepends=True)

    run = _validate(path)

    _assert_rejected(run, path)
    reported_lines = set()
    for new, key_path, message in mistakes.values():
        line = lines.index(new) + 1
        reported_lines.add(line)
        problem = f"{path}:{line}:"
        assert any(ln.startswith(problem) and key_path in ln and message in ln for ln in run.stderr.splitlines()), (
            f"{key_path} ({message}) not reported at line {line}:\n{run.output}")
    assert len(reported_lines) >= 4
    found = re.search(r"\b(\d+) problems found", run.stderr)
    assert found and int(found.group(1)) >= len(mistakes), run.output


def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    size = 50 * 1024 * 1024
    # A real scenario followed by tens of megabytes of tariff moves: slow to parse, so
    # only a size check made before reading keeps the command fast.
    move = "  - {month: 1, change: -0.01}\n"
    block = move * (1024 * 1024 // len(move))
    with path.open("w", encoding="utf-8") as f:
        f.write(SKELETON + "pricing:\n")
        while f.tell() < size:
            f.write(block)
    assert path.stat().st_size >= size

    run = _validate(path)

    _assert_rejected(run, path)
    assert "MB" in run.stderr, run.output
    assert run.seconds < 10, f"took {run.seconds:.1f} s"


def test_a_missing_file_is_reported_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "no_such_scenario.yaml"
    run = _validate(path)
    _assert_rejected(run, path)
    assert "no such file" in run.stderr


def test_a_folder_is_reported_without_traceback(tmp_path: Path) -> None:
    run = _validate(tmp_path)
    _assert_rejected(run, tmp_path)
    assert "folder" in run.stderr
