"""Example plugin: append each new reading to a CSV file (one row per DsmrReading saved).

It binds ``post_save`` with sender ``DsmrReading``: the backend has already parsed the telegram,
so the values carry DSMR-reader's field names and units (kWh, kW, m3). Re-saves of a reading
(``created`` false) are skipped so that a row is written once.

Settings (environment variables of the dsmr-plugins service):
  DSMR_PLUGIN_CSV_FILE    required: the CSV file; a header row is written when it is new
  DSMR_PLUGIN_CSV_FIELDS  comma-separated columns (default below; "meter" is the meter's name)
"""

import csv
import os
from pathlib import Path
from typing import Any

from dsmr_backend.signals import post_save

DEFAULT_FIELDS = (
    "meter,timestamp,electricity_delivered_1,electricity_delivered_2,"
    "electricity_returned_1,electricity_returned_2,electricity_currently_delivered,"
    "electricity_currently_returned,extra_device_timestamp,extra_device_delivered"
)

FILE = os.environ.get("DSMR_PLUGIN_CSV_FILE", "")
FIELDS = [f.strip() for f in (os.environ.get("DSMR_PLUGIN_CSV_FIELDS") or DEFAULT_FIELDS).split(",")]

if not FILE:
    raise RuntimeError("csv_readings needs DSMR_PLUGIN_CSV_FILE")


def log_reading(sender: str, instance: dict[str, Any], created: bool, **_kw: Any) -> None:
    """Append one row; absent values stay empty."""
    if not created:
        return
    path = Path(FILE)
    new_file = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        if new_file:
            writer.writerow(FIELDS)
        writer.writerow(["" if instance.get(f) is None else instance[f] for f in FIELDS])


post_save.connect(log_reading, sender="DsmrReading")
