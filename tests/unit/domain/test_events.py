"""The event vocabulary: names an integrator can read, payloads that fit a NOTIFY, scopes the
visibility rule understands."""

import json
import re

import pytest

from domain import events
from domain.enums import DeliveryStatus, MessageDirection, OperatorRole, SenderKind
from domain.events import BY_NAME, EVENTS, ConversationIds, MessageCreated, MessageStatusChanged
from domain.visibility import Placement, Staff, may_receive

REF = ConversationIds(conversation_id=5, inbox_id=2, branch_id=3, assignee_id=None)


def test_every_event_has_one_unique_dotted_name():
    names = [event.NAME for event in EVENTS]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+\.[a-z_]+", name) for name in names), names
    declared = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, events.Event) and "NAME" in vars(obj)
    }
    assert declared == set(EVENTS), "an event class is missing from EVENTS"
    assert BY_NAME["message.created"] is MessageCreated


def test_builder_carries_the_conversation_scope():
    event = MessageCreated.of(REF, message_id=9, direction=MessageDirection.IN, sender_kind=SenderKind.CONTACT)
    assert event.payload() == {
        "conversation_id": 5,
        "inbox_id": 2,
        "branch_id": 3,
        "assignee_id": None,
        "message_id": 9,
        "direction": "in",
        "sender_kind": "contact",
        "purpose": None,
        "note": False,
    }
    assert event.scope().place == Placement(5, 3, None)
    assert MessageCreated.model_validate(event.payload()) == event


def test_payloads_round_trip_and_reject_unknown_fields():
    with pytest.raises(ValueError):
        MessageCreated.model_validate(
            {**REF.model_dump(), "message_id": 1, "direction": "in", "sender_kind": "contact", "token": "secret"}
        )


def test_a_long_error_is_cut_so_the_notification_always_fits():
    event = MessageStatusChanged.of(REF, message_id=1, status=DeliveryStatus.FAILED, error="x" * 20_000)
    assert len(json.dumps(event.payload())) < 1000


def test_reassignment_scope_names_the_previous_placement():
    event = events.ConversationAssigned.of(
        REF.model_copy(update={"assignee_id": 8}),
        previous_branch_id=3,
        previous_assignee_id=None,
        reason=events.AssignmentReason.FROM_POOL,
    )
    assert event.scope().previous == Placement(5, 3, None)
    assert event.scope().place == Placement(5, 3, 8)


def test_a_failed_action_is_news_for_who_asked_and_supervisors_only():
    event = events.ConversationActionFailed.of(
        REF.model_copy(update={"assignee_id": 8}), action="transfer", operator_id=4, reason="gone", refused=True
    )
    assert may_receive(Staff(4, OperatorRole.OPERATOR, 3), event.scope())
    assert may_receive(Staff(1, OperatorRole.SUPERVISOR), event.scope())
    assert not may_receive(Staff(8, OperatorRole.OPERATOR, 3), event.scope())  # the assignee did not ask
    assert not may_receive(Staff(5, OperatorRole.OPERATOR, 3), event.scope())  # nor their branch
