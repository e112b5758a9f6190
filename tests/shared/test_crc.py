"""CRC-16/ARC: the C accelerator and the pure-Python fallback agree."""

import random

import pytest

from dsmr_shared import crc
from tests.helpers import TELEGRAMS


def test_check_value_of_crc16_arc() -> None:
    assert crc.crc16_pure(b"123456789") == 0xBB3D
    assert crc.crc16(b"123456789") == 0xBB3D


def test_fast_crc_is_installed() -> None:
    assert crc.crc16_fast is not None, "crcmod-plus should provide the C accelerator"
    assert crc.crc16 is crc.crc16_fast


@pytest.mark.parametrize("size", [0, 1, 2, 7, 64, 1000, 4096])
def test_fallback_matches_accelerator_on_random_data(size: int) -> None:
    rng = random.Random(size)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert crc.crc16_fast is not None
        assert crc.crc16_pure(data) == crc.crc16_fast(data)


def test_fallback_matches_the_crc_real_meters_wrote() -> None:
    checked = 0
    for path in sorted(TELEGRAMS.glob("*.txt")):
        data = path.read_bytes()
        bang = data.index(b"!")
        digits = data[bang + 1 :].split(b"\r\n")[0]
        if digits:
            assert crc.crc16_pure(data[: bang + 1]) == int(digits, 16), path.name
            checked += 1
    assert checked >= 8
