"""The visibility rule (domain.visibility) as SQL: one predicate for list queries and for loading
one conversation, so a page or an API route cannot see more than the rule allows.

Each key a viewer holds becomes one clause, the mirror of `conversation_keys`:
everything -> every row; operator N -> assigned to N; branch B -> unassigned in B; in branch B ->
every row of B; visitor C -> conversation C. tests/integration/test_visibility_sql.py checks the
two agree on every placement.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from domain.visibility import EVERYTHING, Access, Integration, Key, Placement, Staff, Viewer, access, viewer_keys
from domain.wording import N_
from infra.models import ApiToken, Contact, Conversation, Operator
from services.errors import Forbidden, Invalid

# Who calls a service: an operator in the cabinet, or an integrator's token through the API.
Caller = Operator | ApiToken


def staff(operator: Operator) -> Staff:
    return Staff(operator.id, operator.role, operator.branch_id)


def integration(token: ApiToken) -> Integration:
    branches = None if token.branch_ids is None else frozenset(token.branch_ids)
    return Integration(token.id, branches, token.can_write)


def viewer_of(caller: Caller) -> Viewer:
    return integration(caller) if isinstance(caller, ApiToken) else staff(caller)


def _clause(key: Key) -> ColumnElement[bool]:
    if key == EVERYTHING:
        return true()
    kind, value = key
    if kind == "operator":
        return Conversation.assignee_id == value
    if kind == "branch":
        return and_(Conversation.assignee_id.is_(None), Conversation.branch_id == value)
    if kind == "visitor":
        return Conversation.id == value
    if kind == "in_branch":
        return Conversation.branch_id == value
    raise ValueError(f"unknown visibility key {key!r}")


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """WHERE clause: the conversations `viewer` may see."""
    return or_(false(), *(_clause(key) for key in sorted(viewer_keys(viewer), key=repr)))


def placement(conversation: Conversation) -> Placement:
    return Placement(conversation.id, conversation.branch_id, conversation.assignee_id)


async def load_conversation(
    db: AsyncSession, viewer: Viewer, conversation_id: int, *, lock: bool = False
) -> Conversation:
    """The conversation if `viewer` may see it; Forbidden otherwise, the same for "does not
    exist" and "not yours", so ids cannot be probed."""
    query = select(Conversation).where(Conversation.id == conversation_id, visible_to(viewer))
    if lock:
        query = query.with_for_update()
    conversation = await db.scalar(query)
    if conversation is None:
        raise Forbidden()
    return conversation


def require_change(viewer: Viewer, conversation: Conversation) -> None:
    """Triage (priority, labels, notes) is open to the staff who may see a conversation, a
    supervisor watching too; a token must be read-write."""
    if isinstance(viewer, Integration):
        require_write(viewer, conversation)


def contact_visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """WHERE clause on contacts: those with a conversation `viewer` may see (every contact for
    whoever sees everything)."""
    if EVERYTHING in viewer_keys(viewer):
        return true()
    return exists().where(Conversation.contact_id == Contact.id, visible_to(viewer))


def require_write(viewer: Viewer, conversation: Conversation) -> None:
    """Supervisors and admins watch a conversation they are not assigned; to act in it they take it."""
    if access(viewer, placement(conversation)) != Access.WRITE:
        raise Invalid(READ_ONLY)


READ_ONLY = N_("Read-only view: take the conversation before answering.")
