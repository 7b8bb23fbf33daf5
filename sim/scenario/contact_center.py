"""The ``contact_center`` section: the hotline as a queue of calls served by agents.

Calls arrive from lines at a base rate plus calls caused by outages; agents serve
them one at a time; a caller who waits longer than their patience hangs up.
Answered calls may escalate into complaints. Long waits, abandonment and
complaints lower the caller's satisfaction.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from .types import Month, Probability, Section, Seq, fail


class Staffing(Section):
    """Agents on shift from a month on (until the next change)."""

    from_month: Month
    agents: Annotated[int, Field(ge=0, le=1_000_000)]
    """Agents answering calls at any moment while the hotline is open."""


class ServiceLevel(Section):
    """The service-level target, e.g. 80% of calls answered within 20 seconds."""

    share: Probability = 0.8
    answer_within_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 20.0


class SatisfactionImpact(Section):
    """Satisfaction a caller loses (0..1 scale)."""

    per_minute_waited: Annotated[float, Field(ge=0.0, le=1.0)] = 0.005
    abandoned: Probability = 0.03
    complaint: Probability = 0.08


def _schedule_in_order(staffing: tuple[Staffing, ...]) -> tuple[Staffing, ...]:
    months = [s.from_month for s in staffing]
    if not months:
        raise fail("the staffing schedule is empty", "add '- {from_month: 1, agents: 300}'")
    if months[0] != 1:
        raise fail(f"the staffing schedule starts in month {months[0]}, not month 1",
                   "make the first entry 'from_month: 1'")
    if any(b <= a for a, b in zip(months, months[1:])):
        raise fail("the staffing schedule's months must increase", "list the changes in month order, each once")
    return staffing


class ContactCenter(Section):
    """Our hotline."""

    staffing: Annotated[Seq[Staffing], AfterValidator(_schedule_in_order)]
    """The staffing schedule; the first entry starts in month 1."""
    handling_minutes: Annotated[float, Field(gt=0.0, le=600.0)] = 6.0
    """Mean handling time of a call (exponential)."""
    patience_minutes: Annotated[float, Field(gt=0.0, le=600.0)] | None = 3.0
    """Mean time a caller waits before hanging up (exponential); empty for callers who never hang up."""
    open_hours_per_month: Annotated[float, Field(gt=0.0, le=744.0)] = 360.0
    """Hours the hotline is staffed each month (12 hours a day, 30 days = 360)."""
    complaint_share: Probability = 0.03
    """Share of answered calls that escalate into a complaint."""
    abandoned_complaint_share: Probability = 0.05
    """Share of abandoned callers who file a complaint."""
    service_level: ServiceLevel = ServiceLevel()
    satisfaction_impact: SatisfactionImpact = SatisfactionImpact()

    def agents_in(self, month: int) -> int:
        """Agents on shift in ``month``."""
        agents = self.staffing[0].agents
        for change in self.staffing:
            if change.from_month <= month:
                agents = change.agents
        return agents
