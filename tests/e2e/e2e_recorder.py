"""An end-to-end test plugin: appends one JSON line per event it hears to DSMR_E2E_RECORD_FILE.

The harness copies this file into a modules folder (``DSMR_PLUGINS_DIR``), so the plugin runner
imports it as ``dsmr_plugins.modules.e2e_recorder``, exactly as it would a user's plugin.
Each line is written with one ``os.write`` on an O_APPEND descriptor, so a SIGKILL never leaves
half a line, and carries ``time.time()`` of the call, which the latency benchmark reads.
"""

import json
import os
import re
import time
from typing import Any

from dsmr_backend.signals import backend_called, post_save
from dsmr_datalogger.signals import raw_telegram
from dsmr_pvoutput.signals import pvoutput_upload

STAMP = re.compile(r"0-0:1\.0\.0\((\d{12}[SW])\)")
SLOW = float(os.environ.get("DSMR_E2E_SLOW_SECONDS", "0"))
"""Seconds each raw_telegram takes to handle: a slow plugin, whose worker queue holds events."""
_fd = os.open(os.environ["DSMR_E2E_RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _record(signal: str, sender: str, key: str, **extra: Any) -> None:
    line = {"at": time.time(), "pid": os.getpid(), "signal": signal, "sender": sender, "key": key, **extra}
    os.write(_fd, (json.dumps(line, sort_keys=True) + "\n").encode())


def on_raw_telegram(sender: str, data: str, **kwargs: Any) -> None:
    """Record the telegram's own timestamp (its identity in the test)."""
    match = STAMP.search(data)
    if SLOW:
        time.sleep(SLOW)
    _record("raw_telegram", sender, match.group(1) if match else "?", size=len(data))


def on_post_save(sender: str, instance: dict[str, Any], created: bool, **kwargs: Any) -> None:
    """Record a saved record by its natural key (a reading's time, a statistic's day)."""
    key = instance.get("timestamp") or instance.get("day") or instance.get("hour_start") or "?"
    _record("post_save", sender, str(key), created=created, instance=instance)


def on_backend_called(sender: str, **kwargs: Any) -> None:
    """Record a backend tick."""
    _record("backend_called", sender, f"{kwargs.get('iteration')}@{kwargs.get('at')}")


def on_pvoutput_upload(sender: str, data: dict[str, Any], **kwargs: Any) -> None:
    """Record the form about to be POSTed."""
    _record("pvoutput_upload", sender, json.dumps(data, sort_keys=True), data=data)


raw_telegram.connect(on_raw_telegram)
post_save.connect(on_post_save)
backend_called.connect(on_backend_called)
pvoutput_upload.connect(on_pvoutput_upload)
