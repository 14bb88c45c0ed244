"""Group chats are not served: a customer is answered in their private chat with the bot, and a
message in a group (a bot added to one, a button under a group message) is acknowledged and
dropped by the parser. Each group is logged once per process, not once per message."""

from __future__ import annotations

import logging
from collections import OrderedDict

from domain.contracts import InboundEvent
from domain.enums import ChannelKind

log = logging.getLogger(__name__)

# groups remembered as already logged; the oldest is forgotten (and logged again) past this
REMEMBERED = 10_000
_logged: OrderedDict[tuple[ChannelKind, int, int], None] = OrderedDict()


def not_served(channel: ChannelKind, inbox_id: int, chat_id: int, chat_type: str | None) -> list[InboundEvent]:
    """No events for an update from a group chat; logs the group the first time it is seen."""
    key = (channel, inbox_id, chat_id)
    if key in _logged:
        _logged.move_to_end(key)
        return []
    _logged[key] = None
    if len(_logged) > REMEMBERED:
        _logged.popitem(last=False)
    log.info(
        "inbox %s: %s %s chat %s is not served (only private chats are); its updates are acknowledged and dropped",
        inbox_id,
        channel.value,
        chat_type or "group",
        chat_id,
    )
    return []
