"""Example plugin: POST every saved DayStatistics record to a webhook, as JSON.

Written in the style of DSMR-reader's current docs (Django's ``@receiver`` decorator); the
plugin runner makes ``django.dispatch`` importable without Django.

Settings (environment variables of the dsmr-plugins service):
  DSMR_PLUGIN_WEBHOOK_URL      required: where to POST, e.g. https://example.org/hooks/energy
  DSMR_PLUGIN_WEBHOOK_TOKEN    optional: sent as "Authorization: Bearer <token>" (never logged)
  DSMR_PLUGIN_WEBHOOK_TIMEOUT  seconds, default 10

Body: {"sender": "DayStatistics", "created": true, "instance": {"day": "2026-11-24", ...}}.
A failed POST raises, so the runner logs and counts it.
"""

import os
from typing import Any

import requests
from django.dispatch import receiver  # type: ignore[import-not-found]  # the runner's stand-in

from dsmr_backend.signals import post_save

URL = os.environ.get("DSMR_PLUGIN_WEBHOOK_URL", "")
TOKEN = os.environ.get("DSMR_PLUGIN_WEBHOOK_TOKEN") or None
TIMEOUT = float(os.environ.get("DSMR_PLUGIN_WEBHOOK_TIMEOUT") or "10")

if not URL:
    raise RuntimeError("webhook_day_statistics needs DSMR_PLUGIN_WEBHOOK_URL")

_session = requests.Session()


@receiver(post_save, sender="DayStatistics")  # type: ignore[untyped-decorator]
def post_day_statistics(sender: str, instance: dict[str, Any], created: bool, **_kw: Any) -> None:
    """POST the day's record; raise on a network error or a non-2xx answer."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}
    body = {"sender": sender, "created": created, "instance": instance}
    response = _session.post(URL, json=body, headers=headers, timeout=TIMEOUT)
    if not response.ok:
        raise RuntimeError(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")
