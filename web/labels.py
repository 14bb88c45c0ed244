"""How the cabinet words the closed vocabularies of `domain.enums` (msgids; templates translate
them with `_()`), so every page names a status, channel or role the same way."""

from __future__ import annotations

from domain.enums import (
    ChannelKind,
    ConversationStatus,
    DeliveryStatus,
    Locale,
    OperatorRole,
    OperatorStatus,
    Priority,
    Theme,
)
from web.i18n import N_

OPERATOR_STATUS = {
    OperatorStatus.ONLINE: N_("Online"),
    OperatorStatus.AWAY: N_("Away"),
    OperatorStatus.BUSY: N_("Busy"),
    OperatorStatus.OFFLINE: N_("Offline"),
}
CONVERSATION_STATUS = {
    ConversationStatus.OPEN: N_("Open"),
    ConversationStatus.PENDING: N_("Pending"),
    ConversationStatus.RESOLVED: N_("Resolved"),
    ConversationStatus.CLOSED: N_("Closed"),
}
CHANNEL = {
    ChannelKind.TELEGRAM: N_("Telegram"),
    ChannelKind.MAX: N_("MAX"),
    ChannelKind.WIDGET: N_("Widget"),
    ChannelKind.WHATSAPP: N_("WhatsApp"),
    ChannelKind.VK: N_("VK"),
    ChannelKind.EMAIL: N_("E-mail"),
    ChannelKind.API: N_("API"),
}
ROLE = {
    OperatorRole.OPERATOR: N_("Operator"),
    OperatorRole.SUPERVISOR: N_("Supervisor"),
    OperatorRole.ADMIN: N_("Administrator"),
}
THEME = {Theme.AUTO: N_("As on the device"), Theme.LIGHT: N_("Light"), Theme.DARK: N_("Dark")}
# each language names itself, in its own words
LANGUAGE = {Locale.RU: "Русский", Locale.EN: "English"}
# the list's channel icon: a short mark beside the channel's name (read by screen readers)
CHANNEL_SHORT = {
    ChannelKind.TELEGRAM: "TG",
    ChannelKind.MAX: "MAX",
    ChannelKind.WIDGET: "WEB",
    ChannelKind.WHATSAPP: "WA",
    ChannelKind.VK: "VK",
    ChannelKind.EMAIL: "@",
    ChannelKind.API: "API",
}
PRIORITY = {
    Priority.NONE: N_("No priority"),
    Priority.LOW: N_("Low"),
    Priority.MEDIUM: N_("Medium"),
    Priority.HIGH: N_("High"),
    Priority.URGENT: N_("Urgent"),
}
DELIVERY_STATUS = {
    DeliveryStatus.RECEIVED: N_("Received"),
    DeliveryStatus.QUEUED: N_("Queued"),
    DeliveryStatus.SENDING: N_("Sending"),
    DeliveryStatus.SENT: N_("Sent"),
    DeliveryStatus.DELIVERED: N_("Delivered"),
    DeliveryStatus.READ: N_("Read"),
    DeliveryStatus.FAILED: N_("Failed"),
}
# The composer's emoji picker: the ones support replies use, named for screen readers
EMOJI = (
    ("😀", N_("Grinning face")),
    ("😊", N_("Smiling face")),
    ("🙂", N_("Slightly smiling face")),
    ("😉", N_("Winking face")),
    ("😂", N_("Tears of joy")),
    ("😍", N_("Heart eyes")),
    ("🤔", N_("Thinking face")),
    ("😅", N_("Nervous smile")),
    ("😔", N_("Pensive face")),
    ("😢", N_("Crying face")),
    ("😎", N_("Sunglasses")),
    ("🙏", N_("Folded hands")),
    ("👍", N_("Thumbs up")),
    ("👎", N_("Thumbs down")),
    ("👌", N_("OK hand")),
    ("👋", N_("Waving hand")),
    ("👏", N_("Clapping hands")),
    ("💪", N_("Flexed biceps")),
    ("🤝", N_("Handshake")),
    ("❤️", N_("Red heart")),
    ("🔥", N_("Fire")),
    ("⭐", N_("Star")),
    ("🎉", N_("Party popper")),
    ("✅", N_("Check mark")),
    ("❌", N_("Cross mark")),
    ("⚠️", N_("Warning")),
    ("❗", N_("Exclamation mark")),
    ("❓", N_("Question mark")),
    ("📦", N_("Package")),
    ("🚚", N_("Delivery truck")),
    ("📞", N_("Telephone")),
    ("💬", N_("Speech balloon")),
)
