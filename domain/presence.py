"""Contracts of PresenceSweepWorkflow: the one instance (`presence-sweep`) taking offline the
operators who have had no cabinet tab open for the cabinet's setting (services/presence.py)."""

from __future__ import annotations

from pydantic import BaseModel

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
PRESENCE_SWEEP_WORKFLOW = "PresenceSweepWorkflow"
TAKE_ABSENT_OFFLINE = "take_absent_offline"


class PresenceSweepInput(BaseModel):
    # the setting counts in minutes: a pass a minute keeps the lateness under one
    interval_seconds: float = 60.0
