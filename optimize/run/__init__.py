"""The run and its comparison: measuring response curves by simulation, the strategies, simulating
them on common random numbers, comparing them, and the whole ``retention run`` job.

``parallel`` (fanning simulations out to workers), ``measure`` (designed runs that measure curves),
``strategies`` (the rules of thumb and planners' files), ``compare`` (the tables of a comparison),
``plan`` (the planner's functions: curves, plan, frontier, goal), ``pipeline`` (the whole run),
``finished`` (finished runs read back).
"""
