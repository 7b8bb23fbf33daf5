"""The decision side of the retention planner.

``optimize`` turns simulated or stated response curves into a budget allocation
(tier x lever x period) by linear programming, compares strategies, writes the
planner's tables and report, and carries the ``retention`` command line. It builds
on :mod:`sim`; nothing in :mod:`sim` imports it.
"""

from sim import __version__

__all__ = ["__version__"]
