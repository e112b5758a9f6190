"""A local HTTP server that behaves like PVOutput's addstatus.jsp and addbatchstatus.jsp."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

RATE_LIMITED = "Forbidden 403: Exceeded 60 requests per hour"
D_RE = re.compile(r"^\d{8}$")
T_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
INT_RE = re.compile(r"^-?\d+$")


@dataclass
class Seen:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    form: dict[str, str]
    status: int
    body: str
    at: float
    answer_headers: dict[str, str]


class BadRequestError(Exception):
    """Answer 400 with PVOutput's text."""


@dataclass
class FakePVOutput:
    """PVOutput on 127.0.0.1: checks fields and headers, keeps what it accepted."""

    api_key: str = "k3y-d0-not-log-7f1c"
    system_id: str = "12345"
    limit: int = 100_000
    window: float = 3600.0
    max_age_days: int = 14
    port: int = 0
    mode: str = "up"  # up | error500 | slow | down (connections refused)
    slow_seconds: float = 1.0
    refuse: set[tuple[str, str]] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    accepted: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.used = 0
        self.reset_at = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------

    def start(self, mode: str = "up") -> FakePVOutput:
        """Listen (again, on the same port once known); ``mode`` error500 answers 500."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.mode = mode
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.mode = "down"

    @property
    def url(self) -> str:
        """The addstatus.jsp URL."""
        return f"http://127.0.0.1:{self.port}/service/r2/addstatus.jsp"

    def use_allowance(self, n: int) -> None:
        """Spend part of the hourly allowance, as another uploader on the same key would."""
        with self.lock:
            self._roll_window()
            self.used += n

    # -- what it holds ----------------------------------------------------------------------

    def accepted_keys(self) -> list[tuple[str, str]]:
        """(d, t) of every accepted status, duplicates included."""
        with self.lock:
            return [(d, t) for d, t, _ in self.accepted]

    def statuses(self) -> dict[tuple[str, str], dict[str, str]]:
        """The newest accepted fields per (d, t)."""
        with self.lock:
            return {(d, t): fields for d, t, fields in self.accepted}

    def seen(self, path_end: str = "", status: int | None = None) -> list[Seen]:
        """Requests so far, optionally by path suffix and answer code."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path.endswith(path_end) and (status is None or r.status == status)
            ]

    # -- answering (server threads) ---------------------------------------------------------

    def _roll_window(self) -> None:
        now = time.time()
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = int(now + self.window) + 1

    def answer(
        self, path: str, headers: dict[str, str], form: dict[str, str]
    ) -> tuple[int, str, dict[str, str]]:
        """Decide the answer to one POST."""
        with self.lock:
            code, body, extra = self._answer(path, headers, form)
            self.requests.append(Seen(path, headers, form, code, body, time.time(), extra))
            return code, body, extra

    def _answer(
        self, path: str, headers: dict[str, str], form: dict[str, str]
    ) -> tuple[int, str, dict[str, str]]:
        if self.mode == "error500":
            return 500, "Internal Server Error", {}
        if not path.endswith(("/service/r2/addstatus.jsp", "/service/r2/addbatchstatus.jsp")):
            return 404, "Not Found 404: no such service", {}
        if headers.get("x-pvoutput-apikey") != self.api_key:
            return 401, "Unauthorized 401: Invalid API Key", {}
        if headers.get("x-pvoutput-systemid") != self.system_id:
            return 401, "Unauthorized 401: Invalid System ID", {}
        self._roll_window()
        rate = {}
        if headers.get("x-rate-limit") == "1":
            rate = {
                "X-Rate-Limit-Remaining": str(max(0, self.limit - self.used - 1)),
                "X-Rate-Limit-Limit": str(self.limit),
                "X-Rate-Limit-Reset": str(self.reset_at),
            }
        if self.used >= self.limit:
            rate["X-Rate-Limit-Remaining"] = "0"
            return 403, RATE_LIMITED, rate
        self.used += 1
        try:
            if path.endswith("addbatchstatus.jsp"):
                return 200, self._batch(form), rate
            self._single(form)
        except BadRequestError as exc:
            return 400, f"Bad request 400: {exc}", rate
        return 200, "OK 200: Added Status", rate

    def _check_date(self, d: str, t: str) -> None:
        if not D_RE.match(d):
            raise BadRequestError(f"Invalid date format [{d}]")
        if not T_RE.match(t):
            raise BadRequestError(f"Invalid time format [{t}]")
        day = datetime.strptime(d, "%Y%m%d").date()
        if day < date.today() - timedelta(days=self.max_age_days):
            raise BadRequestError(f"Date is older than {self.max_age_days} days [{d}]")
        if day > date.today() + timedelta(days=1):
            raise BadRequestError(f"Date is in the future [{d}]")
        if (d, t) in self.refuse:
            raise BadRequestError("Moon Powered")

    def _single(self, form: dict[str, str]) -> None:
        d, t = form.get("d", ""), form.get("t", "")
        self._check_date(d, t)
        values = {k: form[k] for k in ("v1", "v2", "v3", "v4") if k in form}
        if not values:
            raise BadRequestError("Missing required data")
        for key, value in values.items():
            if not INT_RE.match(value):
                raise BadRequestError(f"Could not read [{key}]")
        if form.get("n") == "1" and "v4" not in form:
            raise BadRequestError("Missing net power value")
        if int(values.get("v4", "0")) < 0 and form.get("n") != "1":
            raise BadRequestError("Invalid net and cumulative")
        self.accepted.append((d, t, dict(form)))

    def _batch(self, form: dict[str, str]) -> str:
        entries = [e for e in form.get("data", "").split(";") if e]
        if not entries:
            raise BadRequestError("Missing required data")
        if len(entries) > 30:
            raise BadRequestError("Too many statuses [max 30]")
        rows = [e.split(",") for e in entries]
        if any(len(r) < 6 for r in rows):
            raise BadRequestError("Could not read [data]")
        if form.get("n") == "1" and len({r[0] for r in rows}) > 1:
            raise BadRequestError("Net statuses must all be on the same date")
        for row in rows:
            self._check_date(row[0], row[1])  # one bad date fails the whole batch, as PVOutput does
        answers: list[str] = []
        for d, t, v1, v2, v3, v4, *_ in rows:
            single = {"d": d, "t": t, "n": form.get("n", "0")}
            single.update({k: v for k, v in (("v1", v1), ("v2", v2), ("v3", v3), ("v4", v4)) if v})
            self._single_checked(single, answers)
        return ";".join(answers)

    def _single_checked(self, single: dict[str, str], answers: list[str]) -> None:
        try:
            self._single(single)
            answers.append(f"{single['d']},{single['t']},1")
        except BadRequestError:
            answers.append(f"{single['d']},{single['t']},0")


class _Handler(BaseHTTPRequestHandler):
    fake: FakePVOutput

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.fake.mode == "slow":
            time.sleep(self.fake.slow_seconds)  # the server dawdles, the client must time out
        code, body, extra = self.fake.answer(self.path, headers, form)
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return
