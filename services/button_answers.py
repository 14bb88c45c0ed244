"""Answering a button press, so the customer's spinner stops: once the press is stored, in the
background, never holding up or failing the webhook or the poll that brought it.

Not an activity: the provider wants the answer within seconds and only the spinner depends on
it. A workflow per press would spend Temporal's budget (DESIGN.md) on something nothing waits
for, and an answer that is lost (the process stops first, the provider is away) costs a spinner
the messenger stops by itself a few seconds later. Best effort, like the typing indicator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from channels.base import ChannelAdapter, Sending
from domain.contracts import DeliveryError, InboundEvent

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0


class ButtonAnswers:
    """One per process (the api's app.state, the worker's channel activities)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()

    def answer(self, adapter: ChannelAdapter, credentials: Mapping[str, str], event: InboundEvent) -> None:
        """Answer `event`'s button press soon; returns at once."""
        if not event.callback_id or not isinstance(adapter, Sending):
            return
        task = asyncio.create_task(self._answer(adapter, credentials, event.inbox_id, event.callback_id))
        self._pending.add(task)  # a task nobody holds may be collected before it runs
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Let the answers under way finish (each is bounded by the timeout): before the HTTP
        client they use is closed."""
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def _answer(self, adapter: Sending, credentials: Mapping[str, str], inbox_id: int, callback_id: str) -> None:
        try:
            await asyncio.wait_for(adapter.answer_callback(credentials, callback_id), self._timeout)
        except DeliveryError as exc:
            # the reason is the provider's description: no token in it
            log.info("inbox %s: a button press was not answered: %s", inbox_id, exc.reason)
        except TimeoutError:
            log.info("inbox %s: the provider did not take a button answer within %s s", inbox_id, self._timeout)
        except Exception as exc:  # noqa: BLE001 - best effort: the press itself is stored
            log.warning("inbox %s: answering a button press failed (%s)", inbox_id, type(exc).__name__)
