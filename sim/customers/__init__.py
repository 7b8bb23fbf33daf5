"""Starting from a real customer base: a subscriber table, its mapping, a churn model fitted to it.

:mod:`.mapping` reads the mapping file, :mod:`.table` reads and checks the table,
:mod:`.churn_model` fits the monthly churn hazard, :mod:`.calibrate` writes a scenario from
the fit, and :mod:`.population` builds the simulator's population from the table's rows.
:mod:`.campaign` learns a lever's acceptance and effect from a test-and-control campaign's table,
:mod:`.learned_lever` writes them into a scenario, and :mod:`.campaign_run` has the simulator run
such a campaign on a table's lines.
"""
