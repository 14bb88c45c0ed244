"""The hub finds an event's recipients by dict lookups; they must be exactly the subscribers the
visibility rule lets see it, whatever the mix of viewers and scopes."""

import random

from domain.enums import OperatorRole
from domain.visibility import Audience, EventScope, Placement, Staff, Visitor, event_keys, may_receive
from infra.realtime import Hub, Outgoing, Subscriber, sse_frame


def _viewer(rng: random.Random):
    kind = rng.choice(["operator", "operator", "supervisor", "admin", "visitor"])
    if kind == "visitor":
        return Visitor(rng.randint(1, 6))
    role = {"operator": OperatorRole.OPERATOR, "supervisor": OperatorRole.SUPERVISOR, "admin": OperatorRole.ADMIN}[kind]
    return Staff(rng.randint(1, 8), role, rng.choice([None, 1, 2, 3]))


def _place(rng: random.Random):
    return Placement(rng.randint(1, 6), rng.choice([None, 1, 2, 3]), rng.choice([None, *range(1, 9)]))


def _scope(rng: random.Random) -> EventScope:
    audience = rng.choice(list(Audience))
    return EventScope(
        audience,
        place=_place(rng),
        previous=_place(rng) if rng.random() < 0.3 else None,
        operator_id=rng.randint(1, 8),
        branch_id=rng.choice([None, 1, 2, 3]),
    )


def test_recipients_by_index_are_exactly_who_the_rule_allows():
    rng = random.Random(9)
    hub = Hub(None, {})  # type: ignore[arg-type]
    hub.last_id = 0
    subs: list[Subscriber] = [hub.subscribe(_viewer(rng)) for _ in range(300)]
    for event_id in range(1, 400):
        scope = _scope(rng)
        for sub in subs:
            sub._frames.clear()
        hub.dispatch(Outgoing(event_id, event_keys(scope), sse_frame(event_id, "x", "{}")))
        got = {id(sub) for sub in subs if sub._frames}
        allowed = {id(sub) for sub in subs if may_receive(sub.viewer, scope)}
        assert got == allowed, scope


def test_an_event_is_serialised_once_and_shared():
    hub = Hub(None, {})  # type: ignore[arg-type]
    hub.last_id = 0
    subs = [hub.subscribe(Staff(n, OperatorRole.SUPERVISOR)) for n in range(1, 4)]
    event = Outgoing(1, event_keys(EventScope(Audience.SUPERVISORS)), sse_frame(1, "x", "{}"))
    hub.dispatch(event)
    assert all(sub._frames[0] is event.frame for sub in subs)


def test_an_overflowing_subscriber_is_cut_off_without_touching_the_others():
    hub = Hub(None, {}, queue_limit=5)  # type: ignore[arg-type]
    hub.last_id = 0
    slow, fast = hub.subscribe(Staff(1, OperatorRole.ADMIN)), hub.subscribe(Staff(2, OperatorRole.ADMIN))
    keys = event_keys(EventScope(Audience.SUPERVISORS))
    for event_id in range(1, 8):
        hub.dispatch(Outgoing(event_id, keys, sse_frame(event_id, "x", "{}")))
        fast._frames.clear()  # this one keeps up
    assert slow.closed and slow not in hub.subscribers()
    # the hint names the newest event it was due (the one that overflowed): reload, go on from there
    assert list(slow._frames) == [b'id: 6\nevent: resync\ndata: {"reason": "too_slow"}\n\n']
    assert not fast.closed and fast in hub.subscribers()
