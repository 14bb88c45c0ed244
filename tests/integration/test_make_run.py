"""`make run`'s launcher, end to end: embedded servers, migrate, seed, api + worker, clean stop,
and data kept across a restart."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.settings import ROOT
from setup.devstack import free_port


class Launch:
    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "CREDENTIALS_KEY")}
        env.update({k: str(v) for k, v in ports.items()})
        env.update(DATA_DIR=str(data_dir), ADMIN_PASSWORD="first-password", PYTHONUNBUFFERED="1")
        self.log = data_dir.parent / f"launcher-{time.monotonic_ns()}.log"
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "setup.launcher"], cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := re.search(pattern, self.output()):
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in launcher output:\n{self.output()}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(60)
        self._out.close()
        return code


def _login(base: str, password: str) -> int:
    with httpx.Client(base_url=base, headers={"accept": "text/html"}) as http:
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text).group(1)
        resp = http.post("/login", data={"email": "admin@localhost", "password": password, "csrf_token": token})
        return resp.status_code


@pytest.mark.slow
def test_make_run_starts_serves_stops_and_keeps_data(tmp_path):
    ports = {"API_PORT": free_port(), "TEMPORAL_PORT": free_port(), "TEMPORAL_UI_PORT": free_port()}
    base = f"http://127.0.0.1:{ports['API_PORT']}"
    data = tmp_path / "data"

    first = Launch(data, ports)
    try:
        cold = float(first.wait_for(r"ready in ([\d.]+) s", 120).group(1))
        assert "created admin admin@localhost" in first.output()
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert "Вход в кабинет" in httpx.get(f"{base}/login").text  # Russian by default
        assert httpx.get(f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}/").status_code == 200
        assert _login(base, "first-password") == 303
    finally:
        assert first.interrupt() == 0
    assert "stopped" in first.output()
    assert not (data / "postgres" / "pg" / "postmaster.pid").exists(), "PostgreSQL still running"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz")

    second = Launch(data, ports)
    try:
        warm = float(second.wait_for(r"ready in ([\d.]+) s", 120).group(1))
        assert "created admin" not in second.output()  # seeded once, kept
        assert _login(base, "first-password") == 303
    finally:
        assert second.interrupt() == 0
    print(f"\nmake run: cold start {cold:.1f} s, warm start {warm:.1f} s")
