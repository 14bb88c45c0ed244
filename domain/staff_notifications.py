"""Staff notifications in Telegram (seed 004): who hears of a new customer message, how a burst
is put in one message, and the contracts of StaffNotifierWorkflow (one per rule,
`staff-notify-{rule_id}`).

A notifier reads the realtime log (`message.created`, from the customer) from its rule's cursor:
no row is written for it on the inbound path, so it cannot slow or fail that path; a failure to
reach Telegram is logged and counted, and the notifier moves on.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Mode(StrEnum):
    EVERY = "every"  # every customer message
    FIRST = "first"  # only the first message of a conversation
    UNASSIGNED = "unassigned"  # only while nobody is assigned


def wanted(mode: Mode, *, first: bool, assignee_id: int | None, operator_id: int | None) -> bool:
    """Whether a rule notifies of one customer message. A rule for an operator's own chat hears
    only of the conversations assigned to that operator."""
    if operator_id is not None and assignee_id != operator_id:
        return False
    if mode == Mode.FIRST:
        return first
    if mode == Mode.UNASSIGNED:
        return assignee_id is None
    return True


LISTED = 5  # conversations linked by name in one notification


def summary(messages: int, conversations: list[tuple[int, str, str]]) -> str:
    """One Telegram message for a burst: "3 new messages in 2 conversations" and the links.
    `conversations`: (id, customer name, link), newest activity first."""
    head = ("New message" if messages == 1 else f"{messages} new messages") + (
        "" if len(conversations) == 1 else f" in {len(conversations)} conversations"
    )
    lines = [f"• {name or 'Customer'} (#{cid}): {link}" for cid, name, link in conversations[:LISTED]]
    if len(conversations) > LISTED:
        lines.append(f"… and {len(conversations) - LISTED} more")
    return "\n".join([head, *lines])


# Names in Temporal: saved histories and running workflows refer to them, so they never change.
STAFF_NOTIFIER_WORKFLOW = "StaffNotifierWorkflow"
NOTIFY_STAFF = "notify_staff"


class NotifierInput(BaseModel):
    rule_id: int
    watch_seconds: float = 20.0


class NotifyRequest(BaseModel):
    rule_id: int
    watch_seconds: float


class NotifyOutcome(BaseModel):
    gone: bool = False  # the rule was deleted: the workflow ends
    sent: int = 0
    failed: int = 0
