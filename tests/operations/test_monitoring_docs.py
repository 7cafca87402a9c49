"""The dashboard and alert rules under docs/monitoring match what /metrics exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from django.conf import settings

from operations.metrics import metrics_text
from tests.operations.helpers import PROJECT_DIR, exposed_names

MONITORING = PROJECT_DIR / "docs" / "monitoring"
METRIC = re.compile(r"\bmailarchive_[a-z_]+\b")


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query", "definition") and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_expressions(item)


@pytest.mark.django_db
def test_every_metric_referenced_is_exposed():
    exposed = exposed_names(metrics_text().decode())
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    expressions = [rule["expr"] for rule in _alert_rules()]
    expressions += list(_dashboard_expressions(dashboard))
    referenced = {name for expr in expressions for name in METRIC.findall(expr)}
    assert referenced, "the files reference metrics"
    assert referenced <= exposed, referenced - exposed
    # Every metric has its place on the dashboard.
    shown = {
        name
        for expr in _dashboard_expressions(dashboard)
        for name in METRIC.findall(expr)
    }
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in exposed}
    assert families <= {re.sub(r"_bucket$", "", name) for name in shown}


def test_alert_rules_are_well_formed_and_match_the_mail_alerts():
    rules = {rule["alert"]: rule for rule in _alert_rules()}
    for rule in rules.values():
        assert rule["expr"].strip()
        assert rule["annotations"]["summary"]
        assert rule["labels"]["severity"]
    failures = getattr(settings, "MAILARCHIVE_ALERT_FAILURES", 3)
    stale_hours = getattr(settings, "MAILARCHIVE_ALERT_STALE_HOURS", 24)
    assert f">= {failures}" in rules["MailArchiveAccountFailing"]["expr"]
    assert f"> {stale_hours} * 3600" in rules["MailArchiveNoCompletedPoll"]["expr"]
    assert f"> {stale_hours} * 3600" in rules["MailArchiveAccountNeverPolled"]["expr"]
    assert (
        "mailarchive_account_signin_needed" in rules["MailArchiveSignInNeeded"]["expr"]
    )
    assert (
        "mailarchive_account_left_on_server"
        in rules["MailArchiveMessagesLeftOnServer"]["expr"]
    )


def test_dashboard_is_importable_into_grafana():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


@pytest.mark.django_db
def test_the_readme_names_every_metric():
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme.split("\n## Monitoring\n", 1)[1].split("\n## ", 1)[0]
    exposed = exposed_names(metrics_text().decode())
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in exposed}
    assert {name for name in families if f"`{name}" not in section} == set()
