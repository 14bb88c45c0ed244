"""Names of HousekeepingWorkflow (the one instance `housekeeping`) and its activity."""

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
HOUSEKEEPING_WORKFLOW = "HousekeepingWorkflow"
PURGE_EXPIRED = "purge_expired"
