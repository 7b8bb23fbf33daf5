"""Bad input besides scenarios: allocation CSVs, mappings, customer tables and command lines.

Each folder of ``tests/bad_inputs/`` holds one kind of input and a ``cases.yaml`` saying, per case,
the command to run, its exit code, the texts stderr must hold (the file or option, the place, what
is wrong and the fix), and the files it must create or leave alone. Every case runs through the real
command in a subprocess (``python -m optimize.cli``), so a crash or a traceback shows as a planner
would see it. Placeholders: ``{here}`` the case's folder, ``{scenarios}`` the shipped scenarios,
``{tmp}`` a fresh folder, ``{name}`` the case's name.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import SCENARIOS

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
cli = importlib.import_module("optimize.cli.main")  # the module: the package's ``main`` is the function
KINDS = ("allocation", "mapping", "customer_table", "command_line")
TIMEOUT_SECONDS = 120


def _cases() -> list[tuple[str, str, dict]]:
    found = []
    for kind in KINDS:
        spec = yaml.safe_load((CORPUS / kind / "cases.yaml").read_text(encoding="utf-8"))
        defaults = spec.get("defaults", {})
        for name, case in spec["cases"].items():
            found.append((kind, name, {**defaults, **case}))
    return found


CASES = _cases()


def _fill(text: str, kind: str, name: str, tmp: Path) -> str:
    return (text.replace("{here}", str(CORPUS / kind)).replace("{scenarios}", str(SCENARIOS))
            .replace("{tmp}", str(tmp)).replace("{name}", name))


@pytest.mark.parametrize("kind, name, case", CASES, ids=[f"{k}/{n}" for k, n, _ in CASES])
def test_each_bad_input_is_named_with_its_place_and_fix(kind: str, name: str, case: dict, tmp_path: Path) -> None:
    if case.get("needs") and importlib.util.find_spec(case["needs"]) is None:
        pytest.skip(f"needs the {case['needs']} package")
    args = [_fill(a, kind, name, tmp_path) for a in case["args"]]
    result = subprocess.run([sys.executable, "-m", "optimize.cli", *args], capture_output=True, text=True,
                            timeout=TIMEOUT_SECONDS, cwd=tmp_path, check=False)
    said = result.stdout + result.stderr
    assert result.returncode == case["exit"], said
    assert "Traceback" not in said
    for text in case["expect"]:
        assert _fill(text, kind, name, tmp_path) in result.stderr, (text, result.stderr)
    for text in case.get("stdout_lacks", []):
        assert text not in result.stdout, (text, result.stdout)
    for path in case.get("absent", []):
        assert not Path(_fill(path, kind, name, tmp_path)).exists(), path
    for path in case.get("creates", []):
        assert Path(_fill(path, kind, name, tmp_path)).is_file(), path
    if case["exit"] != 0:
        assert "internal error" not in said


def test_every_file_of_the_corpus_is_a_case_and_every_case_has_its_file() -> None:
    """A file no case runs proves nothing; a case whose file is gone would fail for the wrong reason."""
    used: set[Path] = set()
    for kind, name, case in CASES:
        for arg in case["args"]:
            if "{here}" in arg:
                path = Path(_fill(arg, kind, name, CORPUS)).resolve()
                if path.suffix:  # a file the case reads (not a folder or a path under a file)
                    used.add(path)
    for kind, name, case in CASES:
        for arg in case["args"]:
            path = Path(_fill(arg, kind, name, CORPUS)).resolve()
            if "{here}" in arg and path in used and "cases.yaml/" not in arg:
                assert path.is_file(), (kind, name, path)
    for kind in KINDS:
        for path in (CORPUS / kind).iterdir():
            if path.name != "cases.yaml":
                assert path.resolve() in used, f"{path} is not run by any case of {kind}/cases.yaml"


def test_an_internal_error_exits_70_with_or_without_verbose(monkeypatch, capfd) -> None:  # type: ignore[no-untyped-def]
    """--verbose adds the traceback to report; it does not change what the exit code says."""
    def broken(args, console):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("a planted bug")

    monkeypatch.setattr(cli, "_cmd_schema", broken)
    assert cli.main(["schema"]) == cli.EXIT_INTERNAL
    quiet = capfd.readouterr().err
    assert "internal error: ZeroDivisionError: a planted bug" in quiet and "Traceback" not in quiet
    assert "Rerun with --verbose" in quiet
    assert cli.main(["-v", "schema"]) == cli.EXIT_INTERNAL
    loud = capfd.readouterr().err
    assert "Traceback" in loud and "a planted bug" in loud and "Report the traceback above" in loud


def test_paths_are_checked_before_the_scenario_is_even_read(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    """The parser refuses the path, so a scenario that does not exist is never opened: no work is done."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["simulate", str(tmp_path / "no_such_scenario.yaml"), "--out", str(blocker / "run")])
    assert stopped.value.code == cli.EXIT_USAGE
    err = capfd.readouterr().err
    assert "argument --out" in err and "no_such_scenario" not in err.split("error:")[-1]

