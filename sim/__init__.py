"""The subscriber side of the retention planner.

``sim`` holds everything that describes and simulates a telecom operator's
subscriber base: the scenario a planner writes (:mod:`sim.scenario`), and the
discrete-event model of churn that later stages build on. It never imports
:mod:`optimize`; the budget allocator sits on top of it.

Quick start::

    from sim.scenario import load_scenario
    scenario = load_scenario("scenarios/baseline.yaml")
    print(scenario.meta.name, sum(t.line_count for t in scenario.tiers.values()))
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("retention-planner")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
