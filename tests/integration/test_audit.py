"""The audit trail's one writer: who acted is an operator or the system, never a free string."""

from sqlalchemy import select

from domain.enums import ActorKind, OperatorRole
from infra.models import AuditEvent, Operator
from infra.security import hash_password
from services import audit


async def test_an_entry_names_the_operator_or_the_system(db):
    operator = Operator(
        email="audit@example.com", display_name="Ann", password_hash=hash_password("x" * 12), role=OperatorRole.OPERATOR
    )
    db.add(operator)
    await db.flush()

    audit.record(db, "operator.login", operator_id=operator.id)
    audit.record(db, "contact.unreachable", details={"identity_id": 7})
    await db.flush()

    rows = (
        await db.execute(
            select(AuditEvent.action, AuditEvent.actor_kind, AuditEvent.actor_operator_id, AuditEvent.details).order_by(
                AuditEvent.id
            )
        )
    ).all()
    assert [tuple(r) for r in rows[-2:]] == [
        ("operator.login", ActorKind.OPERATOR, operator.id, {}),
        ("contact.unreachable", ActorKind.SYSTEM, None, {"identity_id": 7}),
    ]
