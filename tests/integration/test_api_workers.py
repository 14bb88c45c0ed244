"""The api as several uvicorn processes (API_WORKERS): each process listens to PostgreSQL for the
realtime events itself, so a subscriber gets every event whichever process holds its stream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from domain.enums import OperatorRole
from infra.settings import ROOT
from setup.devstack import free_port
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.integration.realtime_support import commit, open_stream, staff, status_event

WORKERS = 2
EVENTS = 20


@pytest.fixture
def two_process_api(app_settings, tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=app_settings.database_url,
        CREDENTIALS_KEY=TEST_CREDENTIALS_KEY,
        TEMPORAL_ADDRESS=app_settings.temporal_address,
        LOG_LEVEL="WARNING",
    )
    log = open(tmp_path / "api.log", "w")
    command = [sys.executable, "-m", "uvicorn", "api:app", "--port", str(port), "--workers", str(WORKERS)]
    parent = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(_children(parent.pid)) < WORKERS or not _healthy(base):
            assert parent.poll() is None and time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.2)
        yield base, port, _children(parent.pid)
    finally:
        parent.terminate()
        parent.wait(20)
        log.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _children(pid: int) -> list[int]:
    """uvicorn's worker processes (spawned by multiprocessing; its resource tracker aside)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if parent == pid and b"multiprocessing.spawn" in command:
            found.append(int(proc.name))
    return found


def _streams_held(pids: list[int], port: int) -> dict[int, int]:
    """Established connections to `port` each process holds (from /proc: socket inodes)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                established.add(f"socket:[{fields[9]}]")
    held = {}
    for pid in pids:
        held[pid] = sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd) in established)
    return held


async def test_every_subscriber_gets_every_event_whichever_process_serves_it(two_process_api, clean_db):
    base, port, pids = two_process_api
    _, cookie = await staff(clean_db, OperatorRole.SUPERVISOR)
    async with AsyncExitStack() as stack:
        streams = []
        # the kernel hands each connection to whichever process accepts first: open streams
        # until both processes hold some
        while len(streams) < 16 and min(_streams_held(pids, port).values()) == 0:
            streams.append(await stack.enter_async_context(open_stream(base, cookie)))
        held = _streams_held(pids, port)
        assert min(held.values()) >= 1, held
        events = [status_event(1, None, None, message_id=n) for n in range(1, EVENTS + 1)]
        for event in events:
            await commit(clean_db, event)
        for stream in streams:
            got = await stream.until(lambda frame: frame.data == events[-1].payload())
            assert [frame.data for frame in got] == [event.payload() for event in events], held
