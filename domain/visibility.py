"""Who may see which conversation, stated once.

- an operator: the conversations assigned to them, and the unassigned ones of their own
  branch (its pool); an operator without a branch has no pool;
- a supervisor or an admin: every conversation, read-only unless they are its assignee;
- a widget visitor: only their own conversation;
- an integration (a REST API token): every conversation of its branches, or of all branches;
  it may act in them only if the token is read-write.

The rule is written as keys: a viewer holds some, a conversation is visible to some, and a
viewer sees a conversation when they share one. The same keys index realtime subscribers (an
event finds its recipients by dict lookups) and build the SQL predicate for list queries, so
the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from domain.enums import OperatorRole

Key = tuple[str, int] | tuple[str]

EVERYTHING: Key = ("all",)


def operator_key(operator_id: int) -> Key:
    return ("operator", operator_id)


def branch_key(branch_id: int) -> Key:
    """Held by the operators of a branch: its pool and its team's status."""
    return ("branch", branch_id)


def visitor_key(conversation_id: int) -> Key:
    return ("visitor", conversation_id)


def in_branch_key(branch_id: int) -> Key:
    """Held by every conversation of a branch, assigned or not: what a branch's API token sees."""
    return ("in_branch", branch_id)


class Access(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2


@dataclass(frozen=True, slots=True)
class Staff:
    """Someone signed in to the cabinet."""

    operator_id: int
    role: OperatorRole
    branch_id: int | None = None


@dataclass(frozen=True, slots=True)
class Visitor:
    """A customer in the website widget: they see their own conversation and nothing else."""

    conversation_id: int


@dataclass(frozen=True, slots=True)
class Integration:
    """An integrator's API token: the conversations of its branches (None: of every branch)."""

    token_id: int
    branch_ids: frozenset[int] | None
    writes: bool


Viewer = Staff | Visitor | Integration


def viewer_keys(viewer: Viewer) -> frozenset[Key]:
    if isinstance(viewer, Visitor):
        return frozenset({visitor_key(viewer.conversation_id)})
    if isinstance(viewer, Integration):
        if viewer.branch_ids is None:
            return frozenset({EVERYTHING})
        return frozenset(in_branch_key(branch_id) for branch_id in viewer.branch_ids)
    keys = {operator_key(viewer.operator_id)}
    if viewer.role in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN):
        keys.add(EVERYTHING)
    elif viewer.branch_id is not None:
        keys.add(branch_key(viewer.branch_id))
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a conversation sits: all that decides who may see it."""

    conversation_id: int | None
    branch_id: int | None
    assignee_id: int | None


def conversation_keys(place: Placement, *, visitor: bool = True) -> frozenset[Key]:
    keys = {EVERYTHING}
    if place.branch_id is not None:
        keys.add(in_branch_key(place.branch_id))
    if place.assignee_id is not None:
        keys.add(operator_key(place.assignee_id))
    elif place.branch_id is not None:
        keys.add(branch_key(place.branch_id))
    if visitor and place.conversation_id is not None:
        keys.add(visitor_key(place.conversation_id))
    return frozenset(keys)


def access(viewer: Viewer, place: Placement) -> Access:
    """WRITE for the assignee, the branch pool and the visitor; READ for supervisors and
    admins who are not the assignee (they watch, and never mark anything read). A token
    writes in what it sees when it is read-write."""
    shared = viewer_keys(viewer) & conversation_keys(place)
    if shared and isinstance(viewer, Integration):
        return Access.WRITE if viewer.writes else Access.READ
    if shared - {EVERYTHING}:
        return Access.WRITE
    return Access.READ if shared else Access.NONE


def may_move_to(viewer: Viewer, branch_id: int | None) -> bool:
    """Where a viewer may send a conversation (or find an operator to send it to): staff
    anywhere; a token only within its branches, so nothing outside them can be probed."""
    if isinstance(viewer, Integration) and viewer.branch_ids is not None:
        return branch_id in viewer.branch_ids
    return True


class Audience(StrEnum):
    """Who an event is for, besides what its conversation's placement says."""

    CONVERSATION = "conversation"  # everyone who may see the conversation, its visitor included
    STAFF = "staff"  # the staff who may see the conversation
    VISITOR = "visitor"  # the conversation's website visitor alone
    TEAM = "team"  # an operator's own news: supervisors, the operator, their branch
    SUPERVISORS = "supervisors"


@dataclass(frozen=True, slots=True)
class EventScope:
    audience: Audience
    place: Placement | None = None
    # Before a reassignment: whoever saw it then must hear that it left them.
    previous: Placement | None = None
    operator_id: int | None = None
    branch_id: int | None = None


def event_keys(scope: EventScope) -> frozenset[Key]:
    if scope.audience == Audience.SUPERVISORS:
        return frozenset({EVERYTHING})
    if scope.audience == Audience.TEAM:
        keys = {EVERYTHING}
        if scope.operator_id is not None:
            keys.add(operator_key(scope.operator_id))
        if scope.branch_id is not None:
            keys.add(branch_key(scope.branch_id))
        return frozenset(keys)
    if scope.audience == Audience.VISITOR:
        if scope.place is None or scope.place.conversation_id is None:
            return frozenset()
        return frozenset({visitor_key(scope.place.conversation_id)})
    keys = {EVERYTHING}
    if scope.place is not None:
        keys |= conversation_keys(scope.place, visitor=scope.audience == Audience.CONVERSATION)
    if scope.previous is not None:
        keys |= conversation_keys(scope.previous, visitor=False)
    return frozenset(keys)


def may_receive(viewer: Viewer, scope: EventScope) -> bool:
    return not viewer_keys(viewer).isdisjoint(event_keys(scope))
