"""Contracts of FetchAttachmentsWorkflow: one per inbound message with files (`files-{message_id}`)."""

from __future__ import annotations

from pydantic import BaseModel

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
FETCH_ATTACHMENTS_WORKFLOW = "FetchAttachmentsWorkflow"
FETCH_ATTACHMENTS = "fetch_attachments"


class FetchAttachmentsInput(BaseModel):
    """The workflow's input, handed on whole to its one activity."""

    message_id: int
    # attempts of the activity; the last one records what still fails instead of raising
    max_attempts: int = 10
    retry_initial_seconds: float = 2.0


class FetchReport(BaseModel):
    stored: int = 0  # fetched by this call (a retry counts only its own)
    failed: int = 0  # fetch_error set by this call
    skipped: int = 0  # nothing to fetch (location, contact) or done before
