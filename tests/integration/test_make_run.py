"""`make run`'s launcher, end to end: embedded servers, migrate, seed, api + worker, clean stop,
and data kept across a restart."""

import socket
from contextlib import ExitStack

import httpx
import pytest

from setup.devstack import free_port
from tests.integration.launcher_support import Launch, login


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
        assert login(base, "first-password") == 303
    finally:
        assert first.interrupt() == 0
    assert "stopped" in first.output()
    assert not (data / "postgres" / "pg" / "postmaster.pid").exists(), "PostgreSQL still running"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz")

    with ExitStack() as taken:
        # ports beside Temporal's that the launcher once claimed without asking: another
        # program's (an ephemeral client port, say) must not stop make run
        for port in (ports["TEMPORAL_PORT"] + 10, ports["TEMPORAL_PORT"] + 11):
            taken.enter_context(_listening_on(port))
        second = Launch(data, ports)
        try:
            warm = float(second.wait_for(r"ready in ([\d.]+) s", 120).group(1))
            assert "created admin" not in second.output()  # seeded once, kept
            assert login(base, "first-password") == 303
        finally:
            assert second.interrupt() == 0
    print(f"\nmake run: cold start {cold:.1f} s, warm start {warm:.1f} s")


def _listening_on(port: int) -> socket.socket:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        pass  # taken already, which is the point
    else:
        sock.listen()
    return sock
