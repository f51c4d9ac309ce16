"""The audit trail (``app.audit_log``): who read whose data, when, through which route. `entries` writes and lists
rows; the API buffers its own (api/audit.py) and the commands write theirs at once."""
