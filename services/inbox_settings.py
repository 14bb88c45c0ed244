"""An inbox as admins run it: checking a bot token with the provider before anything is kept,
the per-inbox settings, replacing the token, rotating the webhook secret without losing updates,
a test message, switching the inbox off and on. Connecting is services/inboxes.py.

`inboxes.settings` keys (the workflow reads them fresh per decision, the widget at each visit):
escalation_minutes, offline_text, auto_reply, rating_mode (domain.conversation.InboxPolicy);
attachment_max_bytes and attachment_max_count (what the widget and the composer accept);
allowed_domains (the sites the widget may run on); features.sse (realtime for the widget, else
it polls); identity_required (the widget serves only users its site signed:
services/widget_identity.py); prechat (its form before the first message: name, email, phone, each
off, optional or required); widget_texts (its words per language: {"ru": {"title": ...}}) and
expected_reply_minutes (on its offline banner). Tokens and secrets live sealed in `credentials_encrypted` and are
never shown back, logged or audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import BotProfile, ChannelAdapter, Identity, Polling, Sending, Webhook
from domain.contracts import DeliveryError, OutboundMessage, PermanentError, RowId
from domain.enums import ChannelKind, MessageFormat, RatingMode
from domain.wording import N_, invalid
from infra.models import Branch, Inbox, Operator
from infra.security import CredentialBox
from infra.temporal import WorkflowStarter
from services import audit
from services.errors import Forbidden, Invalid
from services.inboxes import new_webhook_secret
from services.operators import require_admin

# how long the previous webhook secret is still accepted after a rotation: the provider's
# in-flight deliveries and its retries of them (Telegram retries for a while, MAX for up to 8 h;
# both switch at once once told)
SECRET_GRACE = timedelta(minutes=30)
# a checked token waits this long in the page for the admin to confirm the bot
CHECKED_TOKEN_TTL = timedelta(minutes=15)
TOKEN_MAX = 300
ATTACHMENT_MB_MAX = 50
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)(\*\.)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def bot_channels(adapters: Mapping[ChannelKind, ChannelAdapter]) -> list[ChannelKind]:
    """The channels an admin can connect a bot of: a token the provider can check, and a way in."""
    return [k for k, a in adapters.items() if isinstance(a, Identity) and isinstance(a, Webhook | Polling)]


def _one_word(value: str) -> str:
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise invalid(N_("Paste the token alone, without spaces."))
    return value


class ConnectInput(BaseModel):
    """A bot to connect: its channel, a name for the inbox and the token from the provider."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    channel: ChannelKind
    name: str = Field(min_length=1, max_length=200)
    token: str = Field(min_length=1, max_length=TOKEN_MAX)

    _token = field_validator("token")(_one_word)


class TokenInput(BaseModel):
    """A replacement token for an inbox's bot."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    token: str = Field(min_length=1, max_length=TOKEN_MAX)

    _token = field_validator("token")(_one_word)


PrechatField = Literal["off", "optional", "required"]
PRECHAT_FIELDS = ("name", "email", "phone")
# the website chat's own words an inbox may replace, per language (the widget's TEXTS keys in
# web/static/widget/frame.js): the header's title and line under it, the composer's placeholder,
# the offline banner; each field is `text_<key>_<language>`, empty for the widget's default
WIDGET_TEXTS = {"title": 60, "hint": 120, "placeholder": 80, "offline": 500}
WIDGET_LANGUAGES = ("en", "ru")
REPLY_MINUTES_MAX = 7 * 24 * 60


def _widget_text(value: str) -> str:
    value = value.replace("\r\n", "\n")  # a textarea's line breaks
    if any(not ch.isprintable() and ch != "\n" for ch in value):
        raise invalid(N_("Use plain text: no tabs or control characters."))
    return value


def _one_line(value: str) -> str:
    if "\n" in value:
        raise invalid(N_("Keep this text on one line."))
    return _widget_text(value)


class InboxSettingsInput(BaseModel):
    """An inbox's own settings as a form or the API sends them."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    default_branch_id: RowId | None = None
    escalation_minutes: float = Field(default=4, ge=0.5, le=24 * 60)
    offline_text: str = Field(default="", max_length=4000)
    auto_reply: str = Field(default="", max_length=4000)
    rating_mode: RatingMode = RatingMode.NONE
    attachment_max_mb: int = Field(default=20, ge=1, le=ATTACHMENT_MB_MAX)
    attachment_max_count: int = Field(default=10, ge=1, le=20)
    allowed_domains: list[str] = Field(default_factory=list, max_length=50)
    sse: bool = True
    identity_required: bool = False  # the website chat serves only users its site signed
    # the website chat's form before a visitor's first message: each field off, optional or required
    prechat_name: PrechatField = "off"
    prechat_email: PrechatField = "off"
    prechat_phone: PrechatField = "off"
    # shown on the website chat's offline banner ("Expected reply time: 2 hours"); None: not shown
    expected_reply_minutes: int | None = Field(default=None, ge=1, le=REPLY_MINUTES_MAX)
    text_title_en: str = Field(default="", max_length=WIDGET_TEXTS["title"])
    text_title_ru: str = Field(default="", max_length=WIDGET_TEXTS["title"])
    text_hint_en: str = Field(default="", max_length=WIDGET_TEXTS["hint"])
    text_hint_ru: str = Field(default="", max_length=WIDGET_TEXTS["hint"])
    text_placeholder_en: str = Field(default="", max_length=WIDGET_TEXTS["placeholder"])
    text_placeholder_ru: str = Field(default="", max_length=WIDGET_TEXTS["placeholder"])
    text_offline_en: str = Field(default="", max_length=WIDGET_TEXTS["offline"])
    text_offline_ru: str = Field(default="", max_length=WIDGET_TEXTS["offline"])

    _line_texts = field_validator(
        "text_title_en", "text_title_ru", "text_hint_en", "text_hint_ru", "text_placeholder_en", "text_placeholder_ru"
    )(_one_line)
    _banner_texts = field_validator("text_offline_en", "text_offline_ru")(_widget_text)

    @field_validator("allowed_domains", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        # a textarea: one site a line (commas and spaces work too)
        if isinstance(value, str):
            return [part for part in re.split(r"[\s,]+", value) if part]
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return [part for part in re.split(r"[\s,]+", value[0]) if part]
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _hostnames(cls, value: list[str]) -> list[str]:
        cleaned = []
        for item in value:
            host = re.sub(r"^https?://", "", item.strip().lower()).split("/", 1)[0].split(":", 1)[0]
            if not _HOSTNAME.fullmatch(host):
                raise invalid(N_("%(value)s is not a site name such as shop.example.com."), value=item[:100])
            cleaned.append(host)
        return sorted(set(cleaned))

    @classmethod
    def of(cls, inbox: Inbox, default_escalation: float) -> InboxSettingsInput:
        """What the form shows for an inbox (defaults where a key was never set)."""
        s = inbox.settings or {}
        return cls.model_construct(
            name=inbox.name,
            default_branch_id=inbox.default_branch_id,
            escalation_minutes=s.get("escalation_minutes") or default_escalation,
            offline_text=s.get("offline_text") or "",
            auto_reply=s.get("auto_reply") or "",
            rating_mode=RatingMode(s.get("rating_mode") or RatingMode.NONE),
            attachment_max_mb=max(1, int((s.get("attachment_max_bytes") or 20 * 2**20) // 2**20)),
            attachment_max_count=s.get("attachment_max_count") or 10,
            allowed_domains=list(s.get("allowed_domains") or []),
            sse=(s.get("features") or {}).get("sse", True),
            identity_required=bool(s.get("identity_required")),
            **{f"prechat_{k}": v for k, v in (s.get("prechat") or {}).items() if k in PRECHAT_FIELDS},
            expected_reply_minutes=s.get("expected_reply_minutes"),
            **{
                f"text_{key}_{lang}": texts.get(key, "")
                for lang, texts in (s.get("widget_texts") or {}).items()
                if lang in WIDGET_LANGUAGES
                for key in WIDGET_TEXTS
            },
        )

    def widget_texts(self) -> dict[str, dict[str, str]]:
        """The words set for each language, as the widget reads them (`config.texts`)."""
        texts = {
            lang: {key: value for key in WIDGET_TEXTS if (value := getattr(self, f"text_{key}_{lang}"))}
            for lang in WIDGET_LANGUAGES
        }
        return {lang: words for lang, words in texts.items() if words}

    def settings(self) -> dict[str, Any]:
        return {
            "escalation_minutes": self.escalation_minutes,
            "offline_text": self.offline_text,
            "auto_reply": self.auto_reply,
            "rating_mode": self.rating_mode.value,
            "attachment_max_bytes": self.attachment_max_mb * 2**20,
            "attachment_max_count": self.attachment_max_count,
            "allowed_domains": self.allowed_domains,
            "features": {"sse": self.sse},
            "identity_required": self.identity_required,
            "prechat": {field: getattr(self, f"prechat_{field}") for field in PRECHAT_FIELDS},
            "expected_reply_minutes": self.expected_reply_minutes,
            "widget_texts": self.widget_texts(),
        }


class TestMessageInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    chat_id: str = Field(min_length=1, max_length=64, pattern=r"^-?\d+$")
    text: str = Field(min_length=1, max_length=1000)


@dataclass(frozen=True)
class CheckedBot:
    """A token the provider accepted, with its bot, sealed so the page can carry it to the
    confirmation without ever showing it."""

    profile: BotProfile
    sealed: str


async def _profile(adapters: Mapping[ChannelKind, ChannelAdapter], channel: ChannelKind, token: str) -> BotProfile:
    adapter = adapters.get(channel)
    if not isinstance(adapter, Identity):
        raise Invalid(N_("Bots of this channel cannot be connected here."), field="channel")
    try:
        return await adapter.bot_profile({"token": token})
    except PermanentError as exc:
        if exc.provider_code in (401, 404, "verify.token"):
            raise Invalid(
                N_("The provider does not know this token. Copy it again from the bot's settings."), field="token"
            ) from None
        raise Invalid(
            N_("The provider refused the token: %(reason)s"), field="token", reason=exc.reason[:200]
        ) from None
    except DeliveryError as exc:
        raise Invalid(
            N_("The provider could not be reached (%(reason)s). Try again in a minute."),
            field="token",
            reason=exc.reason[:200],
        ) from None


def _open_checked(box: CredentialBox, sealed: str) -> dict[str, Any]:
    try:
        payload = box.open(sealed.encode())
        checked_at = datetime.fromisoformat(payload["checked_at"])
    except (ValueError, KeyError, TypeError):
        raise Invalid(N_("The check has expired: paste the token again.")) from None
    if datetime.now(UTC) - checked_at > CHECKED_TOKEN_TTL:
        raise Invalid(N_("The check has expired: paste the token again."))
    return payload


async def check_token(
    adapters: Mapping[ChannelKind, ChannelAdapter], box: CredentialBox, data: ConnectInput
) -> CheckedBot:
    """Ask the provider who the bot is (Invalid when it does not know the token)."""
    if data.channel not in bot_channels(adapters):
        raise Invalid(N_("Bots of this channel cannot be connected here."), field="channel")
    profile = await _profile(adapters, data.channel, data.token)
    payload = {
        "channel": data.channel.value,
        "name": data.name,
        "token": data.token,
        "bot": dict(profile),
        "checked_at": datetime.now(UTC).isoformat(),
    }
    return CheckedBot(profile, box.seal(payload).decode())


async def create_checked(db: AsyncSession, box: CredentialBox, actor: Operator, sealed: str) -> Inbox:
    """The inbox for a bot `check_token` vouched for (flushed; connect it after the commit)."""
    require_admin(actor)
    checked = _open_checked(box, sealed)
    bot = checked["bot"]
    inbox = Inbox(
        name=checked["name"],
        channel=ChannelKind(checked["channel"]),
        settings={},
        credentials_encrypted=box.seal(
            {"token": checked["token"], "webhook_secret": new_webhook_secret(), "bot_id": str(bot.get("id") or "")}
        ),
        bot_name=str(bot.get("name") or "")[:200] or None,
        bot_username=(bot.get("username") or None) and str(bot["username"])[:100],
    )
    db.add(inbox)
    await db.flush()
    audit.record_change(
        db,
        "inbox.created",
        operator_id=actor.id,
        subject={"inbox_id": inbox.id},
        before=None,
        after={"name": inbox.name, "channel": inbox.channel.value, "bot_username": inbox.bot_username},
    )
    return inbox


async def get_inbox(db: AsyncSession, inbox_id: int, *, lock: bool = False) -> Inbox:
    inbox = await db.get(Inbox, inbox_id, with_for_update=lock)
    if inbox is None:
        raise Forbidden()
    return inbox


def _flat(inbox: Inbox) -> dict[str, Any]:
    return {"name": inbox.name, "default_branch_id": inbox.default_branch_id, **(inbox.settings or {})}


async def update_settings(db: AsyncSession, actor: Operator, inbox_id: int, data: InboxSettingsInput) -> Inbox:
    require_admin(actor)
    if data.default_branch_id is not None and await db.get(Branch, data.default_branch_id) is None:
        raise Invalid(N_("That branch does not exist."), field="default_branch_id")
    inbox = await get_inbox(db, inbox_id, lock=True)
    before = _flat(inbox)
    inbox.name, inbox.default_branch_id = data.name, data.default_branch_id
    inbox.settings = {**(inbox.settings or {}), **data.settings()}
    audit.record_change(
        db, "inbox.settings", operator_id=actor.id, subject={"inbox_id": inbox.id}, before=before, after=_flat(inbox)
    )
    return inbox


async def replace_token(
    db: AsyncSession,
    box: CredentialBox,
    adapters: Mapping[ChannelKind, ChannelAdapter],
    actor: Operator,
    inbox_id: int,
    data: TokenInput,
) -> Inbox:
    """A new token for the same bot (the old one was revoked at the provider). A token of another
    bot is refused: its customers could not be answered. Reconnect afterwards."""
    require_admin(actor)
    inbox = await get_inbox(db, inbox_id, lock=True)
    credentials = box.open(inbox.credentials_encrypted)
    profile = await _profile(adapters, inbox.channel, data.token)
    known = credentials.get("bot_id")
    if (known and known != profile["id"]) or (
        inbox.bot_username and profile["username"] and inbox.bot_username.lower() != profile["username"].lower()
    ):
        raise Invalid(
            N_("This token belongs to another bot (%(bot)s). Connect that bot as a new inbox."),
            field="token",
            bot="@" + (profile["username"] or profile["id"]),
        )
    inbox.credentials_encrypted = box.seal({**credentials, "token": data.token, "bot_id": profile["id"]})
    inbox.bot_name, inbox.bot_username = profile["name"][:200], profile["username"]
    audit.record(db, "inbox.token_replaced", operator_id=actor.id, details={"inbox_id": inbox.id})
    return inbox


@dataclass(frozen=True)
class Rotation:
    previous_until: datetime


async def rotate_secret(
    factory: async_sessionmaker[AsyncSession],
    box: CredentialBox,
    adapters: Mapping[ChannelKind, ChannelAdapter],
    actor: Operator,
    inbox_id: int,
    *,
    grace: timedelta = SECRET_GRACE,
) -> Rotation:
    """A new webhook secret, with no update lost on the way: the new one is stored first (both
    are accepted from then on), then the provider is told, and the old one stays accepted for
    `grace` (its deliveries in flight, its retries). A provider that cannot be told keeps the old
    secret in use: the inbox keeps receiving, the error says why. Commits."""
    require_admin(actor)
    now = datetime.now(UTC)
    async with factory() as db, db.begin():
        inbox = await get_inbox(db, inbox_id, lock=True)
        credentials = box.open(inbox.credentials_encrypted)
        previous = credentials.get("webhook_secret")
        rotated = {
            **credentials,
            "webhook_secret": new_webhook_secret(),
            "previous_webhook_secret": previous,
            "previous_webhook_secret_until": (now + grace).isoformat(),
        }
        inbox.credentials_encrypted = box.seal(rotated)
        url, channel = inbox.webhook_url, inbox.channel
        audit.record(
            db,
            "inbox.secret_rotated",
            operator_id=actor.id,
            details={"inbox_id": inbox.id, "previous_accepted_until": (now + grace).isoformat()},
        )
    adapter = adapters.get(channel)
    if url is not None and isinstance(adapter, Webhook):
        try:
            await adapter.register_webhook(rotated, url, rotated["webhook_secret"])
        except DeliveryError as exc:
            async with factory() as db, db.begin():
                await db.execute(
                    update(Inbox)
                    .where(Inbox.id == inbox_id)
                    .values(webhook_error=f"rotating the webhook secret failed: {exc.reason}"[:2000])
                )
            raise Invalid(
                N_("The provider could not be told the new secret: %(reason)s"), reason=exc.reason[:200]
            ) from None
    return Rotation(now + grace)


async def send_test_message(
    db: AsyncSession,
    box: CredentialBox,
    adapters: Mapping[ChannelKind, ChannelAdapter],
    actor: Operator,
    inbox_id: int,
    data: TestMessageInput,
) -> None:
    """A message to a chat the admin names (their own user id), through this inbox's bot, now:
    it proves the token, the bot and the network path, and stays out of every conversation."""
    require_admin(actor)
    inbox = await get_inbox(db, inbox_id)
    adapter = adapters.get(inbox.channel)
    if not isinstance(adapter, Sending) or not isinstance(adapter, Identity):
        raise Invalid(N_("This inbox cannot send a test message."))
    message = OutboundMessage(
        message_id=0,
        conversation_id=0,
        inbox_id=inbox.id,
        channel=inbox.channel,
        provider_chat_id=data.chat_id,
        text=data.text,
        format=MessageFormat.PLAIN,
    )
    try:
        await adapter.send(box.open(inbox.credentials_encrypted), message)
    except DeliveryError as exc:
        raise Invalid(
            N_("The provider did not deliver it: %(reason)s"), field="chat_id", reason=exc.reason[:200]
        ) from None
    audit.record(
        db, "inbox.test_message", operator_id=actor.id, details={"inbox_id": inbox.id, "chat_id": data.chat_id}
    )


async def set_active(db: AsyncSession, actor: Operator, inbox_id: int, active: bool) -> Inbox:
    """Switch an inbox off (its webhook answers 404, its poller stops at the next round) or on
    (then connect it again)."""
    require_admin(actor)
    inbox = await get_inbox(db, inbox_id, lock=True)
    if inbox.is_active != active:
        audit.record_change(
            db,
            "inbox.activated" if active else "inbox.deactivated",
            operator_id=actor.id,
            subject={"inbox_id": inbox.id},
            before={"is_active": inbox.is_active},
            after={"is_active": active},
        )
        inbox.is_active = active
    return inbox


def masked_token(box: CredentialBox, inbox: Inbox) -> str | None:
    """The token as a page may show it: its last four characters."""
    try:
        token = box.open(inbox.credentials_encrypted).get("token")
    except ValueError:
        return None
    return f"••••{token[-4:]}" if token else None


def secret_state(box: CredentialBox, inbox: Inbox) -> datetime | None:
    """Until when the previous webhook secret is still accepted (None: no rotation under way)."""
    try:
        until = box.open(inbox.credentials_encrypted).get("previous_webhook_secret_until")
    except ValueError:
        return None
    moment = datetime.fromisoformat(until) if until else None
    return moment if moment and moment > datetime.now(UTC) else None


@dataclass(frozen=True)
class ConnectionCheck:
    mode: str  # webhook | polling
    working: bool  # subscribed at the provider / the poller runs
    error: str | None
    pending_updates: int | None = None


async def check_connection(
    factory: async_sessionmaker[AsyncSession],
    box: CredentialBox,
    adapters: Mapping[ChannelKind, ChannelAdapter],
    starter: WorkflowStarter,
    inbox_id: int,
) -> ConnectionCheck:
    """Ask now what the webhook check asks every few minutes (Telegram's last_error_message, the
    MAX subscription), or whether the poller runs; the inbox row keeps the answer."""
    async with factory() as db:
        inbox = await get_inbox(db, inbox_id)
    adapter = adapters.get(inbox.channel)
    if inbox.webhook_url is None:
        running = await starter.poller_running(inbox.id)
        return ConnectionCheck("polling", running, inbox.webhook_error)
    if not isinstance(adapter, Webhook):
        return ConnectionCheck("webhook", False, inbox.webhook_error)
    try:
        status = await adapter.webhook_status(box.open(inbox.credentials_encrypted), inbox.webhook_url)
        error = status["last_error_message"] or (None if status["active"] else "not subscribed at the provider")
        check = ConnectionCheck("webhook", status["active"], error, status["pending_update_count"])
    except DeliveryError as exc:
        check = ConnectionCheck("webhook", False, f"webhook check failed: {exc.reason}")
    async with factory() as db, db.begin():
        await db.execute(
            update(Inbox)
            .where(Inbox.id == inbox_id, Inbox.webhook_url == inbox.webhook_url)
            .values(webhook_error=check.error and check.error[:2000], webhook_checked_at=datetime.now(UTC))
        )
    return check
