"""The widget's gatekeeping in isolation: visitor tokens, the visitor's address behind proxies,
the inbox's allowed sites."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.datastructures import Headers
from starlette.requests import Request

from infra.settings import Settings
from services.widget_sessions import issue, verify
from web.widget.access import client_address, host_allowed, site_of

KEY = b"k" * 32


def test_a_token_names_its_visitor_until_it_expires_and_only_with_our_key():
    token, session = issue(KEY, 7, "v-ann", timedelta(days=30))
    assert verify(KEY, token) == session and session.inbox_id == 7 and session.visitor_id == "v-ann"
    expired, _ = issue(KEY, 7, "v-ann", timedelta(seconds=-1))
    assert verify(KEY, expired) is None
    assert verify(b"x" * 32, token) is None
    payload, signature = token.split(".")
    other_payload = issue(KEY, 8, "v-eve", timedelta(days=1))[0].split(".")[0]
    for forged in (f"{other_payload}.{signature}", f"{payload}.", f"{payload}.{signature}.x", "", "a" * 1000, None):
        assert verify(KEY, forged) is None


def _request(peer: str, headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "client": (peer, 5000), "headers": raw, "method": "GET", "path": "/"})


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "expected"),
    [
        ("", "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # no proxy trusted: the header is ignored
        ("10.0.0.0/8", "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # from an untrusted peer: ignored
        ("10.0.0.0/8", "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.0/8", "10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"),  # a forged first hop
        ("10.0.0.0/8", "10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.0/8", "10.0.0.2", "not-an-ip", "10.0.0.2"),
    ],
)
def test_x_forwarded_for_counts_only_from_trusted_proxies(proxies, peer, forwarded, expected):
    settings = Settings(trusted_proxies=proxies, _env_file=None)
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    assert client_address(_request(peer, headers), settings) == expected


def test_allowed_sites():
    allowed = ["shop.example.com", "*.example.org"]
    assert host_allowed("shop.example.com", allowed)
    assert host_allowed("a.b.example.org", allowed) and host_allowed("example.org", allowed)
    for host in ("example.com", "shop.example.com.evil.net", "evilexample.org", "www.shop.example.com"):
        assert not host_allowed(host, allowed)
    assert host_allowed("anything.test", [])


def test_the_site_of_a_request():
    assert site_of(Headers({"origin": "https://Shop.Example.com"})) == "https://shop.example.com"
    assert site_of(Headers({"referer": "https://shop.example.com/cart?x=1"})) == "https://shop.example.com"
    assert site_of(Headers({"origin": "null"})) is None
    assert site_of(Headers({})) is None
