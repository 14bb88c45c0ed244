"""Admin commands until the cabinet has its settings pages. Run beside `make run`:

    .venv/bin/python -m setup.admin add-inbox --channel telegram --name "Support bot" --token 123:ABC
    .venv/bin/python -m setup.admin add-inbox --channel api --name "Shop app" --branch 1
    .venv/bin/python -m setup.admin add-operator --email ann@example.com --name Ann --role operator
    .venv/bin/python -m setup.admin add-api-token --name CRM --branch 1 --write
    .venv/bin/python -m setup.admin revoke-api-token 3

Settings come from the environment and `.env` as for `make run` (provider API bases, DATA_DIR,
TEMPORAL_PORT, ...). What `make run` sets up itself when it is unset (DATABASE_URL,
TEMPORAL_ADDRESS, CREDENTIALS_KEY) the command takes from the same places: the embedded
PostgreSQL and key file under DATA_DIR and the dev server on TEMPORAL_PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

import httpx

from channels.base import Polling, Webhook
from channels.registry import build_adapters, supporting
from domain.enums import ChannelKind, OperatorRole
from infra.db import make_engine, make_sessionmaker
from infra.models import Branch, Operator
from infra.security import CredentialBox, hash_password
from infra.settings import Settings, get_settings
from infra.temporal import WorkflowStarter, connect_temporal
from services import api_channel
from services.api_tokens import create_token, revoke_token
from services.errors import Forbidden, Invalid
from services.inboxes import connect_inbox, create_inbox
from setup.devstack import EmbeddedPostgres
from setup.launcher import ensure_credentials_key


def _beside_make_run(settings: Settings) -> Settings:
    """The settings `make run` hands its worker and api: what it would set up itself comes from
    its embedded PostgreSQL, its dev server's port and its key file."""
    if not settings.database_url:
        postgres = EmbeddedPostgres(settings.data_dir / "postgres")
        if not postgres.running():
            raise SystemExit(f"no PostgreSQL under {settings.data_dir}: start `make run` first (or set DATABASE_URL)")
        os.environ["DATABASE_URL"] = postgres.start()
    if not settings.temporal_address:
        os.environ["TEMPORAL_ADDRESS"] = f"127.0.0.1:{settings.temporal_port}"
    ensure_credentials_key(settings)
    get_settings.cache_clear()
    return get_settings()


async def add_api_inbox(settings: Settings, args: argparse.Namespace) -> None:
    """An API-channel inbox: nothing to connect; the integrator posts to it with an API token."""
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            inbox = await api_channel.create_inbox(db, args.name, default_branch_id=args.branch, operator_id=None)
            inbox_id = inbox.id
    except Invalid as refusal:
        raise SystemExit(refusal.message % refusal.params) from None
    finally:
        await engine.dispose()
    print(f"inbox {inbox_id} (api): post customers' messages to /api/v1/inboxes/{inbox_id}/messages")


async def add_inbox(settings: Settings, args: argparse.Namespace) -> None:
    if args.channel == ChannelKind.API:
        return await add_api_inbox(settings, args)
    if settings.credentials_key is None:
        raise SystemExit("CREDENTIALS_KEY is not set")
    box = CredentialBox(settings.credentials_key.get_secret_value())
    try:  # before anything is written: the inbox is connected whole or not at all
        client = await connect_temporal(settings)
    except (RuntimeError, OSError) as exc:
        raise SystemExit(
            f"Temporal is not reachable at {settings.temporal_address} ({exc}): is `make run` running?"
        ) from None
    engine = make_engine(settings)
    factory = make_sessionmaker(engine)
    token = args.token or getpass.getpass("Bot token: ")
    async with factory() as db, db.begin():
        inbox = await create_inbox(db, box, name=args.name, channel=args.channel, token=token)
        inbox_id = inbox.id
    starter = WorkflowStarter(client, settings.temporal_task_queue)
    async with httpx.AsyncClient(timeout=30) as http:
        connection = await connect_inbox(
            factory, build_adapters(http, settings), box, starter, inbox_id, settings.public_url
        )
    await engine.dispose()
    print(
        f"inbox {inbox_id} ({args.channel}) connected by {connection.mode}"
        + (f" at {connection.webhook_url}" if connection.webhook_url else "")
    )


async def add_operator(settings: Settings, args: argparse.Namespace) -> None:
    password = args.password or getpass.getpass("Password: ")
    if len(password) < 8:
        raise SystemExit("the password needs at least 8 characters")
    engine = make_engine(settings)
    async with make_sessionmaker(engine)() as db, db.begin():
        from sqlalchemy import select

        branch_id = args.branch or await db.scalar(select(Branch.id).where(Branch.is_default))
        operator = Operator(
            email=args.email,
            display_name=args.name,
            password_hash=hash_password(password),
            role=OperatorRole(args.role),
            branch_id=branch_id,
        )
        db.add(operator)
        await db.flush()
        print(f"operator {operator.id} <{args.email}> ({args.role}) in branch {branch_id}")
    await engine.dispose()


async def add_api_token(settings: Settings, args: argparse.Namespace) -> None:
    """Prints the token once (on stdout alone, for scripts); only its digest is stored."""
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            issued = await create_token(db, None, name=args.name, branch_ids=args.branch or None, can_write=args.write)
    except Invalid as exc:
        raise SystemExit(exc.message % exc.params if exc.params else exc.message) from None
    finally:
        await engine.dispose()
    scope = "all branches" if issued.token.branch_ids is None else f"branches {issued.token.branch_ids}"
    rights = "read-write" if issued.token.can_write else "read-only"
    print(f"api token {issued.token.id} ({args.name}, {scope}, {rights}); shown once:", file=sys.stderr)
    print(issued.secret)


async def revoke_api_token(settings: Settings, args: argparse.Namespace) -> None:
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            token = await revoke_token(db, None, args.token_id)
    except Forbidden:
        raise SystemExit(f"there is no api token {args.token_id}") from None
    finally:
        await engine.dispose()
    print(f"api token {token.id} ({token.name}) revoked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    inbox = commands.add_parser("add-inbox", help="connect a bot (Telegram, MAX, ...) or add an API-channel inbox")
    channels = [kind.value for kind in supporting(Webhook, Polling)] + [ChannelKind.API.value]
    inbox.add_argument("--channel", required=True, choices=channels)
    inbox.add_argument("--name", required=True)
    inbox.add_argument("--token", help="a bot's token; asked for when omitted (keeps it out of shell history)")
    inbox.add_argument("--branch", type=int, help="api: the branch its conversations go to by default")
    operator = commands.add_parser("add-operator", help="create a cabinet account")
    operator.add_argument("--email", required=True)
    operator.add_argument("--name", required=True)
    operator.add_argument("--role", default="operator", choices=[r.value for r in OperatorRole])
    operator.add_argument("--branch", type=int)
    operator.add_argument("--password", help="asked for when omitted")
    token = commands.add_parser("add-api-token", help="create a REST API token for an integration")
    token.add_argument("--name", required=True)
    token.add_argument("--branch", type=int, action="append", help="a branch it sees (repeat); all when omitted")
    token.add_argument("--write", action="store_true", help="read-write (read-only when omitted)")
    revoke = commands.add_parser("revoke-api-token", help="revoke a REST API token at once")
    revoke.add_argument("token_id", type=int)
    args = parser.parse_args()
    settings = _beside_make_run(get_settings())
    handler = {
        "add-inbox": add_inbox,
        "add-operator": add_operator,
        "add-api-token": add_api_token,
        "revoke-api-token": revoke_api_token,
    }[args.command]
    asyncio.run(handler(settings, args))
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)


if __name__ == "__main__":
    main()
