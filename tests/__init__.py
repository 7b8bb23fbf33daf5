"""Test suite of the retention planner."""
