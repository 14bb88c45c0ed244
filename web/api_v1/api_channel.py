"""The API channel for integrators: post a customer's message into an API-channel inbox (stored
once per `message.id`, like every channel's through ingest) and report that our reply reached
the customer or was read. Replies reach the integrator as `message.created` webhook events."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError

from channels.api.parse import ApiInbound
from domain.contracts import RowId
from domain.enums import DeliveryStatus
from services import api_channel
from services.errors import Invalid
from services.ingest import refused_for_its_data
from web.api_v1.auth import WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.idempotency import OnceDep
from web.api_v1.paging import IdPath
from web.deps import SessionDep

router = APIRouter(prefix="/inboxes/{inbox_id:int}", tags=["api channel"])


class PostedOut(BaseModel):
    conversation_id: int
    message_id: int = Field(description="Our id for the message.")
    duplicate: bool = Field(description="This message id was posted before: nothing new was stored.")


class Receipt(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"message_id": 812, "status": "read"}]})

    message_id: RowId = Field(description="Our id of the reply (`data.message_id` of its `message.created`).")
    status: Literal["delivered", "read"]


class ReceiptOut(BaseModel):
    message_id: int
    delivery_status: DeliveryStatus = Field(description="As it is now: a report never moves a reply back.")


@router.post("/messages", status_code=201, summary="Post a customer's message", responses=WRITE_ERRORS)
async def post_message(
    inbox_id: IdPath, posted: ApiInbound, request: Request, token: WriterDep, db: SessionDep, once: OnceDep
) -> PostedOut:
    """Into an API-channel inbox (Settings -> Inboxes -> Add an API inbox). Your `contact.id`
    is one customer; your `message.id` is stored once: posting it again answers the stored
    message with `duplicate: true`, so a retry is always safe."""
    await api_channel.api_inbox(db, token, inbox_id)
    if (first := await once.replay(posted)) is not None:
        return first
    try:
        stored = await api_channel.post_inbound(
            request.app.state.sessionmaker, inbox_id, posted.model_dump(mode="json", exclude_none=True)
        )
    except DBAPIError as exc:
        if not refused_for_its_data(exc):
            raise
        raise Invalid("The database cannot store this message.") from None
    out = PostedOut(conversation_id=stored.conversation_id, message_id=stored.message_id, duplicate=stored.duplicate)
    response = await once.answer(201, out)
    await db.commit()
    return response


@router.post("/receipts", summary="Report a reply delivered or read", responses=WRITE_ERRORS)
async def report(inbox_id: IdPath, receipt: Receipt, token: WriterDep, db: SessionDep) -> ReceiptOut:
    """Moves the reply's status on (sent -> delivered -> read), announced as
    `message.status_changed`. Reporting the same again, or delivered after read, changes nothing."""
    inbox = await api_channel.api_inbox(db, token, inbox_id)
    message = await api_channel.report_receipt(db, inbox, receipt.message_id, DeliveryStatus(receipt.status))
    out = ReceiptOut(message_id=message.id, delivery_status=message.delivery_status)
    await db.commit()
    return out
