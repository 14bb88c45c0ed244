"""Settings -> Staff notifications: per branch, a Telegram staff chat told of customer messages
(every one, the first of a conversation, or while unassigned) or an operator's own chat told of
the conversations assigned to them, sent by one of our Telegram bots
(services/staff_notifications.py). A new rule's notifier workflow is started after commit; when
Temporal cannot be reached the worker starts every rule's on its start."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from domain.enums import ChannelKind
from domain.staff_notifications import Mode
from infra.models import Branch, Inbox, Operator, StaffNotificationRule
from services import staff_notifications
from services.errors import Forbidden, Invalid
from services.staff_notifications import RuleInput
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import Form, read_form
from web.i18n import N_
from web.settings.nav import Id, done, render_settings
from web.templating import PageContext
from web.workflows import starter

router = APIRouter(prefix="/settings/staff-notifications")
HOME = "/settings/staff-notifications"
log = logging.getLogger(__name__)
MODES = {
    Mode.EVERY: N_("Every customer message"),
    Mode.FIRST: N_("The first message of a conversation"),
    Mode.UNASSIGNED: N_("Messages in conversations nobody is assigned to"),
}


async def _page(page: PageContext, db, *, form: Form | None = None, status_code: int = 200) -> Response:
    branches = (await db.execute(select(Branch.id, Branch.name).order_by(Branch.name))).all()
    bots = (
        await db.execute(
            select(Inbox.id, Inbox.name)
            .where(Inbox.channel == ChannelKind.TELEGRAM, Inbox.is_active)
            .order_by(Inbox.name)
        )
    ).all()
    operators = (await db.execute(select(Operator.id, Operator.display_name).order_by(Operator.display_name))).all()
    inbox_names = dict((await db.execute(select(Inbox.id, Inbox.name))).all())
    context = {
        "rules": await staff_notifications.rules(db),
        "branches": branches,
        "bots": bots,
        "operators": operators,
        "names": {"branch": dict(branches), "inbox": inbox_names, "operator": dict(operators)},
        "modes": [(mode.value, page.gettext(words)) for mode, words in MODES.items()],
        "form": form,
    }
    return render_settings(page, "settings/staff_notifications.html", context, status_code=status_code)


@router.get("", name="settings_staff_notifications")
async def list_rules(page: AdminPage, db: SessionDep) -> Response:
    return await _page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def add_rule(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, RuleInput)
    if form.data is not None:
        try:
            rule = await staff_notifications.add_rule(db, form.data, actor_operator_id=page.operator.id)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            try:
                await (await starter(page.request)).start_staff_notifier(rule.id)
            except Exception as exc:  # noqa: BLE001 - the rule is kept; the worker starts it on its start
                log.warning("staff notification rule %s: starting its notifier failed: %s", rule.id, type(exc).__name__)
            return done(page, HOME, page.gettext("Notification rule added."))
    return await _page(page, db, form=form, status_code=422)


@router.post("/{staff_rule_id}/delete", dependencies=[CsrfChecked])
async def delete_rule(page: AdminPage, db: SessionDep, staff_rule_id: Id) -> Response:
    rule = await db.get(StaffNotificationRule, staff_rule_id)
    if rule is None:
        raise Forbidden()  # answered 404
    await staff_notifications.delete_rule(db, rule, actor_operator_id=page.operator.id)
    await db.commit()
    return done(page, HOME, page.gettext("Notification rule deleted."))
