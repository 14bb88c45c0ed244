"""The visibility rule: every kind of viewer against every placement of a conversation, and
the realtime audience of every event built from the same keys."""

import itertools

import pytest

from domain.enums import OperatorRole
from domain.visibility import (
    Access,
    Audience,
    EventScope,
    Integration,
    Placement,
    Staff,
    Visitor,
    access,
    event_keys,
    may_receive,
    viewer_keys,
)

ME, COLLEAGUE, STRANGER = 1, 2, 3  # operator ids; COLLEAGUE works in my branch
MY_BRANCH, OTHER_BRANCH = 10, 20
CONVERSATION, OTHER_CONVERSATION = 100, 101

operator = Staff(ME, OperatorRole.OPERATOR, MY_BRANCH)
operator_without_branch = Staff(ME, OperatorRole.OPERATOR, None)
supervisor = Staff(ME, OperatorRole.SUPERVISOR, MY_BRANCH)
admin = Staff(ME, OperatorRole.ADMIN, None)
visitor = Visitor(CONVERSATION)

# (placement name, branch, assignee)
PLACEMENTS = {
    "mine": (MY_BRANCH, ME),
    "mine, moved to another branch": (OTHER_BRANCH, ME),
    "mine, not routed yet": (None, ME),
    "my branch's pool": (MY_BRANCH, None),
    "a colleague's": (MY_BRANCH, COLLEAGUE),
    "another branch's pool": (OTHER_BRANCH, None),
    "someone's in another branch": (OTHER_BRANCH, STRANGER),
    "not routed, unassigned": (None, None),
}

W, R, N = Access.WRITE, Access.READ, Access.NONE
EXPECTED = {
    # placement:                      operator, operator w/o branch, supervisor, admin
    "mine": (W, W, W, W),
    "mine, moved to another branch": (W, W, W, W),
    "mine, not routed yet": (W, W, W, W),
    "my branch's pool": (W, N, R, R),
    "a colleague's": (N, N, R, R),
    "another branch's pool": (N, N, R, R),
    "someone's in another branch": (N, N, R, R),
    "not routed, unassigned": (N, N, R, R),
}


@pytest.mark.parametrize("name", PLACEMENTS)
def test_staff_access_by_placement(name):
    branch, assignee = PLACEMENTS[name]
    place = Placement(CONVERSATION, branch, assignee)
    got = tuple(access(viewer, place) for viewer in (operator, operator_without_branch, supervisor, admin))
    assert got == EXPECTED[name]


@pytest.mark.parametrize("name", PLACEMENTS)
def test_a_visitor_sees_their_own_conversation_only_wherever_it_sits(name):
    branch, assignee = PLACEMENTS[name]
    assert access(visitor, Placement(CONVERSATION, branch, assignee)) == Access.WRITE
    assert access(visitor, Placement(OTHER_CONVERSATION, branch, assignee)) == Access.NONE


def test_an_operator_without_a_branch_does_not_see_unrouted_conversations_as_a_pool():
    # None == None must not make an unrouted conversation "their branch's pool"
    assert access(operator_without_branch, Placement(CONVERSATION, None, None)) == Access.NONE


def test_guessed_ids_see_nothing():
    for viewer in (operator, operator_without_branch, visitor):
        for conversation, branch, assignee in itertools.product(
            (CONVERSATION + 999, 0, -1), (OTHER_BRANCH, None), (STRANGER, None)
        ):
            assert access(viewer, Placement(conversation, branch, assignee)) == Access.NONE, (viewer, branch, assignee)
    # a visitor id is a conversation id: another conversation's id sees nothing
    assert access(Visitor(OTHER_CONVERSATION), Placement(CONVERSATION, MY_BRANCH, None)) == Access.NONE


def test_a_reassignment_reaches_who_saw_it_before_and_who_sees_it_now():
    scope = EventScope(
        Audience.STAFF,
        place=Placement(CONVERSATION, OTHER_BRANCH, STRANGER),
        previous=Placement(CONVERSATION, MY_BRANCH, ME),
    )
    assert may_receive(operator, scope)  # it left me: my list must drop it
    assert may_receive(Staff(STRANGER, OperatorRole.OPERATOR, OTHER_BRANCH), scope)
    assert not may_receive(Staff(COLLEAGUE, OperatorRole.OPERATOR, MY_BRANCH), scope)
    taken_from_pool = EventScope(
        Audience.STAFF,
        place=Placement(CONVERSATION, MY_BRANCH, COLLEAGUE),
        previous=Placement(CONVERSATION, MY_BRANCH, None),
    )
    assert may_receive(operator, taken_from_pool)  # it left my pool
    assert not may_receive(Staff(STRANGER, OperatorRole.OPERATOR, OTHER_BRANCH), taken_from_pool)


def test_audiences():
    place = Placement(CONVERSATION, MY_BRANCH, None)
    for_visitor = EventScope(Audience.CONVERSATION, place=place)
    staff_only = EventScope(Audience.STAFF, place=place)
    assert may_receive(visitor, for_visitor) and not may_receive(visitor, staff_only)
    assert may_receive(operator, staff_only) and may_receive(supervisor, staff_only)
    # the previous placement never reaches a visitor: they see their conversation as it is
    assert not may_receive(Visitor(CONVERSATION), EventScope(Audience.STAFF, previous=place))

    visitor_alone = EventScope(Audience.VISITOR, place=place)
    assert [may_receive(v, visitor_alone) for v in (operator, supervisor, admin, visitor)] == [False] * 3 + [True]
    assert not may_receive(Visitor(CONVERSATION + 1), visitor_alone)

    alert = EventScope(Audience.SUPERVISORS, place=place)
    assert [may_receive(v, alert) for v in (operator, supervisor, admin, visitor)] == [False, True, True, False]

    team = EventScope(Audience.TEAM, operator_id=COLLEAGUE, branch_id=MY_BRANCH)
    assert may_receive(operator, team) and may_receive(Staff(COLLEAGUE, OperatorRole.OPERATOR, None), team)
    assert not may_receive(Staff(STRANGER, OperatorRole.OPERATOR, OTHER_BRANCH), team)
    assert not may_receive(operator_without_branch, team) and not may_receive(visitor, team)
    assert may_receive(admin, team)


def test_viewer_and_event_keys_are_what_subscribers_are_indexed_by():
    assert viewer_keys(operator) == {("operator", ME), ("branch", MY_BRANCH)}
    assert viewer_keys(supervisor) == {("operator", ME), ("all",)}  # no pool: a supervisor's is every branch
    assert viewer_keys(visitor) == {("visitor", CONVERSATION)}
    assert event_keys(EventScope(Audience.CONVERSATION, place=Placement(CONVERSATION, MY_BRANCH, None))) == {
        ("all",),
        ("branch", MY_BRANCH),
        ("in_branch", MY_BRANCH),
        ("visitor", CONVERSATION),
    }


# API tokens: every conversation of their branches (assigned or not), or of all; write only if
# read-write
token_of_my_branch = Integration(1, frozenset({MY_BRANCH}), writes=True)
token_of_both = Integration(2, frozenset({MY_BRANCH, OTHER_BRANCH}), writes=True)
token_of_all = Integration(3, None, writes=True)
read_only_token = Integration(4, None, writes=False)
TOKEN_EXPECTED = {
    # placement:                      my branch, both branches, all, all read-only
    "mine": (W, W, W, R),
    "mine, moved to another branch": (N, W, W, R),
    "mine, not routed yet": (N, N, W, R),
    "my branch's pool": (W, W, W, R),
    "a colleague's": (W, W, W, R),
    "another branch's pool": (N, W, W, R),
    "someone's in another branch": (N, W, W, R),
    "not routed, unassigned": (N, N, W, R),
}


@pytest.mark.parametrize("name", PLACEMENTS)
def test_token_access_by_placement(name):
    branch, assignee = PLACEMENTS[name]
    place = Placement(CONVERSATION, branch, assignee)
    tokens = (token_of_my_branch, token_of_both, token_of_all, read_only_token)
    assert tuple(access(token, place) for token in tokens) == TOKEN_EXPECTED[name]


def test_a_token_of_no_branch_sees_nothing():
    nothing = Integration(5, frozenset(), writes=True)
    for branch, assignee in PLACEMENTS.values():
        assert access(nothing, Placement(CONVERSATION, branch, assignee)) == Access.NONE
