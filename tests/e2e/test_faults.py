"""Faults in the full stack: a process SIGKILLed and restarted mid-stream, a corrupted serial stream.

Each test streams simulated telegrams into the pty at a steady pace while the fault happens,
then checks that every good telegram was stored exactly once and that the plugin heard every
raw telegram and every reading's post_save exactly once.
"""

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.harness import (
    CONSUMERS,
    METER,
    Fed,
    KillableMosquitto,
    Stack,
    corrupted,
    keys,
    reading_key,
    stored_readings,
)
from tests.helpers import wait_for

PACE = 0.02
"""Seconds between telegrams: 50 per second, so a fault lands between and during deliveries."""
PHASE = 60
"""Telegrams before the fault, during it, and after the recovery."""

pytestmark = [pytest.mark.services, pytest.mark.slow]


def stream(stack: Stack, count: int) -> list[Fed]:
    """Write ``count`` good telegrams at the meter's pace (the pace is the meter's, not a settle)."""
    sent = []
    for _ in range(count):
        sent.append(stack.meter.send())
        time.sleep(PACE)
    return sent


def settle_and_check(stack: Stack, sent: list[Fed]) -> None:
    """Wait until everything arrived, then: nothing lost, nothing doubled."""
    n = len(sent)
    record = stack.record_file
    arrived(lambda: len(stored_readings(stack.database)) >= n)
    arrived(lambda: len(keys(record, "raw_telegram")) >= n)
    arrived(lambda: len(keys(record, "post_save", "DsmrReading")) >= n)
    stored = Counter(stored_readings(stack.database))
    assert_same("stored readings", stored, Counter(item.at for item in sent), stack)
    heard = Counter(keys(record, "raw_telegram", METER))
    assert_same("raw_telegram events", heard, Counter(item.stamp for item in sent), stack)
    saved = Counter(keys(record, "post_save", "DsmrReading"))
    assert_same("post_save events", saved, Counter(reading_key(item.at) for item in sent), stack)


def arrived(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Wait for ``predicate``; False on timeout (the exact comparison that follows says what is off)."""
    try:
        wait_for(predicate, timeout)
    except AssertionError:
        return False
    return True


def assert_same(what: str, got: Counter[Any], wanted: Counter[Any], stack: Stack) -> None:
    """Equal multisets, else a message naming what is missing and what came twice."""
    missing = sorted(map(str, wanted - got))
    doubled = sorted(str(k) for k, v in got.items() if v > 1)
    assert not missing and not doubled, (
        f"{what}: {len(missing)} missing {missing[:10]}, doubled {doubled[:10]}\n{stack.outputs()}"
    )


def test_broker_killed_and_restarted_mid_stream(stack: Stack) -> None:
    assert isinstance(stack.broker, KillableMosquitto)
    stack.start_all()
    # mosquitto writes sessions to disk every autosave_interval (60 s in the shipped config) and on
    # a clean stop; a broker that has run a while has them on disk. A clean restart gets us there.
    mark = stack.broker_log_size()
    stack.broker.stop()
    stack.broker.start()
    for service in CONSUMERS:
        stack.wait_subscribed(service, after=mark)
    sent = stream(stack, PHASE)
    stack.broker.kill()
    sent += stream(stack, PHASE)  # the datalogger spools them
    stack.broker.start()
    sent += stream(stack, PHASE)
    settle_and_check(stack, sent)


@pytest.mark.parametrize("service", ["backend", "plugins"])
def test_consumer_killed_and_restarted_mid_stream(stack: Stack, service: str) -> None:
    """SIGKILL mid-stream; the stream goes on while the consumer is away.

    The backend is killed wherever it is: a post_save is committed with its reading (the signal
    outbox), and one the broker had not acknowledged is resent at the next start with the envelope
    id it was first sent with, which the plugin has heard already or runs now, once either way.
    The plugin runner is killed between two telegrams, once the last post_save was run: it
    acknowledges an event after running it, so one it ran just before a kill, whose
    acknowledgement had not left yet, would be delivered and run again after its restart
    (PLUGINS.md, "A crash loses no event").
    """
    stack.start_all()
    sent = stream(stack, PHASE)
    if service == "plugins":  # between two telegrams, once the last one's post_save was run
        last = reading_key(sent[-1].at)
        wait_for(lambda: last in keys(stack.record_file, "post_save", "DsmrReading"), 10)
    stack.kill(service)
    sent += stream(stack, PHASE)  # the broker queues them for the persistent session
    mark = stack.broker_log_size()
    stack.start(service)
    stack.wait_subscribed(service, after=mark)
    sent += stream(stack, PHASE)
    settle_and_check(stack, sent)


def test_plugin_runner_killed_while_a_slow_plugin_has_a_backlog(stack: Stack) -> None:
    """SIGKILL while the plugin's worker queue holds events it has not run yet: none is lost."""
    stack.extra_env["plugins"] = {"DSMR_E2E_SLOW_SECONDS": str(PACE * 2)}
    stack.start_all()
    sent = stream(stack, PHASE)
    assert len(keys(stack.record_file, "raw_telegram")) < len(sent)  # a backlog at the kill
    stack.kill("plugins")
    sent += stream(stack, PHASE // 2)
    mark = stack.broker_log_size()
    stack.start("plugins")
    stack.wait_subscribed("plugins", after=mark)
    sent += stream(stack, PHASE // 2)
    settle_and_check(stack, sent)


def test_corrupted_serial_stream(stack: Stack) -> None:
    stack.start_all()
    sent = stream(stack, 20)
    for _ in range(10):
        stack.meter.inject(b"\x00\xffnoise\r\n" * 3)  # line noise between telegrams
        sent += stream(stack, 2)
        stack.meter.inject(corrupted(stack.meter.next()))  # a bad CRC
        sent += stream(stack, 2)
        stack.meter.inject(stack.meter.next().data[:300])  # cut off by the next telegram
        sent += stream(stack, 2)
    settle_and_check(stack, sent)
    stats = wait_for(lambda: _datalogger_stats(stack, len(sent)), 10, message="datalogger stats")
    assert stats is not None
    assert stats["rejected_crc"] == 10
    assert stats["rejected_framing"] == 10
    assert stats["noise_bytes"] >= 10 * 3 * len(b"\x00\xffnoise\r\n")


def _datalogger_stats(stack: Stack, telegrams: int) -> dict[str, int] | None:
    """The datalogger's newest stats, once they count every good telegram."""
    assert stack.probe is not None
    found = stack.probe.received("dsmr/service/datalogger/stats")
    newest = json.loads(found[-1].payload) if found else None
    return newest if newest and newest["telegrams"] >= telegrams else None
