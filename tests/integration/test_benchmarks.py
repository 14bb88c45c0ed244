"""The benchmarks still run, on a tiny load, and their own correctness checks hold (nothing lost,
nothing twice, order kept). Their figures are not asserted: speed is what the full runs print."""

import os
import re
import subprocess
import sys

from infra.settings import ROOT


def _run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "CREDENTIALS_KEY")}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_inbound_benchmark_stores_announces_and_starts_everything():
    out = _run("bench.inbound", "--events", "300", "--rate", "100", "--contacts", "30", "--warmup", "0.5")
    assert re.search(r"messages stored\s+300 \(expected 300\); conversations 30;", out), out
    assert "300/300 seen" in out, out
    assert "30 conversation workflows started (expected 30)" in out, out
    assert re.search(r"outbox lag to Temporal\s+p50\s+[\d.]+ ms", out), out


def test_delivery_benchmark_sends_each_reply_once_in_order():
    out = _run("bench.delivery", "--messages", "60", "--conversations", "20")
    runs = re.findall(r"sent / failed\s+(\d+) / (\d+)", out)
    assert runs and all(sent == "60" and failed == "0" for sent, failed in runs), out
    assert re.findall(r"duplicates\s+(\d+)", out) == ["0"] * len(runs), out
    assert re.findall(r"order violations\s+(\d+)", out) == ["0"] * len(runs), out


def test_realtime_benchmark_delivers_every_event_once_in_order():
    out = _run("bench.realtime", "--subscribers", "200", "--rate", "20", "--seconds", "3", "--branches", "4")
    assert "connected                200/200" in out, out
    assert re.search(r"deliveries\s+expected 3000, received 3000, lost 0, duplicated 0, out of order 0", out), out
    assert re.search(r"NOTIFY -> one asyncio listener at 20/s\s+p50 [\d.]+ ms", out), out


def test_webhooks_benchmark_delivers_every_event_once_in_order():
    out = _run("bench.webhooks", "--events", "200", "--rate", "100", "--contacts", "20")
    queued = re.search(r"events queued\s+(\d+) \(delivered (\d+)\)", out)
    assert queued and queued.group(1) == queued.group(2), out
    assert re.search(rf"delivered\s+{queued.group(1)} distinct, 0 twice, 0 conversations out of order", out), out
    assert re.search(r"lag commit -> receiver\s+p50\s+[\d.]+ ms", out), out


def test_api_benchmark_answers_every_request_and_creates_each_reply_once():
    out = _run("bench.api", "--quick")
    phases = re.findall(r"p99\s+[\d.]+ ms  errors (\d+)", out)
    assert phases == ["0"] * 4, out
    assert re.search(r"replies created\s+(\d+) \(expected \1\); duplicates 0", out), out
    assert "raw: FastAPI POST + one INSERT" in out, out


def test_widget_benchmark_delivers_every_reply_once_and_stores_each_message_once():
    out = _run("bench.widget", "--visitors", "40", "--rate", "10", "--seconds", "3")
    assert "streams open             40/40" in out, out
    assert re.search(r"replies\s+lost 0, duplicated 0; visitor messages stored \d+, twice 0", out), out
    assert re.search(r"reply -> visitor stream\s+p50\s+[\d.]+ ms", out), out
    assert re.search(r"NOTIFY -> one asyncio listener at 10/s\s+p50 [\d.]+ ms", out), out


def test_cabinet_benchmark_serves_every_page_it_measures():
    out = _run("bench.cabinet", "--quick")
    assert re.search(r"seeded 2,000 conversations and [\d,]+ messages with COPY", out), out
    measured = re.findall(r"^  (.+?)\s+(\d+)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms", out, re.M)
    assert len(measured) == 13 and all(n == "20" for _, n in measured), out
    assert "thread of 5,000 messages" in out, out


def test_inbox_sorts_benchmark_explains_every_sort():
    out = _run("bench.inbox_sorts", "--quick")
    pages = re.findall(r"^=== sort=(\w+) \| (.+?) \| (first page|page 21) \| Execution Time", out, re.M)
    assert {sort for sort, _, _ in pages} == {"activity", "waiting", "created", "priority"}, out
    assert all(("All, any status", "page 21") in {(c, p) for s, c, p in pages if s == sort} for sort, _, _ in pages)
    assert "=== tab counts" in out, out
