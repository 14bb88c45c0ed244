"""All configuration, from the environment (and an optional `.env`). Read once per process."""

from __future__ import annotations

import math
from datetime import timedelta
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.enums import ChannelKind
from domain.webhooks import DEFAULT_RETRY_SCHEDULE

ROOT = Path(__file__).resolve().parent.parent
_UNITS = {"s": 1, "m": 60, "h": 3600}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Unset = `make run` starts the embedded server and exports the URL it gets.
    database_url: str | None = None
    db_pool_size: int = 20
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "switchboard"
    # the Temporal UI's base URL: each conversation page links to its workflow there (unset: no link)
    temporal_ui_url: str | None = None

    # `make run` only: where the api listens and where the embedded Temporal dev server binds
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn processes of the api: pages are CPU-bound Python, so one process uses one core
    api_workers: int = Field(default=1, ge=1, le=64)
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    data_dir: Path = ROOT / ".data"
    # Fernet key (urlsafe base64, 32 bytes) encrypting inbox credentials at rest.
    credentials_key: SecretStr | None = None
    admin_email: str = "admin@localhost"
    admin_password: SecretStr | None = None
    public_url: str = "http://localhost:8000"
    session_days: int = 14
    cookie_secure: bool = False

    telegram_api_base: str = "https://api.telegram.org"
    max_api_base: str = "https://platform-api2.max.ru"

    # Provider send limits (messages/s, held across all workers) over the adapters' defaults:
    # "telegram.per_bot=25,max.per_chat=1" (e.g. for Telegram's paid broadcasts); 0 lifts one.
    rate_overrides: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)

    # Outgoing e-mail (invitations, password resets). Unset: the cabinet shows the link to copy.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Switchboard <noreply@localhost>"

    default_escalation_minutes: float = 4.0
    delivery_give_up_hours: float = 24.0
    attempt_retention_days: int = 90
    # a client that reconnects after a longer gap is told to reload instead of replayed to
    realtime_retention_hours: float = 6.0
    attachment_max_bytes: int = 20 * 1024 * 1024
    resolved_close_days: int = 7
    inactive_resolve_days: int = 3

    # Outgoing webhooks: the retry schedule (the last step repeats until 24 h have passed),
    # how long a receiver may take, how many requests one endpoint has in flight, how long
    # delivered events and the delivery log are kept, a rotated secret's overlap.
    webhook_retry_schedule: Annotated[tuple[timedelta, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_log_retention_days: int = Field(default=90, ge=1)
    webhook_secret_overlap_hours: float = Field(default=24.0, ge=0)

    # Bitrix24 requests per second per portal, held across every worker (the portals' leaky
    # bucket drains about 2/s; 5 on Enterprise)
    bitrix24_rate_per_second: float = Field(default=2.0, gt=0)

    # REST API requests per token: on average per second, and at once
    api_rate_per_second: float = Field(default=100.0, gt=0)
    api_rate_burst: int = Field(default=200, ge=1)
    # failed authentications per client address: one a second on average, this many at once
    api_auth_failure_burst: int = Field(default=30, ge=1)

    # Website widget: the key signing visitor session tokens (unset: derived from CREDENTIALS_KEY),
    # how long a token lives (the widget renews it while the visitor comes back), and the proxies
    # whose X-Forwarded-For names the visitor's address (none: the peer's address is the visitor's)
    widget_secret: SecretStr | None = None
    widget_session_days: float = Field(default=30.0, gt=0)
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()

    log_level: str = Field(default="INFO")
    # "text" (human-readable lines, the default) or "json" (one object per line, for collectors)
    log_format: Literal["text", "json"] = "text"

    # GET /metrics on the api: with a token, only `Authorization: Bearer <token>`; without one,
    # only callers on the api's own machine (loopback). The worker serves its counters on its own
    # port, bound to WORKER_METRICS_HOST (loopback unless set; 0 as the port turns it off).
    metrics_token: SecretStr | None = None
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        steps = []
        for item in filter(None, (part.strip() for part in value.split(","))):
            number, unit = item[:-1], item[-1:]
            if unit not in _UNITS or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
                raise ValueError(f"WEBHOOK_RETRY_SCHEDULE: {item!r} is not a duration such as 30s, 5m, 1h")
            steps.append(timedelta(seconds=float(number) * _UNITS[unit]))
        if not steps:
            raise ValueError("WEBHOOK_RETRY_SCHEDULE needs at least one step")
        return tuple(steps)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return tuple(ip_network(part.strip()) for part in value.split(",") if part.strip())
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc} (addresses or networks, comma-separated)") from None

    @field_validator("rate_overrides", mode="before")
    @classmethod
    def _parse_rate_overrides(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        overrides: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            key, _, number = item.partition("=")
            channel, _, limit = key.strip().partition(".")
            try:
                rate = float(number)
            except ValueError:
                rate = math.nan
            if (
                channel not in {c.value for c in ChannelKind}
                or limit not in ("per_bot", "per_chat")
                or not (math.isfinite(rate) and rate >= 0)
            ):
                raise ValueError(
                    f"RATE_OVERRIDES: {item!r} is not <channel>.per_bot=<n> or <channel>.per_chat=<n> "
                    "with n messages/s, 0 or more"
                )
            overrides[f"{channel}.{limit}"] = rate
        return overrides


@lru_cache
def get_settings() -> Settings:
    return Settings()
