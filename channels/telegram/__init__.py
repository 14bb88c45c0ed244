"""Telegram Bot API channel."""

from channels.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
