"""The runner acknowledges a message only after the plugin jobs it caused have run, in arrival order."""

from dsmr_plugins.acks import AckOrder, Release
from dsmr_plugins.worker import HELD_PER_PLUGIN, PluginWorker, Routed
from dsmr_shared.bus import Message
from dsmr_shared.counters import Counters


def message(name: str, acked: list[str]) -> Message:
    return Message(f"t/{name}", b"", qos=1, ack=lambda: acked.append(name))


def test_an_ack_waits_for_every_hold_and_for_older_messages() -> None:
    acked: list[str] = []
    order = AckOrder()
    first = order.begin(message("first", acked), holds=1)
    second = order.begin(message("second", acked), holds=1)
    job_of_first = order.hold(first)
    order.release(first)  # its handler returned; its job has not run yet
    order.release(second)
    assert acked == []  # "second" is done but must not overtake "first"
    job_of_first()
    job_of_first()  # releasing twice (early, then when run) counts once
    assert acked == ["first", "second"]


def test_a_message_with_no_jobs_is_acknowledged_when_its_handlers_return() -> None:
    acked: list[str] = []
    order = AckOrder()
    delivery = order.begin(message("m", acked), holds=2)  # two matching subscriptions
    order.release(delivery)
    assert acked == []
    order.release(delivery)
    assert acked == ["m"]


def test_a_job_releases_its_hold_when_run_even_if_the_receiver_raises() -> None:
    acked: list[str] = []
    order = AckOrder()
    delivery = order.begin(message("m", acked), holds=1)
    worker = PluginWorker("p", 10, Counters(), hold=lambda: order.hold(delivery))
    worker.start()

    def broken(**_kwargs: object) -> None:
        raise RuntimeError("plugin bug")

    Routed(worker, broken)(signal=None, sender="x")
    order.release(delivery)
    assert worker.stop(5) == 0
    assert acked == ["m"]


def test_a_backlog_beyond_the_limit_no_longer_holds_acks() -> None:
    order = AckOrder()
    acked: list[str] = []
    delivery = order.begin(message("m", acked), holds=1)
    holds = []

    def hold() -> Release:
        holds.append(order.hold(delivery))
        return holds[-1]

    worker = PluginWorker("p", HELD_PER_PLUGIN * 2, Counters(), hold=hold)
    for _ in range(HELD_PER_PLUGIN + 5):  # the worker is not started: everything stays queued
        Routed(worker, lambda **_k: None)(signal=None, sender="x")
    assert len(holds) == HELD_PER_PLUGIN
    assert worker.pending() == HELD_PER_PLUGIN + 5
    assert worker.release_waiting() == HELD_PER_PLUGIN + 5  # a stuck plugin lets them all go
    order.release(delivery)
    assert acked == ["m"]


def test_a_clean_stop_acknowledges_what_waits_once() -> None:
    acked: list[str] = []
    order = AckOrder()
    first = order.begin(message("first", acked), holds=1)
    order.begin(message("second", acked), holds=2)
    job = order.hold(first)
    order.acknowledge_all()  # the runner stops: its workers finish after the connection closed
    assert acked == ["first", "second"]
    job()
    order.release(first)
    assert acked == ["first", "second"]
