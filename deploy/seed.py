"""First-start data in production: `python -m deploy.seed`, run by docker-compose.yml's `migrate`
service right after `alembic upgrade head` (what `make run` does through setup/launcher.py).

Seeds the default branch, the web-widget inbox and the first admin (setup/seed.py; idempotent,
serialised by an advisory lock). Unlike `make run`, production never generates the admin password
and prints it into container logs: ADMIN_PASSWORD must be set. CREDENTIALS_KEY is checked here too,
so a malformed key stops the deployment before the api and the worker start instead of failing the
first time an inbox token is stored.
"""

from __future__ import annotations

import asyncio
import sys

from cryptography.fernet import Fernet

from infra.db import make_engine, make_sessionmaker
from infra.settings import Settings, get_settings
from setup.seed import seed

MIN_ADMIN_PASSWORD = 12


def problems(settings: Settings) -> list[str]:
    """What keeps this deployment from starting safely; empty when all is well."""
    found = []
    if settings.credentials_key is None:
        found.append("CREDENTIALS_KEY is not set")
    else:
        try:
            Fernet(settings.credentials_key.get_secret_value())
        except ValueError:
            found.append("CREDENTIALS_KEY is not a Fernet key (32 url-safe base64-encoded bytes)")
    password = settings.admin_password.get_secret_value() if settings.admin_password else ""
    if len(password) < MIN_ADMIN_PASSWORD:
        found.append(f"ADMIN_PASSWORD must be set, at least {MIN_ADMIN_PASSWORD} characters")
    return found


async def run(settings: Settings) -> int:
    found = problems(settings)
    if found:
        for problem in found:
            print(f"[seed] {problem}", file=sys.stderr)
        return 2
    engine = make_engine(settings)
    try:
        result = await seed(make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()
    if result.created:
        print(f"[seed] created the default branch, the web-widget inbox and admin {result.admin_email}")
    else:
        print("[seed] already seeded; nothing to do")
    return 0


def main() -> int:
    return asyncio.run(run(get_settings()))


if __name__ == "__main__":
    sys.exit(main())
