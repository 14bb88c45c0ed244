"""`make run` (the launcher) as a subprocess, for tests that need the stack exactly as a user
starts it: embedded servers, defaults from DATA_DIR, nothing else configured."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.settings import ROOT

# what `make run` configures for itself when unset; a test launch must not inherit the suite's
CONFIGURED_BY_MAKE_RUN = ("DATABASE_URL", "TEMPORAL_ADDRESS", "CREDENTIALS_KEY")


class Launch:
    def __init__(self, data_dir: Path, ports: dict[str, int], **extra: str) -> None:
        self.env = launch_env(data_dir, ports, **extra)
        self.log = data_dir.parent / f"launcher-{time.monotonic_ns()}.log"
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "setup.launcher"], cwd=ROOT, env=self.env, stdout=self._out, stderr=subprocess.STDOUT
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


def login(base: str, password: str) -> int:
    with httpx.Client(base_url=base, headers={"accept": "text/html"}) as http:
        return sign_in(http, password)


def sign_in(http: httpx.Client, password: str) -> int:
    """The admin signs in on `http`'s cookies; the answer's status (303 on success)."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text).group(1)
    resp = http.post("/login", data={"email": "admin@localhost", "password": password, "csrf_token": token})
    return resp.status_code


def launch_env(data_dir: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """The environment of a user's terminal: ours minus what `make run` sets up itself."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURED_BY_MAKE_RUN}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(DATA_DIR=str(data_dir), ADMIN_PASSWORD="first-password", PYTHONUNBUFFERED="1", **extra)
    return env
