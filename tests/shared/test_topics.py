"""The topic rules."""

import random

import paho.mqtt.client as mqtt
import pytest

from dsmr_shared.topics import signal_topic, state_topic, topic_matches, topic_safe, validate_sender


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("+/b", "a/b", True),
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/b/c", "a/b", False),
        ("a//b", "a//b", True),
        ("a/+/c", "a//c", True),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
    assert mqtt.topic_matches_sub(topic_filter, topic) is expected


def test_topic_matches_agrees_with_paho_on_random_topics() -> None:
    rng = random.Random(7)
    levels = ["a", "b", "", "$x"]
    for _ in range(3000):
        topic = "/".join(rng.choice(levels) for _ in range(rng.randint(1, 4)))
        parts = [rng.choice([*levels, "+"]) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            parts.append("#")
        topic_filter = "/".join(parts)
        assert topic_matches(topic_filter, topic) == mqtt.topic_matches_sub(topic_filter, topic), (
            topic_filter,
            topic,
        )


def test_names() -> None:
    assert signal_topic("dsmr", "a.b.c", "s") == "dsmr/a/b/c/s"
    assert state_topic("dsmr", "backend") == "dsmr/service/backend/state"
    assert topic_safe(" E0012/x+y# ") == "E0012_x_y"
    assert topic_safe("///") == "unknown"
    with pytest.raises(ValueError, match="one topic level"):
        validate_sender("a/b")
