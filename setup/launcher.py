"""`make run`: embedded PostgreSQL + Temporal dev server (unless configured), migrate, seed,
then the worker and the api. Ctrl-C stops everything in order; data stays under .data/.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request

from alembic import command
from alembic.config import Config

from infra.db import make_engine, make_sessionmaker
from infra.security import generate_credentials_key
from infra.settings import ROOT, Settings, get_settings
from setup.devstack import EmbeddedPostgres, TemporalDevServer
from setup.seed import seed


def log(msg: str) -> None:
    print(f"[switchboard] {msg}", flush=True)


def ensure_credentials_key(settings: Settings) -> None:
    if settings.credentials_key is not None:
        return
    key_file = settings.data_dir / "credentials.key"
    if not key_file.exists():
        key_file.write_text(generate_credentials_key())
        key_file.chmod(0o600)
    os.environ["CREDENTIALS_KEY"] = key_file.read_text().strip()


def migrate() -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


async def seed_once(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        result = await seed(make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()
    if result.generated_password:
        log(f"created admin {result.admin_email} with password: {result.generated_password}")
        log("(shown once; set ADMIN_PASSWORD before the first start to choose it)")
    elif result.created:
        log(f"created admin {result.admin_email} with the password from ADMIN_PASSWORD")


def wait_ready(url: str, timeout: float, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[1]} exited with {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    started = time.monotonic()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_credentials_key(settings)

    postgres = temporal = None
    children: list[subprocess.Popen] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not os.environ.get("DATABASE_URL"):
            postgres = EmbeddedPostgres(settings.data_dir / "postgres")
            os.environ["DATABASE_URL"] = postgres.start()
            log("embedded PostgreSQL started")
        if not os.environ.get("TEMPORAL_ADDRESS"):
            temporal = TemporalDevServer(
                settings.data_dir / "temporal.db",
                port=settings.temporal_port,
                ui_port=settings.temporal_ui_port,
                log_file=settings.data_dir / "temporal.log",
            )
            os.environ["TEMPORAL_ADDRESS"] = temporal.start()
            os.environ.setdefault("TEMPORAL_UI_URL", f"http://127.0.0.1:{settings.temporal_ui_port}")
            log("Temporal dev server started")
        get_settings.cache_clear()
        settings = get_settings()

        migrate()
        asyncio.run(seed_once(settings))

        python = sys.executable
        children.append(subprocess.Popen([python, "worker.py"], cwd=ROOT))
        children.append(
            subprocess.Popen(
                [
                    python,
                    "-m",
                    "uvicorn",
                    "api:app",
                    "--host",
                    settings.api_host,
                    "--port",
                    str(settings.api_port),
                    "--workers",
                    str(settings.api_workers),
                    "--no-access-log",
                    # event streams never end on their own: close them this long after Ctrl-C
                    "--timeout-graceful-shutdown",
                    "5",
                ],
                cwd=ROOT,
            )
        )
        base = f"http://{settings.api_host}:{settings.api_port}"
        wait_ready(f"{base}/readyz", 60, children)
        log(f"ready in {time.monotonic() - started:.1f} s")
        log(f"cabinet      {base}/")
        log(f"API docs     {base}/docs")
        if temporal is not None:
            log(f"Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}/")
        log("Ctrl-C stops everything; data is kept in .data/")
        while not stopping:
            for proc in children:
                if proc.poll() is not None:
                    log(f"{proc.args[1]} exited with {proc.returncode}; stopping")
                    stopping = True
            time.sleep(0.5)
        return 0
    except Exception as exc:  # noqa: BLE001 - report, then stop what was started
        log(f"start-up failed: {exc}")
        return 1
    finally:
        log("stopping")
        for proc in reversed(children):
            stop_process(proc)
        if temporal is not None:
            temporal.stop()
        if postgres is not None:
            postgres.stop()
        log("stopped")


if __name__ == "__main__":
    code = main()
    os._exit(code)
