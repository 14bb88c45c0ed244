"""A real headless Debian chromium driven by Playwright (never `playwright install`), and the
harness the cabinet's browser tests share:

- `staff`: an operator, a supervisor and an admin of one branch, with known passwords;
- `sign_in(role, ...)`: a new browser context (its own cookies) signed in through the login form,
  with a colour scheme, a viewport (`PHONE` is 390x844) and a browser language; several at once;
- `screenshot(page, variant)`: a PNG under `.pytest-tmp/artifacts/screenshots/<test>-<variant>.png`;
- `assert_accessible(page)` (tests/e2e/axe.py): axe-core finds no serious or critical violation.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import ChannelKind, OperatorRole
from infra.models import Branch, Conversation, Inbox, Operator
from infra.security import hash_password
from infra.settings import ROOT
from services.ingest import ingest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",  # the cabinet's notification chime
]  # fmt: skip
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / ".pytest-tmp" / "artifacts" / "screenshots"
PASSWORD = "staff-password"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"E2E SKIPPED: {CHROMIUM} missing (make test installs it via apt-get as root)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        await instance.close()


@pytest.fixture
async def page(browser) -> AsyncIterator:
    context = await browser.new_context()
    page = await context.new_page()
    yield page
    await context.close()


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    name: str
    password: str = PASSWORD


@dataclass(frozen=True)
class Staff:
    branch_id: int
    members: dict[OperatorRole, Member]

    def __getitem__(self, role: OperatorRole) -> Member:
        return self.members[role]


@pytest.fixture
async def staff(admin, clean_db) -> Staff:
    """The seeded branch with an operator (Анна), a supervisor (Борис) and an admin (Вера)."""
    names = {OperatorRole.OPERATOR: "Анна", OperatorRole.SUPERVISOR: "Борис", OperatorRole.ADMIN: "Вера"}
    members = {}
    async with clean_db() as db, db.begin():
        branch = await db.scalar(select(Branch.id).where(Branch.is_default))
        for role, name in names.items():
            operator = Operator(
                email=f"{role.value}@example.com",
                display_name=name,
                password_hash=hash_password(PASSWORD),
                role=role,
                branch_id=branch,
            )
            db.add(operator)
            await db.flush()
            members[role] = Member(operator.id, operator.email, name)
    return Staff(branch, members)


SignIn = Callable[..., Awaitable]


@pytest.fixture
async def sign_in(browser, live_api, staff) -> AsyncIterator[SignIn]:
    """`await sign_in(role, color_scheme="dark", viewport=PHONE, locale="en-US")` -> a signed-in page."""
    contexts = []

    async def open_page(role: OperatorRole, *, color_scheme="light", viewport=DESKTOP, locale="ru-RU"):
        context = await browser.new_context(color_scheme=color_scheme, viewport=viewport, locale=locale)
        contexts.append(context)
        page = await context.new_page()
        member = staff[role]
        await page.goto(f"{live_api.url}/login")
        await page.fill("input[name=email]", member.email)
        await page.fill("input[name=password]", member.password)
        await page.click("form.login-card button[type=submit]")
        await page.wait_for_url(f"{live_api.url}/")
        return page

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture
def screenshot(request) -> Callable[..., Awaitable[None]]:
    """`await screenshot(page, "dark-phone")` saves the whole page as <test>-<variant>.png."""
    test = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")

    async def save(page, variant: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"{test}-{variant}.png", full_page=True, animations="disabled")

    return save


@pytest.fixture
async def conversations(clean_db, staff) -> list[int]:
    """A few customer messages through the real ingest path (a Telegram inbox), at ages a list
    shows differently: minutes, hours, yesterday, last week; the first assigned to the operator,
    the last to the supervisor (so the operator does not see it)."""
    async with clean_db() as db, db.begin():
        inbox = Inbox(name="Магазин", channel=ChannelKind.TELEGRAM, credentials_encrypted=b"")
        db.add(inbox)
        await db.flush()
        inbox_id = inbox.id
    now = datetime.now(UTC)
    customers = [
        ("Ирина Смирнова", timedelta(minutes=2)),
        ("Пётр Кузнецов", timedelta(hours=3)),
        ("Ольга Иванова", timedelta(days=1, hours=2)),
        ("Сергей Попов", timedelta(days=8)),
    ]
    ids = []
    for name, age in customers:
        chat = str(zlib.crc32(name.encode()))
        event = InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=InboundKind.MESSAGE,
            provider_user_id=chat,
            provider_chat_id=chat,
            provider_message_id=f"{chat}:1",
            provider_time=now - age,
            text="Добрый день!",
            profile=ContactProfile(display_name=name),
        )
        ids.append((await ingest(clean_db, event)).conversation_id)
    async with clean_db() as db, db.begin():
        for (_, age), conversation_id in zip(customers, ids, strict=True):
            values = {"last_activity_at": now - age, "branch_id": staff.branch_id}
            await db.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))
        for conversation_id, role in ((ids[0], OperatorRole.OPERATOR), (ids[-1], OperatorRole.SUPERVISOR)):
            assigned = update(Conversation).where(Conversation.id == conversation_id)
            await db.execute(assigned.values(assignee_id=staff[role].id))
    return ids
