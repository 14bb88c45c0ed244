"""Contracts of DeliveryWorkflow (one per outgoing message, id `delivery-{message_id}`)."""

from __future__ import annotations

from pydantic import BaseModel


class DeliveryInput(BaseModel):
    message_id: int
