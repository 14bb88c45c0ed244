"""Who hears of a customer message, and how a burst reads (domain/staff_notifications.py)."""

import pytest

from domain.staff_notifications import LISTED, Mode, summary, wanted


@pytest.mark.parametrize(
    ("mode", "first", "assignee", "operator", "expected"),
    [
        (Mode.EVERY, False, 5, None, True),
        (Mode.FIRST, True, 5, None, True),
        (Mode.FIRST, False, None, None, False),
        (Mode.UNASSIGNED, False, None, None, True),
        (Mode.UNASSIGNED, True, 5, None, False),
        (Mode.EVERY, False, 5, 5, True),  # the operator's own chat: their conversations
        (Mode.EVERY, False, 6, 5, False),
        (Mode.EVERY, False, None, 5, False),
    ],
)
def test_wanted(mode, first, assignee, operator, expected):
    assert wanted(mode, first=first, assignee_id=assignee, operator_id=operator) is expected


def test_one_message_and_a_burst():
    assert summary(1, [(7, "Ann", "https://x/conversations/7")]) == "New message\n• Ann (#7): https://x/conversations/7"
    burst = summary(3, [(8, "Bob", "l8"), (7, "", "l7")])
    assert burst.splitlines() == ["3 new messages in 2 conversations", "• Bob (#8): l8", "• Customer (#7): l7"]


def test_a_long_burst_lists_a_few_and_counts_the_rest():
    lines = summary(40, [(i, f"C{i}", f"l{i}") for i in range(12)]).splitlines()
    assert lines[0] == "40 new messages in 12 conversations"
    assert len(lines) == 1 + LISTED + 1 and lines[-1] == f"… and {12 - LISTED} more"
