"""A throwaway stack for benchmarks: embedded PostgreSQL, tuned Temporal dev server, the api
and the worker as real processes, all in a temporary folder, all stopped at the end."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from infra.security import generate_credentials_key
from infra.settings import ROOT
from setup.devstack import EmbeddedPostgres, TemporalDevServer, free_port


class BenchStack:
    def __init__(self, *, api_workers: int = 1, temporal: bool = True) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="sb-bench-", dir=ROOT / ".data" if (ROOT / ".data").exists() else None))
        self.api_workers = api_workers
        self.pg = EmbeddedPostgres(self.tmp / "pg", delete_on_stop=True)
        self.temporal = (
            TemporalDevServer(self.tmp / "temporal.db", port=free_port(), ui_port=None) if temporal else None
        )
        self.procs: list[subprocess.Popen] = []
        self.api_port = free_port()
        self.env: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        url = self.pg.start("bench")
        self.env = dict(os.environ, DATABASE_URL=url, CREDENTIALS_KEY=generate_credentials_key(), LOG_LEVEL="WARNING")
        if self.temporal is not None:
            self.temporal.start()
            self.env["TEMPORAL_ADDRESS"] = self.temporal.address
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start_app(self) -> None:
        log = open(self.tmp / "app.log", "w")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "worker.py"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        self.start_api(ready="/readyz")

    def start_api(self, *, ready: str = "/healthz", preexec_fn=None) -> subprocess.Popen:
        """The api alone (uvicorn); `preexec_fn` runs in the child first (a bench raises ulimit -n)."""
        log = open(self.tmp / "app.log", "a")
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api:app",
                "--port",
                str(self.api_port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--workers",
                str(self.api_workers),
                "--timeout-graceful-shutdown",
                "5",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
        self.procs.append(api)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api_url}{ready}", timeout=2) as resp:
                    if resp.status == 200:
                        return api
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"api did not become ready; see {self.tmp / 'app.log'}")

    def stop(self, *, show_log: bool = False) -> None:
        if show_log and (self.tmp / "app.log").exists():
            print("--- api/worker log (tail) ---")
            print("\n".join((self.tmp / "app.log").read_text().splitlines()[-40:]))
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.temporal is not None:
            self.temporal.stop()
        self.pg.stop()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bounded(concurrency: int, jobs):
    sem = asyncio.Semaphore(concurrency)

    async def run(job):
        async with sem:
            return await job

    return await asyncio.gather(*(run(j) for j in jobs))


async def open_loop(rate: float, n: int, job, began: float) -> None:
    """Start job(i, scheduled) at began + i/rate, whether or not earlier ones have finished
    (open loop). One timer at a time: creating every task up front stalled the generator itself."""
    tasks = []
    for i in range(n):
        scheduled = began + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(job(i, scheduled)))
    await asyncio.gather(*tasks)
