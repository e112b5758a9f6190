"""Empties the outbox into PVOutput: live statuses first, the backlog in paced batches.

Every POST is preceded by the pvoutput_upload signal carrying the exact form dict. Answers are
handled by meaning: OK marks statuses sent; a data error drops them after logging; a bad key
pauses uploads until a restart with new settings; a rate limit waits for its reset; server and
network trouble retries with capped backoff. Nothing leaves the outbox unless PVOutput took it,
refused it, or it aged out of the backfill window.
"""

import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dsmr_pvoutput.client import Answer, Outcome, PVOutputClient
from dsmr_pvoutput.outbox import PENDING, REJECTED, SENT, Outbox
from dsmr_pvoutput.settings import PVOutputSettings
from dsmr_pvoutput.status import Status, addstatus_form, batch_form, parse_batch_answer
from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

IDLE_WAIT = 60.0
"""Longest sleep with nothing to do (the backfill window is re-checked this often)."""

Clock = Callable[[], float]
Notify = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Job:
    """One POST to make."""

    url: str
    form: dict[str, Any]
    statuses: list[Status]
    backlog: bool

    @property
    def batch(self) -> bool:
        """True for addbatchstatus."""
        return "data" in self.form

    def describe(self) -> str:
        """``20261124 10:05`` or ``20261124 10:05..12:00 (24 statuses)``."""
        first, last = self.statuses[0], self.statuses[-1]
        if len(self.statuses) == 1:
            return f"{first.d} {first.t}"
        return f"{first.d} {first.t}..{last.t} ({len(self.statuses)} statuses)"


@dataclass(frozen=True, slots=True)
class Wait:
    """How long the loop sleeps; ``wakeable`` sleeps end early when a new status arrives."""

    seconds: float
    wakeable: bool


def next_hour(now: float) -> float:
    """The next full hour (PVOutput's allowance is hourly) when no reset time was given."""
    moment = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0)
    return (moment + timedelta(hours=1)).timestamp()


class Uploader:
    """The upload loop; run it in its own thread with :meth:`run`."""

    def __init__(
        self,
        settings: PVOutputSettings,
        outbox: Outbox,
        client: PVOutputClient,
        counters: Counters,
        *,
        clock: Clock,
        notify: Notify,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.client = client
        self.counters = counters
        self.clock = clock
        self.notify = notify
        self.wake = threading.Event()
        self.paused = False
        self.not_before = 0.0
        self.next_backlog_at = 0.0
        self.remaining: int | None = None
        self.reset: float | None = None
        self.failures = 0

    # -- loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Upload until ``stop`` is set (set :attr:`wake` too, to end a sleep at once)."""
        while not stop.is_set():
            self.wake.clear()
            try:
                wait = self.step()
            except Exception:
                # A bug or a broken disk must not end uploads for good: log, count, go on.
                self.counters.inc("uploader_errors")
                log.exception("upload step failed; retrying in %.0f s", self.settings.pvoutput_retry_max)
                wait = Wait(self.settings.pvoutput_retry_max, False)
            if wait.seconds <= 0:
                continue
            if wait.wakeable:
                self.wake.wait(wait.seconds)
            else:
                stop.wait(wait.seconds)

    def step(self) -> Wait:
        """Do at most one POST; return how long to wait before the next step."""
        now = self.clock()
        if self.paused:
            return Wait(IDLE_WAIT, True)
        if now < self.not_before:
            return Wait(self.not_before - now, False)
        self._expire(now)
        if self._allowance_used_up(now):
            assert self.reset is not None
            self.not_before = self.reset
            log.info(
                "PVOutput allowance used up (X-Rate-Limit-Remaining: 0); waiting %.0f s for its reset",
                self.reset - now,
            )
            return Wait(self.reset - now, False)
        job = self._choose(now)
        if isinstance(job, Wait):
            return job
        self._send(job)
        return Wait(0.0, False)

    # -- choosing ---------------------------------------------------------------------------

    def _allowance_used_up(self, now: float) -> bool:
        return self.remaining is not None and self.remaining <= 0 and (self.reset or 0) > now

    def _choose(self, now: float) -> Job | Wait:
        newest = self.outbox.newest()
        if newest is not None and newest[1] == PENDING:
            live = self.outbox.get(newest[0])
            assert live is not None
            return self._single_job(live, backlog=False)
        single = self.outbox.next_single()
        batch = [] if single is not None else self.outbox.backlog(self.settings.pvoutput_batch_size)
        if single is None and not batch:
            return Wait(IDLE_WAIT, True)
        if now < self.next_backlog_at:
            return Wait(self.next_backlog_at - now, True)
        if not self._backlog_allowed(now):
            assert self.reset is not None
            return Wait(self.reset - now, True)
        if single is not None:
            return self._single_job(single, backlog=True)
        return Job(self.settings.batch_url, batch_form(batch), batch, backlog=True)

    def _single_job(self, status: Status, *, backlog: bool) -> Job:
        form = addstatus_form(status, self.settings.pvoutput_processing_delay)
        return Job(self.settings.pvoutput_api_url, form, [status], backlog=backlog)

    def _backlog_allowed(self, now: float) -> bool:
        """Keep enough of the hourly allowance for every live status due before the reset."""
        if self.remaining is None or self.reset is None or now >= self.reset:
            return True
        live_due = math.ceil((self.reset - now) / (self.settings.pvoutput_interval * 60)) + 1
        return self.remaining > live_due

    def _expire(self, now: float) -> None:
        cutoff = now - self.settings.pvoutput_backfill_days * 86400
        expired = self.outbox.expire(cutoff, now)
        if expired:
            self.counters.inc("statuses_expired", len(expired))
            log.warning(
                "dropped %d status(es) %s %s..%s %s: older than %d days, PVOutput refuses them",
                len(expired),
                expired[0].d,
                expired[0].t,
                expired[-1].d,
                expired[-1].t,
                self.settings.pvoutput_backfill_days,
            )

    # -- sending ----------------------------------------------------------------------------

    def _send(self, job: Job) -> None:
        try:
            for form in self._announced(job):
                self.notify(form)
        except Exception:
            # A signal is a side channel: its failure must not stop the upload itself.
            self.counters.inc("signal_errors")
            log.exception("could not send the pvoutput_upload signal")
        answer = self.client.post(job.url, job.form, self.clock())
        self.counters.inc("requests")
        if answer.remaining is not None:
            self.remaining = answer.remaining
        if answer.reset is not None:
            self.reset = answer.reset
        if job.backlog:
            self.next_backlog_at = self.clock() + self.settings.pvoutput_backlog_gap
        handler = {
            Outcome.OK: self._on_ok,
            Outcome.REJECTED: self._on_rejected,
            Outcome.AUTH: self._on_auth,
            Outcome.RATE_LIMITED: self._on_rate_limited,
            Outcome.RETRY: self._on_retry,
        }[answer.outcome]
        handler(job, answer)

    @staticmethod
    def _announced(job: Job) -> list[dict[str, Any]]:
        """What pvoutput_upload carries: a batch is announced status by status, in addstatus form.

        DSMR-reader's mirror plugin POSTs ``data`` to the addstatus URL; a batch form would get a 400.
        """
        if not job.batch:
            return [job.form]
        return [addstatus_form(status, None) for status in job.statuses]

    def _on_ok(self, job: Job, answer: Answer) -> None:
        self.failures = 0
        now = self.clock()
        if not job.batch:
            self.outbox.mark([job.statuses[0].end_ts], SENT, now)
            self.counters.inc("statuses_sent")
            log.info("uploaded status %s: v3=%s v4=%s", job.describe(), job.form["v3"], job.form["v4"])
            return
        added = parse_batch_answer(answer.text)
        # 200 means PVOutput processed the batch; only an explicit 0 flag means "not added".
        refused = [s for s in job.statuses if added.get((s.d, s.t)) is False]
        taken = [s for s in job.statuses if s not in refused]
        self.outbox.mark([s.end_ts for s in taken], SENT, now)
        self.counters.inc("statuses_sent", len(taken))
        log.info("uploaded backlog %s", job.describe())
        if refused:
            note = "addbatchstatus did not add it"
            self.outbox.mark([s.end_ts for s in refused], REJECTED, now, note)
            self.counters.inc("statuses_rejected", len(refused))
            log.warning(
                "PVOutput did not add %d status(es) of the batch (%s); dropped them",
                len(refused),
                ", ".join(f"{s.d} {s.t}" for s in refused[:5]),
            )

    def _on_rejected(self, job: Job, answer: Answer) -> None:
        self.failures = 0
        if job.batch and len(job.statuses) > 1:
            # The whole batch fails for one bad status: find it by sending them one by one.
            self.outbox.mark_single([s.end_ts for s in job.statuses])
            log.warning(
                "PVOutput refused the batch %s (HTTP %s: %s); sending its statuses one by one",
                job.describe(),
                answer.status_code,
                answer.brief,
            )
            return
        self.outbox.mark([s.end_ts for s in job.statuses], REJECTED, self.clock(), answer.brief)
        self.counters.inc("statuses_rejected", len(job.statuses))
        log.warning(
            "PVOutput refused the status %s (HTTP %s: %s); dropped it from the outbox",
            job.describe(),
            answer.status_code,
            answer.brief,
        )

    def _on_auth(self, _job: Job, answer: Answer) -> None:
        self.paused = True
        self.counters.inc("auth_failures")
        waiting = self.outbox.counts().get(PENDING, 0)
        log.error(
            "PVOutput refused the API key or system id %s (HTTP %s: %s). Uploads are paused "
            "until the settings change: fix DSMR_PVOUTPUT_API_KEY / DSMR_PVOUTPUT_SYSTEM_ID "
            "(and DSMR_PVOUTPUT_API_URL) and restart; %d status(es) wait in the outbox.",
            self.settings.pvoutput_system_id,
            answer.status_code,
            answer.brief,
            waiting,
        )

    def _on_rate_limited(self, _job: Job, answer: Answer) -> None:
        now = self.clock()
        until = answer.reset if answer.reset is not None and answer.reset > now else next_hour(now)
        self.not_before = until
        self.remaining = 0
        self.reset = until
        self.counters.inc("rate_limited")
        log.warning(
            "PVOutput rate limit reached (HTTP %s: %s); waiting %.0f s for the reset",
            answer.status_code,
            answer.brief,
            until - now,
        )

    def _on_retry(self, job: Job, answer: Answer) -> None:
        self.failures += 1
        s = self.settings
        ceiling = min(s.pvoutput_retry_max, s.pvoutput_retry_initial * 2 ** (self.failures - 1))
        delay = random.uniform(ceiling * 0.8, ceiling)  # jitter: many homes, one PVOutput
        self.not_before = self.clock() + delay
        self.counters.inc("upload_retries")
        reason = f"HTTP {answer.status_code}: {answer.brief}" if answer.status_code else answer.brief
        log.warning(
            "could not upload %s (%s); retry %d in %.1f s",
            job.describe(),
            reason,
            self.failures,
            delay,
        )
