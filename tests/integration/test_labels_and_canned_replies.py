"""Labels and canned replies as the settings pages, the cabinet and the API use them: admins
manage them, every change is audited with before/after, names and shortcuts stay unique,
conversations carry labels, the composer finds replies by shortcut prefix and fills them in."""

from itertools import count

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from domain.enums import ChannelKind, OperatorRole
from infra.models import AuditEvent, Branch, Contact, ContactChat, ContactIdentity, Conversation, Inbox, Operator
from services import canned_replies, labels
from services.canned_replies import CannedReplyInput
from services.errors import Forbidden, Invalid
from services.labels import LabelInput


async def _operator(db, role=OperatorRole.ADMIN, branch_id=None, name="Вера") -> Operator:
    operator = Operator(
        email=f"{role.value}-{name}@example.com", display_name=name, password_hash="-", role=role, branch_id=branch_id
    )
    db.add(operator)
    await db.flush()
    return operator


_users = count(1)


async def _conversation(db, branch_id=None, assignee_id=None) -> int:
    inbox = Inbox(name="bot", channel=ChannelKind.TELEGRAM)
    contact = Contact(display_name="Ирина")
    db.add_all([inbox, contact])
    await db.flush()
    identity = ContactIdentity(contact_id=contact.id, channel=ChannelKind.TELEGRAM, provider_user_id=str(next(_users)))
    db.add(identity)
    await db.flush()
    db.add(ContactChat(identity_id=identity.id, inbox_id=inbox.id, provider_chat_id="1"))
    await db.flush()
    conversation = Conversation(
        inbox_id=inbox.id, contact_id=contact.id, identity_id=identity.id, branch_id=branch_id, assignee_id=assignee_id
    )
    db.add(conversation)
    await db.flush()
    return conversation.id


async def _audit(db, action: str) -> list[dict]:
    return [e.details for e in await db.scalars(select(AuditEvent).where(AuditEvent.action == action))]


async def test_label_lifecycle_is_audited_with_before_and_after(db):
    admin = await _operator(db)
    label = await labels.create_label(db, admin, LabelInput(name=" Срочно ", colour="#D6453A"))
    assert (label.name, label.colour) == ("Срочно", "#d6453a")
    await labels.update_label(db, admin, label.id, LabelInput(name="Срочно", colour="#2e9e4f"))
    await labels.update_label(db, admin, label.id, LabelInput(name="Срочно", colour="#2e9e4f"))  # no change
    await labels.delete_label(db, admin, label.id)
    assert await _audit(db, "label.created") == [
        {"label_id": label.id, "before": None, "after": {"name": "Срочно", "colour": "#d6453a"}}
    ]
    assert await _audit(db, "label.updated") == [
        {"label_id": label.id, "before": {"colour": "#d6453a"}, "after": {"colour": "#2e9e4f"}}
    ]
    assert await _audit(db, "label.deleted") == [
        {"label_id": label.id, "before": {"name": "Срочно", "colour": "#2e9e4f"}, "after": None}
    ]
    assert await labels.list_labels(db) == []


async def test_label_names_are_unique_ignoring_case_and_bad_input_is_refused(db):
    admin = await _operator(db)
    await labels.create_label(db, admin, LabelInput(name="VIP"))
    with pytest.raises(Invalid) as refused:
        await labels.create_label(db, admin, LabelInput(name="vip"))
    assert refused.value.field == "name"
    assert [label.name for label in await labels.list_labels(db)] == ["VIP"]  # the session is usable after
    for bad in ({"name": ""}, {"name": "x" * 51}, {"name": "a", "colour": "red"}, {"name": "a", "extra": 1}):
        with pytest.raises(ValidationError):
            LabelInput.model_validate(bad)


async def test_only_admins_manage_labels(db):
    for role in (OperatorRole.OPERATOR, OperatorRole.SUPERVISOR):
        with pytest.raises(Forbidden):
            await labels.create_label(db, await _operator(db, role, name=role.value), LabelInput(name="x"))


async def test_a_conversation_carries_exactly_the_labels_set_and_operators_only_on_what_they_see(db):
    admin = await _operator(db)
    branch = Branch(name="Урал")
    db.add(branch)
    await db.flush()
    vip = await labels.create_label(db, admin, LabelInput(name="VIP"))
    late = await labels.create_label(db, admin, LabelInput(name="Опоздание"))
    operator = await _operator(db, OperatorRole.OPERATOR, branch.id, name="Анна")
    mine = await _conversation(db, branch.id, operator.id)
    others = await _conversation(db, None, admin.id)

    assert await labels.set_conversation_labels(db, operator, mine, [vip.id, late.id]) == sorted([vip.id, late.id])
    assert await labels.set_conversation_labels(db, operator, mine, [late.id]) == [late.id]
    shown = await labels.labels_by_conversation(db, [mine, others])
    assert [label.name for label in shown[mine]] == ["Опоздание"] and others not in shown
    assert await _audit(db, "conversation.labels") == [
        {"added": sorted([vip.id, late.id]), "removed": []},
        {"added": [], "removed": [vip.id]},
    ]
    with pytest.raises(Forbidden):
        await labels.set_conversation_labels(db, operator, others, [vip.id])
    with pytest.raises(Invalid):
        await labels.set_conversation_labels(db, operator, mine, [999_999])


async def test_canned_replies_per_branch_hide_global_ones_and_are_found_by_prefix_and_filled(db):
    admin = await _operator(db)
    ural, volga = Branch(name="Урал"), Branch(name="Волга")
    db.add_all([ural, volga])
    await db.flush()
    await canned_replies.create(db, admin, CannedReplyInput(shortcut="привет", text="Здравствуйте, {contact_name}!"))
    await canned_replies.create(
        db,
        admin,
        CannedReplyInput(branch_id=ural.id, shortcut="Привет", text="Добрый день, {contact_name}! Я {operator_name}."),
    )
    await canned_replies.create(db, admin, CannedReplyInput(shortcut="/доставка", text="Доставка 2-3 дня."))
    await canned_replies.create(db, admin, CannedReplyInput(shortcut="опт_скидка", text="Скидка"))

    anna = await _operator(db, OperatorRole.OPERATOR, ural.id, name="Анна")
    boris = await _operator(db, OperatorRole.OPERATOR, volga.id, name="Борис")
    found = await canned_replies.search(db, anna, "/при", contact_name="Ирина")
    assert [(r.shortcut, r.text) for r in found] == [("Привет", "Добрый день, Ирина! Я Анна.")]
    found = await canned_replies.search(db, boris, "ПРИ", contact_name="Ирина")
    assert [(r.shortcut, r.text) for r in found] == [("привет", "Здравствуйте, Ирина!")]
    assert [r.shortcut for r in await canned_replies.search(db, boris, "")] == ["доставка", "опт_скидка", "привет"]
    # LIKE wildcards in the prefix are literal
    assert [r.shortcut for r in await canned_replies.search(db, boris, "опт_")] == ["опт_скидка"]
    assert await canned_replies.search(db, boris, "%") == []
    assert await canned_replies.search(db, boris, "о_т") == []


async def test_canned_reply_shortcuts_are_unique_per_scope_and_text_variables_are_checked(db):
    admin = await _operator(db)
    branch = Branch(name="Урал")
    db.add(branch)
    await db.flush()
    await canned_replies.create(db, admin, CannedReplyInput(shortcut="hi", text="Hello"))
    await canned_replies.create(db, admin, CannedReplyInput(branch_id=branch.id, shortcut="hi", text="Hello, Ural"))
    with pytest.raises(Invalid) as refused:
        await canned_replies.create(db, admin, CannedReplyInput(shortcut="HI", text="again"))
    assert refused.value.field == "shortcut"
    with pytest.raises(Invalid) as refused:
        await canned_replies.create(db, admin, CannedReplyInput(branch_id=987654, shortcut="x", text="x"))
    assert refused.value.field == "branch_id"
    with pytest.raises(ValidationError) as bad:
        CannedReplyInput(shortcut="two words", text="Hi {customer}")
    assert {e["loc"][0] for e in bad.value.errors()} == {"shortcut", "text"}


def test_fill_replaces_known_variables_only():
    text = "Hi {contact_name}, {operator_name} here {unknown} {"
    assert canned_replies.fill(text, contact_name="Ann", operator_name="Bob") == "Hi Ann, Bob here {unknown} {"
