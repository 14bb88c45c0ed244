"""Helpers the channel tests import: recorded payloads and a shared TLS context."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"
# Built once: every httpx client otherwise loads the CA bundle again (~40 ms each).
SSL_CONTEXT = ssl.create_default_context()


def payload(provider: str, name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / provider / f"{name}.json").read_text())
