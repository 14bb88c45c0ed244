"""The Temporal dev server `make run` and the suite start: ports it picks itself, and a start-up
failure that says why."""

import socket

import pytest

from setup.devstack import TemporalDevServer, free_port


def _occupy(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_a_port_it_picked_and_lost_meanwhile_is_picked_again():
    server = TemporalDevServer(None, port=free_port(), ui_port=None)
    lost = server.http_port
    with _occupy(lost):  # another program took it between picking and binding
        try:
            assert server.start(timeout=60) == server.address
            assert server.http_port != lost
        finally:
            server.stop()


def test_a_server_that_cannot_start_says_why():
    taken = free_port()
    server = TemporalDevServer(None, port=free_port(), ui_port=None, http_port=taken)
    with _occupy(taken), pytest.raises(RuntimeError) as failed:
        server.start(timeout=60)
    # the server's own words, not only "exited with 1"
    assert f"{taken}: bind: address already in use" in str(failed.value)
    assert server.proc is not None and server.proc.poll() is not None
