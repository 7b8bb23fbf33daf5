"""The cost of lines that respond differently: one replication of the scaled baseline (the benchmark's
workload and allocation), with every lever as stated and with a ``response`` on every lever.

    .venv/bin/python bench/response_speed.py LINES off|on [REPLICATIONS]

prints the seconds of each ``Simulation.run`` (the calibration and the population are not timed) and
the least of them. Run ``off`` and ``on`` one after the other, on a quiet machine.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import revenue_allocation, scaled_baseline

from sim.engine import Simulation, prepare
from sim.scenario.levers import Response

lines = float(sys.argv[1])
variant = sys.argv[2]
scenario, _ = scaled_baseline(lines)
if variant == "on":
    # The futility figures: responsiveness spread 0.8 on the log-odds, correlation -0.6 with risk.
    levers = {name: lv.model_copy(update={"response": Response(spread=0.8, risk_correlation=-0.6)})
              for name, lv in scenario.levers.items()}
    scenario = scenario.model_copy(update={"levers": levers})
allocation = revenue_allocation(scenario)
calibration = prepare(scenario, 1)
best = []
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
    simulation = Simulation(scenario, allocation, calibration, 1, 0)
    start = time.perf_counter()
    simulation.run()
    best.append(time.perf_counter() - start)
print(variant, lines, " ".join(f"{x:.2f}" for x in best), f"min {min(best):.2f}")
