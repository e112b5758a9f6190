"""A PVOutput status for one interval, and the form fields that carry it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

NET_FLAG = 1
"""``n=1``: v4 is net power (import minus export), as a P1 meter measures it."""


@dataclass(frozen=True, slots=True)
class Status:
    """The status of the interval ending at ``end_ts``."""

    end_ts: int
    """End of the interval, seconds since the epoch (UTC); the outbox key."""
    d: str
    """Local date of the end, YYYYMMDD."""
    t: str
    """Local time of the end, HH:MM."""
    v3: int
    """Energy imported since local midnight, Wh."""
    v4: int
    """Net power, W (negative while exporting)."""

    def batch_line(self) -> str:
        """One addbatchstatus entry: ``d,t,v1,v2,v3,v4`` with generation left empty."""
        return f"{self.d},{self.t},,,{self.v3},{self.v4}"


def local_stamp(end_ts: int, zone: ZoneInfo) -> tuple[str, str]:
    """Return PVOutput's (d, t) for a moment: local date YYYYMMDD and time HH:MM."""
    local = datetime.fromtimestamp(end_ts, zone)
    return local.strftime("%Y%m%d"), local.strftime("%H:%M")


def addstatus_form(status: Status, processing_delay: int | None) -> dict[str, Any]:
    """The exact form fields POSTed to addstatus.jsp (and sent with pvoutput_upload)."""
    form: dict[str, Any] = {
        "d": status.d,
        "t": status.t,
        "v3": status.v3,
        "v4": status.v4,
        "n": NET_FLAG,
    }
    if processing_delay:
        form["delay"] = processing_delay
    return form


def batch_form(statuses: list[Status]) -> dict[str, Any]:
    """The exact form fields POSTed to addbatchstatus.jsp for up to 30 statuses, oldest first."""
    return {"data": ";".join(s.batch_line() for s in statuses), "n": NET_FLAG}


def parse_batch_answer(body: str) -> dict[tuple[str, str], bool]:
    """Read addbatchstatus's ``d,t,1;d,t,0`` answer into {(d, t): added}."""
    result: dict[tuple[str, str], bool] = {}
    for entry in body.strip().split(";"):
        parts = entry.strip().split(",")
        if len(parts) >= 3:
            result[(parts[0], parts[1])] = parts[2].strip() == "1"
    return result
