"""Outgoing e-mail through the SMTP server in the settings (invitations, password resets).

There is no mailer without SMTP_HOST: callers then show what they would have sent (a link to
copy) instead of pretending to send it. smtplib blocks, so a message is sent from a thread.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from infra.settings import Settings

TIMEOUT_SECONDS = 20


class MailError(Exception):
    """The SMTP server could not be reached or refused the message."""


class Mailer:
    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ValueError("SMTP_HOST is not set")
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        return cls(settings) if settings.smtp_host else None

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from None

    def _send(self, message: EmailMessage) -> None:
        s = self._settings
        assert s.smtp_host is not None
        if s.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if s.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username and s.smtp_password is not None:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)
