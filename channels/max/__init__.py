"""MAX Bot API channel."""

from channels.max.adapter import MaxAdapter

__all__ = ["MaxAdapter"]
