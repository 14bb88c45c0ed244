"""Who gets a conversation (seed 003, items 2, 3 and 16).

The seed asks for "random but even"; a workflow must be deterministic, so evenness comes from
a fixed order instead of chance: fewest open conversations first, then the operator who has
waited longest since their last assignment (round robin), then the lowest id.

Candidates are the operators eligible right now: the caller passes only those of the branch
who are online (item 16), so the status rule lives in one query, not in every rule here.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class OperatorCandidate(BaseModel):
    """An eligible operator as the assignment rule sees them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operator_id: int
    open_load: int = Field(ge=0)  # open conversations currently assigned to them
    last_assigned_at: AwareDatetime | None = None  # None: never assigned, so first in line


def _fairness_key(candidate: OperatorCandidate) -> tuple[int, bool, datetime | None, int]:
    # (False, None) sorts before (True, <any time>): never-assigned operators come first
    # and None is never compared with a datetime.
    assigned = candidate.last_assigned_at is not None
    return (candidate.open_load, assigned, candidate.last_assigned_at, candidate.operator_id)


def choose_operator(candidates: Iterable[OperatorCandidate], exclude: Set[int] = frozenset()) -> int | None:
    """The operator to assign next, or None when nobody outside `exclude` is available.

    Least open load wins; among equals the least recently assigned (never assigned first),
    then the lowest id, so the same inputs always give the same answer on replay.
    """
    eligible = [c for c in candidates if c.operator_id not in exclude]
    return min(eligible, key=_fairness_key).operator_id if eligible else None


def next_escalation_target(
    candidates: Iterable[OperatorCandidate], timed_out: Set[int], current: int | None
) -> int | None:
    """Whom a conversation goes to when its assignee did not open it in time (item 3).

    `timed_out` remembers, per conversation, every operator who already let it time out;
    `current` (the assignee who just timed out) counts as one of them even if the caller has
    not added it yet. Those operators are skipped, so the conversation travels through every
    eligible operator once, in the order `choose_operator` gives. When all of them have timed
    out the answer is None: the conversation stays in the branch pool, unassigned, and the
    caller alerts supervisors rather than cycling it round again. An operator who comes
    online later is not in `timed_out` and is a fresh target.
    """
    skipped = set(timed_out) if current is None else {*timed_out, current}
    return choose_operator(candidates, exclude=skipped)
