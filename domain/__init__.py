"""Pure domain: contracts (with the Temporal names of each workflow, its signals and activities),
ids and rules. No I/O, safe to import inside the workflow sandbox."""
