"""Plumbing only: settings, the database engine and models, the Temporal client and workflow
starts, security primitives, the realtime event log and hub, rate slots and the file store.

Nothing here knows what the system does with a message: use cases live in `services`, tooling
for running it in `setup`. This package imports `domain` and libraries, never services, web,
activities, channels, workflows or setup (tests/unit/test_boundaries.py checks it).
"""
