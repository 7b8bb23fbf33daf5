"""What a run writes for the planner: the tables and workbook (``tables``) and the report (``report``)."""
