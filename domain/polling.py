"""Contracts of PollerWorkflow: one per inbox in long-polling mode (`poller-{inbox_id}`)."""

from __future__ import annotations

from pydantic import BaseModel

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
POLLER_WORKFLOW = "PollerWorkflow"
POLLS_QUERY = "polls"
POLL_INBOX = "poll_inbox"

DEFAULT_POLL_TIMEOUT = 25  # seconds a long poll is held open by the provider
DEFAULT_POLLS_PER_RUN = 200  # ~6 history events per poll: continue-as-new well below the limits


class PollerInput(BaseModel):
    inbox_id: int
    poll_timeout: int = DEFAULT_POLL_TIMEOUT
    polls_per_run: int = DEFAULT_POLLS_PER_RUN
    # a killed worker's poll is retried elsewhere this long after its last heartbeat
    heartbeat_timeout_seconds: float = 30.0
    # polls done by earlier runs of this workflow (continue-as-new keeps counting)
    polls_done: int = 0


class PollRequest(BaseModel):
    """The argument of the `poll_inbox` activity."""

    inbox_id: int
    timeout: int = DEFAULT_POLL_TIMEOUT
    heartbeat_every: float = 10.0


class PollOutcome(BaseModel):
    """What one `poll_inbox` did; `keep_polling` False ends the workflow."""

    keep_polling: bool
    updates: int = 0
    events: int = 0
    # updates that did not parse and events that could not be stored after retries: passed by
    skipped: int = 0
    stop_reason: str | None = None
