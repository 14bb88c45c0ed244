"""deploy/prometheus/alerts.yml parses as Prometheus rule groups and names only metrics we export
(infra/metrics.py), so a renamed metric cannot leave an alert that never fires."""

import re

import yaml
from prometheus_client import REGISTRY

from infra import metrics  # noqa: F401 - registers every metric
from infra.settings import ROOT

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def test_every_rule_parses_and_names_only_exported_metrics():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 10
    exported = _exported()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        named = set(re.findall(r"\bswitchboard_[a-z0-9_]+", rule["expr"]))
        assert named, f"{rule['alert']} names no metric of ours"
        assert named <= exported, f"{rule['alert']} names {sorted(named - exported)}"


def test_the_seed_thresholds_are_covered():
    text = RULES.read_text()
    for threshold in ("> 600", "> 1800", "> 0.001", "> 10000"):
        assert threshold in text
    alerts = {r["alert"] for g in yaml.safe_load(text)["groups"] for r in g["rules"]}
    assert {"WebhookEndpointPaused", "MaxSubscriptionLost", "ChannelWebhookFailing", "DeadLettersGrowing"} <= alerts


def test_a_misspelt_metric_would_be_caught():
    assert "switchboard_webhook_queue_depth" in _exported()
    assert "switchboard_webhook_queue_dept" not in _exported()
