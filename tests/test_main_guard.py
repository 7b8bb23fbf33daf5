"""A script that starts worker processes outside ``if __name__ == "__main__":`` is told so, at once, with its
line (:mod:`optimize.run.main_guard`); before, it waited forever on a worker that died being started."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import ROOT
from .test_command_line import _tiny

PROBE = "from optimize.run.main_guard import unguarded_call\n"


def _script(folder: Path, body: str) -> subprocess.CompletedProcess[str]:
    path = folder / "plan.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)


def test_the_line_that_starts_workers_is_found_outside_the_guard_only(tmp_path: Path) -> None:
    top = _script(tmp_path, PROBE + "print(unguarded_call())\n")
    assert top.stdout.strip() == f"('{tmp_path / 'plan.py'}', 2)", top.stderr
    # A function the top level calls is flagged at the call: that is the line each worker would run again.
    called = _script(tmp_path, PROBE + "def work():\n    print(unguarded_call())\n\n\nwork()\n")
    assert called.stdout.strip().endswith(", 6)"), called.stderr
    for guarded in ('if __name__ == "__main__":\n    print(unguarded_call())\n',
                    'def main():\n    print(unguarded_call())\n\n\nif "__main__" == __name__ and True:\n    main()\n'):
        said = _script(tmp_path, PROBE + guarded)
        assert said.stdout.strip() == "None", (guarded, said.stderr)
    inline = subprocess.run([sys.executable, "-c", PROBE + "print(unguarded_call())"], capture_output=True,
                            text=True, check=True)
    assert inline.stdout.strip() == "None"  # python -c: spawned workers do not run it again


def test_a_package_run_with_dash_m_is_judged_as_spawn_judges_it(tmp_path: Path) -> None:
    """``python -m package`` runs its ``__main__`` once (spawn never imports a ``__main__`` module again, as
    ``python -m optimize.cli`` relies on); ``python -m package.module`` is imported again by each worker."""
    package = tmp_path / "planning"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("__main__", "plan"):
        (package / f"{name}.py").write_text(PROBE + "print(unguarded_call())\n", encoding="utf-8")
    said = {name: subprocess.run([sys.executable, "-m", f"planning{name}"], capture_output=True, text=True,
                                 cwd=tmp_path, check=True).stdout.strip() for name in ("", ".plan")}
    assert said[""] == "None"
    assert said[".plan"] == f"('{package / 'plan.py'}', 2)"


def test_an_unguarded_script_with_two_workers_stops_with_its_line_and_the_fix(tmp_path: Path) -> None:
    scenario = _tiny(tmp_path)
    done = _script(tmp_path, f"""\
        from optimize.run.pipeline import run
        from sim.scenario import load_scenario

        run(load_scenario({str(scenario)!r}), strategies=["uniform"], replications=2, workers=2)
        print("finished")
        """)
    assert done.returncode == 1 and "finished" not in done.stdout
    assert f"{tmp_path / 'plan.py'}, line 4: this script starts worker processes at its top level" in done.stderr
    assert 'fix: put the script\'s work under  if __name__ == "__main__":' in done.stderr
    assert "bootstrapping phase" not in done.stderr  # no worker was started
