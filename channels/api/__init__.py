"""The API channel: an integrator's own system as a channel (its customers, its ids)."""

from channels.api.adapter import ApiChannelAdapter

__all__ = ["ApiChannelAdapter"]
