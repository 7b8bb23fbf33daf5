"""The allocation problem: response curves in, a budget allocation with its shadow prices out.

``curves`` (the concave response curve of a tier x lever x period cell), ``problem`` (the LP/MILP
built from them and the scenario's rules), ``solvers`` (HiGHS and CBC), ``solve`` (the answer as a
planner reads it), ``diagnosis`` (why a problem has no solution), ``frontier`` and ``goal``
(value against budget; the least budget that reaches a goal). Nothing here simulates.
"""
