"""Prometheus metrics: every metric we export is defined here, once (deploy/prometheus/alerts.yml
may name only these; tests/unit/test_alert_rules.py checks it).

Two kinds:
- Counters and histograms of what a process did (requests, sends, deliveries). Each process
  exports its own: the api at `GET /metrics`, the worker on WORKER_METRICS_PORT. Prometheus
  sums them across processes.
- Gauges of what the database holds (queue depths, dead letters, the outbox's age), computed
  by the api at scrape time (`refresh_database_gauges`), so every replica tells the same truth
  and none keeps a copy of it. Alert on max() over the replicas.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# -- the api ----------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total", "HTTP requests answered, by route template and status", ["route", "status"]
)
HTTP_LATENCY = Histogram(
    "switchboard_http_request_duration_seconds",
    "HTTP request duration, by route template",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_VERIFICATION_FAILURES = Counter(
    "switchboard_channel_webhook_verification_failures_total",
    "Provider webhooks refused because their secret did not match",
    ["channel"],
)
SSE_CONNECTIONS = Gauge("switchboard_sse_connections", "Open realtime (SSE) streams of this api process")

# -- both (ingest runs in the api for webhooks and in the worker for long polling) -------------
INBOUND_MESSAGES = Counter(
    "switchboard_inbound_messages_total", "Customer messages stored (duplicates not counted)", ["channel"]
)
SKIPPED_UPDATES = Counter(
    "switchboard_channel_updates_skipped_total",
    "Provider updates acknowledged without being stored: they do not parse, or storing them kept failing",
    ["channel"],
)

# -- the worker -------------------------------------------------------------------------------
DELIVERIES = Counter(
    "switchboard_deliveries_total",
    "Attempts to send an outgoing message, by outcome (sent, retryable, rate_limited, permanent)",
    ["channel", "outcome"],
)
DELIVERY_RETRIES = Counter("switchboard_delivery_retries_total", "Send attempts after the first", ["channel"])
DELIVERY_LATENCY = Histogram(
    "switchboard_delivery_duration_seconds", "Provider call duration of a send", ["channel"], buckets=LATENCY_BUCKETS
)
ESCALATIONS = Counter("switchboard_escalations_total", "Conversations moved on because nobody opened them in time")
WEBHOOK_DELIVERIES = Counter(
    "switchboard_webhook_deliveries_total", "Outgoing webhook requests, by outcome (delivered, failed)", ["outcome"]
)
WEBHOOK_RETRIES = Counter("switchboard_webhook_retries_total", "Outgoing webhook requests that were a retry")
WEBHOOK_LATENCY = Histogram(
    "switchboard_webhook_delivery_duration_seconds", "Outgoing webhook request duration", buckets=LATENCY_BUCKETS
)
WEBHOOK_DEAD_LETTERS = Counter(
    "switchboard_webhook_dead_letters_total", "Outgoing webhook events given up after the retry window"
)
WEBHOOK_ENDPOINTS_PAUSED = Counter(
    "switchboard_webhook_endpoint_pauses_total", "Endpoints paused for failing through the whole retry window"
)
STAFF_NOTIFICATIONS = Counter(
    "switchboard_staff_notifications_total", "Staff notifications in Telegram, by outcome (sent, failed)", ["outcome"]
)
BITRIX24_CALLS = Counter(
    "switchboard_bitrix24_calls_total", "Calls to Bitrix24, by method and outcome", ["method", "outcome"]
)

# -- the database, at scrape time (api) ---------------------------------------------------------
OUTGOING_DEPTH = Gauge("switchboard_outgoing_messages", "Outgoing messages not final yet, by status", ["status"])
DEAD_LETTERS = Gauge("switchboard_dead_letters", "Failed outgoing messages on the dead-letter list")
OUTBOX_DEPTH = Gauge("switchboard_outbox_rows", "Transactional outbox rows not yet handed to Temporal")
OUTBOX_AGE = Gauge("switchboard_outbox_oldest_age_seconds", "Age of the oldest outbox row (0 when empty)")
WEBHOOK_QUEUE_DEPTH = Gauge(
    "switchboard_webhook_queue_depth", "Outgoing webhook events waiting, per endpoint", ["endpoint_id"]
)
WEBHOOK_QUEUE_AGE = Gauge(
    "switchboard_webhook_queue_oldest_age_seconds", "Age of the oldest waiting event, per endpoint", ["endpoint_id"]
)
WEBHOOK_DEAD = Gauge(
    "switchboard_webhook_dead_events", "Outgoing webhook events given up, per endpoint", ["endpoint_id"]
)
WEBHOOK_ENDPOINT_PAUSED = Gauge(
    "switchboard_webhook_endpoint_paused", "1 while an endpoint is paused, per endpoint", ["endpoint_id"]
)
CHANNEL_WEBHOOK_FAILING = Gauge(
    "switchboard_channel_webhook_failing",
    "1 while a provider reports failing deliveries to an inbox's webhook, per inbox and channel",
    ["inbox_id", "channel"],
)

_DATABASE_GAUGES = text("""
    SELECT 'outgoing' AS kind, delivery_status::text AS key, count(*)::float AS value
      FROM messages WHERE direction = 'out' AND delivery_status IN ('queued', 'sending') GROUP BY delivery_status
    UNION ALL
    SELECT 'dead_letters', '', count(*) FROM messages
      WHERE delivery_status = 'failed' AND discarded_at IS NULL AND direction = 'out'
    UNION ALL
    SELECT 'outbox', '', count(*) FROM outbox_events
    UNION ALL
    SELECT 'outbox_age', '', COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM outbox_events
    UNION ALL
    SELECT 'webhook_depth', endpoint_id::text, count(*) FROM webhook_deliveries
      WHERE status = 'pending' GROUP BY endpoint_id
    UNION ALL
    SELECT 'webhook_age', endpoint_id::text, EXTRACT(EPOCH FROM now() - min(created_at)) FROM webhook_deliveries
      WHERE status = 'pending' GROUP BY endpoint_id
    UNION ALL
    SELECT 'webhook_dead', endpoint_id::text, count(*) FROM webhook_deliveries
      WHERE status = 'dead' GROUP BY endpoint_id
    UNION ALL
    SELECT 'webhook_paused', id::text, (paused_at IS NOT NULL)::int FROM webhook_endpoints
    UNION ALL
    SELECT 'channel_webhook_failing', id::text || ' ' || channel::text, (webhook_error IS NOT NULL)::int
      FROM inboxes WHERE is_active AND webhook_url IS NOT NULL
""")
_PER_KEY = {
    "webhook_depth": WEBHOOK_QUEUE_DEPTH,
    "webhook_age": WEBHOOK_QUEUE_AGE,
    "webhook_dead": WEBHOOK_DEAD,
    "webhook_paused": WEBHOOK_ENDPOINT_PAUSED,
}


async def refresh_database_gauges(db: AsyncSession) -> None:
    """Set the database gauges from one query; series of vanished endpoints and inboxes go."""
    rows = (await db.execute(_DATABASE_GAUGES)).all()
    for gauge in (OUTGOING_DEPTH, *_PER_KEY.values(), CHANNEL_WEBHOOK_FAILING):
        gauge.clear()
    for status in ("queued", "sending"):
        OUTGOING_DEPTH.labels(status=status).set(0)
    for kind, key, value in rows:
        if kind == "outgoing":
            OUTGOING_DEPTH.labels(status=key).set(value)
        elif kind == "dead_letters":
            DEAD_LETTERS.set(value)
        elif kind == "outbox":
            OUTBOX_DEPTH.set(value)
        elif kind == "outbox_age":
            OUTBOX_AGE.set(value)
        elif kind == "channel_webhook_failing":
            inbox_id, channel = key.split(" ", 1)
            CHANNEL_WEBHOOK_FAILING.labels(inbox_id=inbox_id, channel=channel).set(value)
        else:
            _PER_KEY[kind].labels(endpoint_id=key).set(value)
