"""Closed vocabularies shared by the database, the API, channels and workflows."""

from enum import IntEnum, StrEnum


class ChannelKind(StrEnum):
    TELEGRAM = "telegram"
    MAX = "max"
    WIDGET = "widget"
    WHATSAPP = "whatsapp"
    VK = "vk"
    EMAIL = "email"
    API = "api"  # an integrator's own system, through the REST API and outgoing webhooks


class Interface(StrEnum):
    """How the customer reached us inside a channel (seed 001: channel vs. interface)."""

    BOT = "bot"
    WEBAPP = "webapp"
    WIDGET = "widget"


class OperatorRole(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class ActorKind(StrEnum):
    """Who did what an audit entry records."""

    OPERATOR = "operator"
    INTEGRATION = "integration"  # an integrator's API token
    SYSTEM = "system"  # a workflow, a timer, a provider's report


class OperatorStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    OFFLINE = "offline"


class Locale(StrEnum):
    """Languages the cabinet speaks; each has a catalog under web/locales/. The first is the default."""

    RU = "ru"
    EN = "en"


class Theme(StrEnum):
    """The cabinet's colour scheme; AUTO follows the device (prefers-color-scheme)."""

    AUTO = "auto"
    LIGHT = "light"
    DARK = "dark"


class NotifyMode(StrEnum):
    """Which events sound and show a browser notification for an operator."""

    ALL = "all"  # every new conversation and message they can see
    MINE = "mine"  # conversations assigned to them
    OFF = "off"


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(IntEnum):
    """A conversation's priority (conversations.priority); the API names it in lower case."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    URGENT = 4


class MessageDirection(StrEnum):
    IN = "in"
    OUT = "out"


class SenderKind(StrEnum):
    CONTACT = "contact"
    OPERATOR = "operator"
    SYSTEM = "system"
    INTEGRATION = "integration"  # sent through the REST API with an integrator's token


class MessageKind(StrEnum):
    """What a message is besides its text and files."""

    TEXT = "text"  # written (or sent as files) by whoever sent it
    BUTTON = "button"  # the customer pressed a button: text is its label, button_data what it carries


class PhoneSource(StrEnum):
    """Who gave a contact's phone. The customer's own shared card replaces a phone from an
    earlier card of theirs, never one an operator entered."""

    CUSTOMER = "customer"
    OPERATOR = "operator"


class MessageFormat(StrEnum):
    PLAIN = "plain"
    MARKDOWN = "markdown"  # our Markdown-lite: **bold**, _italic_, `code`, [links](url)


class DeliveryStatus(StrEnum):
    """queued -> sending -> sent -> delivered -> read, or failed."""

    RECEIVED = "received"  # inbound messages: stored, nothing to deliver
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class ErrorClass(StrEnum):
    RETRYABLE = "retryable"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"


class RatingMode(StrEnum):
    NONE = "none"
    STARS = "stars"  # 1-5
    NPS = "nps"  # 0-10
