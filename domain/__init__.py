"""Pure domain: contracts, ids and rules. No I/O, safe to import inside the workflow sandbox."""
