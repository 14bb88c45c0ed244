"""A region rule an admin adds routes the next contact from that region to its branch, through
the real ingest path, outbox and conversation workflow; without a rule, the inbox's default
branch, else the default branch, takes it."""

from datetime import UTC, datetime
from itertools import count

from sqlalchemy import select, update

from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import ChannelKind, Interface, OperatorRole
from infra.models import Branch, Conversation, Inbox, Operator
from services import branches
from services.branches import BranchInput, RegionRuleInput
from services.ingest import ingest
from tests.integration.conftest import wait_until

_visitors = count(1)


def _widget_message(inbox_id: int, region: str | None) -> InboundEvent:
    visitor = f"visitor-{next(_visitors)}"
    return InboundEvent(
        inbox_id=inbox_id,
        channel=ChannelKind.WIDGET,
        interface=Interface.WIDGET,
        kind=InboundKind.MESSAGE,
        provider_user_id=visitor,
        provider_chat_id=visitor,
        provider_message_id=f"{visitor}:1",
        provider_time=datetime.now(UTC),
        text="Здравствуйте",
        profile=ContactProfile(display_name="Гость", region=region),
    )


async def _branch_of(factory, conversation_id: int) -> int | None:
    async with factory() as db:
        return await db.scalar(select(Conversation.branch_id).where(Conversation.id == conversation_id))


async def test_a_region_rule_routes_a_widget_contact_to_its_branch(world, engine_stack):
    factory = world.factory
    async with factory() as db, db.begin():
        admin = Operator(email="root@example.com", display_name="Root", password_hash="-", role=OperatorRole.ADMIN)
        db.add(admin)
        await db.flush()
        ural = await branches.create_branch(db, admin, BranchInput(name="Урал", timezone="Asia/Yekaterinburg"))
        volga = await branches.create_branch(db, admin, BranchInput(name="Волга", timezone="Europe/Samara"))
        await branches.add_rule(db, admin, RegionRuleInput(region="RU-SVE", branch_id=ural.id))
        widget = Inbox(name="Сайт", channel=ChannelKind.WIDGET)
        db.add(widget)
        await db.flush()
        ural_id, volga_id, widget_id = ural.id, volga.id, widget.id

    from_sverdlovsk = (await ingest(factory, _widget_message(widget_id, "ru-sve"))).conversation_id
    from_moscow = (await ingest(factory, _widget_message(widget_id, "RU-MOW"))).conversation_id
    await wait_until(lambda: _branch_of(factory, from_sverdlovsk))
    await wait_until(lambda: _branch_of(factory, from_moscow))
    assert await _branch_of(factory, from_sverdlovsk) == ural_id
    assert await _branch_of(factory, from_moscow) == world.branch_id  # no rule: the default branch

    # the inbox's own default branch comes before the global default
    async with factory() as db, db.begin():
        await db.execute(update(Inbox).where(Inbox.id == widget_id).values(default_branch_id=volga_id))
    from_kazan = (await ingest(factory, _widget_message(widget_id, "RU-TA"))).conversation_id
    again_sverdlovsk = (await ingest(factory, _widget_message(widget_id, "RU-SVE"))).conversation_id
    await wait_until(lambda: _branch_of(factory, from_kazan))
    await wait_until(lambda: _branch_of(factory, again_sverdlovsk))
    assert await _branch_of(factory, from_kazan) == volga_id
    assert await _branch_of(factory, again_sverdlovsk) == ural_id
    async with factory() as db:
        assert (await db.get(Branch, world.branch_id)).is_default
