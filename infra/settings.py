"""All configuration, from the environment (and an optional `.env`). Read once per process."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.enums import ChannelKind

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Unset = `make run` starts the embedded server and exports the URL it gets.
    database_url: str | None = None
    db_pool_size: int = 20
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "switchboard"

    # `make run` only: where the api listens and where the embedded Temporal dev server binds
    api_host: str = "127.0.0.1"
    api_port: int = 8000
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

    default_escalation_minutes: float = 4.0
    delivery_give_up_hours: float = 24.0
    attempt_retention_days: int = 90
    # a client that reconnects after a longer gap is told to reload instead of replayed to
    realtime_retention_hours: float = 6.0
    attachment_max_bytes: int = 20 * 1024 * 1024
    resolved_close_days: int = 7
    inactive_resolve_days: int = 3

    # REST API requests per token: on average per second, and at once
    api_rate_per_second: float = Field(default=100.0, gt=0)
    api_rate_burst: int = Field(default=200, ge=1)
    # failed authentications per client address: one a second on average, this many at once
    api_auth_failure_burst: int = Field(default=30, ge=1)

    log_level: str = Field(default="INFO")

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
